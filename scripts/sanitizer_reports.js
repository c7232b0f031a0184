#!/usr/bin/env node
// Reads the sanitizer logs of a run (scripts/test_sanitize.sh: one file per process, asan.PID,
// ubsan.PID, tsan.PID) and fails (exit 1) when any report has a frame in the addon's own code
// (native/*.cc, native/*.h). Reports with no such frame are listed, not failed on: they come
// from Node, V8, libuv or a tool a test starts, which the addon cannot fix (docs/hardening.md).
'use strict';
const fs = require('fs');
const path = require('path');

// The first line of a report, for each runtime.
const REPORT_START = /(ERROR: AddressSanitizer|ERROR: LeakSanitizer|WARNING: ThreadSanitizer|FATAL: ThreadSanitizer|runtime error:)/;
// A frame of the addon: a source position in native/ ("../../../native/pager_core.cc:770", paths
// relative to the build), or, where the runtime could not symbolize it, an address in the addon's
// module ("(starnix_native.node+0x7b4af)": all of its code is native/ and the headers it inlines).
const NATIVE_FRAME = /(^|[\s/])native\/[A-Za-z0-9_]+\.(cc|h)\b|[(/]starnix_native\.node\+0x[0-9a-f]+\)/;

/** Splits one log file's text into reports: each from a start line to the next start line. */
function splitReports(text) {
  const reports = [];
  let current = null;
  for (const line of text.split('\n')) {
    if (REPORT_START.test(line)) {
      current = [line];
      reports.push(current);
    } else if (current !== null) {
      current.push(line);
    }
  }
  return reports.map((lines) => lines.join('\n').trimEnd());
}

/** True when the report names a source position in native/. */
function inAddon(report) {
  return report.split('\n').some((line) => NATIVE_FRAME.test(line));
}

/** The report's first line and its first frames: enough to recognise it in a list. */
function summary(report) {
  const lines = report.split('\n');
  const frames = lines.filter((l) => /^\s*#\d+ /.test(l)).slice(0, 4);
  return [lines[0].trim(), ...frames.map((f) => '    ' + f.trim())].join('\n');
}

function main(dir) {
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
  const inNative = [];
  const outside = [];
  for (const file of files) {
    const text = fs.readFileSync(path.join(dir, file), 'utf8');
    for (const report of splitReports(text)) (inAddon(report) ? inNative : outside).push({ file, report });
  }
  for (const { file, report } of outside) {
    process.stderr.write(`sanitizer report outside the addon (${file}), not failed on:\n${summary(report)}\n`);
  }
  for (const { file, report } of inNative) {
    process.stderr.write(`\nSANITIZER REPORT IN native/ (${file}):\n${report}\n`);
  }
  process.stderr.write(
    `sanitizer reports: ${inNative.length} with a frame in native/, ${outside.length} outside the addon, ` +
      `from ${files.length} log file(s) in ${dir}\n`,
  );
  return inNative.length === 0 ? 0 : 1;
}

module.exports = { splitReports, inAddon, summary };

if (require.main === module) {
  if (process.argv.length !== 3) {
    process.stderr.write('usage: sanitizer_reports.js LOG_DIR\n');
    process.exit(2);
  }
  process.exit(main(process.argv[2]));
}
