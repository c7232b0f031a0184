// `node dist/codegen/frontend/main.js FILES... --ir-out DIR`: compile .fidl files and write
// one `<library>.fidl.json` per library into DIR. Exit status 1 with a located message on errors.
import { mkdirSync, writeFileSync } from 'fs';
import { join } from 'path';
import { irToJson } from '../ir';
import { compileLibraries } from './compile';
import { FidlCompileError, FidlSyntaxError } from './errors';

function main(argv: string[]): number {
  const files: string[] = [];
  let outDir: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--ir-out') {
      outDir = argv[++i];
      if (outDir === undefined) {
        process.stderr.write('--ir-out needs a directory\n');
        return 2;
      }
    } else {
      files.push(argv[i]);
    }
  }
  if (files.length === 0 || outDir === undefined) {
    process.stderr.write('usage: main.js FILE.fidl... --ir-out DIR\n');
    return 2;
  }
  try {
    const roots = compileLibraries(files);
    mkdirSync(outDir, { recursive: true });
    for (const root of roots) {
      const path = join(outDir, `${root.name}.fidl.json`);
      writeFileSync(path, irToJson(root));
      process.stdout.write(`${path}\n`);
    }
    return 0;
  } catch (e) {
    if (e instanceof FidlSyntaxError || e instanceof FidlCompileError) {
      process.stderr.write(`${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

process.exitCode = main(process.argv.slice(2));
