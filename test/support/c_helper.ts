// Builds a C helper program of the tests (a hostile client that does what the client library never
// would) with the system's C compiler, into build-test/<name>, unless it is newer than its source.
// Written to a temporary name and renamed: parallel test workers never run a half-written binary.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const REPO = path.resolve(__dirname, '..', '..');

/** Compiles `source` (relative to the repository) and returns the binary's path. */
export function buildCHelper(name: string, source: string, extraArgs: string[] = []): string {
  const src = path.join(REPO, source);
  const out = path.join(REPO, 'build-test', name);
  try {
    if (fs.statSync(out).mtimeMs >= fs.statSync(src).mtimeMs) return out;
  } catch {
    /* not built yet */
  }
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const tmp = `${out}.tmp.${process.pid}`;
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-pthread', '-o', tmp, src, ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  fs.renameSync(tmp, out);
  return out;
}
