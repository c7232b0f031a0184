// `node dist/codegen/frontend/main.js FILES... --ir-out DIR`: compile .fidl files and write
// one `<library>.fidl.json` per library into DIR. Exit status 1 with a located message on errors.
import { mkdirSync, writeFileSync } from 'fs';
import { join } from 'path';
import { irToJson } from '../ir';
import { compileLibraries } from './compile';
import { FidlCompileError, FidlSyntaxError } from './errors';
import { Targets, parseTarget } from './availability';

function main(argv: string[]): number {
  const files: string[] = [];
  let outDir: string | undefined;
  const targets: Targets = new Map();
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--ir-out') {
      outDir = argv[++i];
      if (outDir === undefined) {
        process.stderr.write('--ir-out needs a directory\n');
        return 2;
      }
    } else if (argv[i] === '--available') {
      try {
        const [platform, version] = parseTarget(argv[++i] ?? '');
        targets.set(platform, version);
      } catch (e) {
        process.stderr.write(`${(e as Error).message}\n`);
        return 2;
      }
    } else {
      files.push(argv[i]);
    }
  }
  if (files.length === 0 || outDir === undefined) {
    process.stderr.write('usage: main.js FILE.fidl... --ir-out DIR [--available PLATFORM:VERSION]...\n');
    return 2;
  }
  try {
    const roots = compileLibraries(files, { targets });
    mkdirSync(outDir, { recursive: true });
    for (const root of roots) {
      const path = join(outDir, `${root.name}.fidl.json`);
      writeFileSync(path, irToJson(root));
      process.stdout.write(`${path}\n`);
    }
    return 0;
  } catch (e) {
    // Located errors as they are; anything else (an unreadable file) as one line, never a stack.
    process.stderr.write(`${e instanceof FidlSyntaxError || e instanceof FidlCompileError ? e.message : `error: ${(e as Error).message}`}\n`);
    return 1;
  }
}

process.exitCode = main(process.argv.slice(2));
