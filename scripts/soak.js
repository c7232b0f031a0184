#!/usr/bin/env node
// `npm run soak -- --minutes N [--suite hostile|load|kill]...`: the long runs of test/soak, not
// part of `npm test`. hostile (the default): hostile clients in rounds against one server for N
// minutes (test/soak/hostile.soak.ts); load: 16 clients x 64 files of random reads for N minutes;
// kill: 1000 clients killed mid-fault (N is ignored). Each suite prints its counts and the
// server's counters at the start and the end. The whole of test/soak: `npm run test:soak`.
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');

const args = process.argv.slice(2);
let minutes = 3;
const suites = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--minutes') minutes = Number(args[++i]);
  else if (args[i] === '--suite') suites.push(args[++i]);
  else {
    process.stderr.write(`soak: unknown argument ${args[i]}\nusage: npm run soak -- --minutes N [--suite hostile|load|kill]...\n`);
    process.exit(2);
  }
}
if (!(minutes > 0)) {
  process.stderr.write('soak: --minutes must be a positive number\n');
  process.exit(2);
}
if (suites.length === 0) suites.push('hostile');
for (const s of suites) {
  if (!['hostile', 'load', 'kill'].includes(s)) {
    process.stderr.write(`soak: unknown suite ${s} (hostile, load, kill)\n`);
    process.exit(2);
  }
}
const seconds = String(Math.round(minutes * 60));
const env = { ...process.env, HOSTILE_SOAK_SECONDS: seconds, SOAK_SECONDS: seconds };
const jest = path.join(__dirname, '..', 'node_modules', 'jest', 'bin', 'jest.js');
const r = spawnSync(
  process.execPath,
  [jest, '--testMatch', ...suites.map((s) => `**/test/soak/${s}.soak.ts`), '--testTimeout', String((minutes * 60 + 1800) * 1000), '--runInBand'],
  { stdio: 'inherit', env, cwd: path.join(__dirname, '..') },
);
process.exit(r.status === null ? 1 : r.status);
