// FIDL compiler command line: .fidl files -> (front end) IR -> (back end) TypeScript modules.
//
//   node dist/codegen/cli.js FIDL_FILES... --out DIR      compile .fidl sources
//   node dist/codegen/cli.js --ir FILE.json... --out DIR  back end only, e.g. on fidlc's own IR
//   --runtime-import MODULE   what the generated modules import the FIDL runtime from: by default
//                             the package's public runtime, 'starnix-pager/fidl', so that they
//                             work in any project that depends on the package (this repository's
//                             own src/gen passes '../fidl')
// (`starnix-pager codegen ...` runs the same.)
//
// Writes one module per library (e.g. DIR/fuchsia_starnix_runner.ts). Output depends only on
// the input, so regenerating checked-in code must give the same bytes.
import * as fs from 'fs';
import * as path from 'path';
import { IrRoot, compileLibraries, irFromJson } from './ir';
import { generateTypeScript } from './backend';
import { Targets, parseTarget } from './frontend/availability';

const USAGE =
  'usage: starnix-pager codegen FIDL_FILES... --out DIR [--runtime-import MODULE] [--available PLATFORM:VERSION]...\n' +
  '       starnix-pager codegen --ir IR_FILES.json... --out DIR [--runtime-import MODULE]';

/** The module generated code imports its runtime from, unless --runtime-import says otherwise. */
export const DEFAULT_RUNTIME_IMPORT = 'starnix-pager/fidl';

export interface CliIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

/** Runs the compiler; returns the exit status (0 ok, 1 compile error, 2 usage error). */
export function runCodegen(argv: string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr }): number {
  let outDir: string | null = null;
  let runtimeImport = DEFAULT_RUNTIME_IMPORT;
  let irMode = false;
  const inputs: string[] = [];
  // --available fuchsia:HEAD (as fidlc): the version each platform is compiled at; default HEAD.
  const targets: Targets = new Map();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out') {
      if (i + 1 >= argv.length) {
        io.stderr.write(`--out needs a directory\n${USAGE}\n`);
        return 2;
      }
      outDir = argv[++i];
    } else if (a === '--runtime-import') {
      if (i + 1 >= argv.length) {
        io.stderr.write(`--runtime-import needs a module name\n${USAGE}\n`);
        return 2;
      }
      runtimeImport = argv[++i];
    } else if (a === '--available') {
      try {
        const [platform, version] = parseTarget(argv[++i] ?? '');
        targets.set(platform, version);
      } catch (e) {
        io.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
        return 2;
      }
    } else if (a === '--ir') {
      irMode = true;
    } else if (a === '-h' || a === '--help') {
      io.stdout.write(`${USAGE}\n`);
      return 0;
    } else if (a.startsWith('-')) {
      io.stderr.write(`unknown option ${a}\n${USAGE}\n`);
      return 2;
    } else {
      inputs.push(a);
    }
  }
  if (outDir === null || inputs.length === 0) {
    io.stderr.write(`${USAGE}\n`);
    return 2;
  }
  let roots: IrRoot[];
  try {
    roots = irMode ? inputs.map((f) => irFromJson(fs.readFileSync(f, 'utf8'))) : compileLibraries(inputs, { targets });
  } catch (e) {
    io.stderr.write(`${(e as Error).message}\n`);
    return 1;
  }
  try {
    const files = generateTypeScript(roots, { runtimeImport });
    fs.mkdirSync(outDir, { recursive: true });
    for (const f of files) {
      fs.writeFileSync(path.join(outDir, f.path), f.content);
      io.stdout.write(`wrote ${path.join(outDir, f.path)}\n`);
    }
  } catch (e) {
    io.stderr.write(`${(e as Error).message}\n`);
    return 1;
  }
  return 0;
}

if (require.main === module) {
  process.exitCode = runCodegen(process.argv.slice(2));
}
