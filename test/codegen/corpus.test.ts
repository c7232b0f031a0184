// Real Fuchsia libraries (the shared FIDL corpus, read in place): each compiles unmodified with
// its dependencies at fuchsia:HEAD, front end and back end, and the TypeScript generated for all
// of them type-checks under `tsc --strict` against the project's runtime.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { generateTypeScript } from '../../codegen/backend';
import { compileLibraries } from '../../codegen/frontend/compile';
import { closureFiles, corpusLibraries, findCorpus } from '../support/fidl_corpus';

const corpus = findCorpus();
const repo = path.resolve(__dirname, '..', '..');
const libraries = corpus === null ? [] : corpusLibraries(corpus);

if (corpus === null) {
  test.skip('FIDL corpus: skipped: corpus not found (../shared/fidl-corpus or FIDL_CORPUS)', () => undefined);
} else {
  describe('every corpus library compiles unmodified at fuchsia:HEAD', () => {
    test.each(libraries)('%s', (lib) => {
      const roots = compileLibraries(closureFiles(corpus, lib));
      const root = roots[roots.length - 1];
      expect(root.name).toBe(lib);
      expect(root.platform).toBe('fuchsia');
      const files = generateTypeScript(roots);
      expect(files.map((f) => f.path)).toContain(`${lib.replace(/\./g, '_')}.ts`);
    });
  });

  test('the TypeScript generated for the whole corpus type-checks under tsc --strict', () => {
    // The biggest closure (fuchsia.component.runner) with fuchsia.starnix.runner: every library.
    const all = [...new Set(libraries.flatMap((l) => closureFiles(corpus, l)))];
    const roots = compileLibraries(all);
    expect(roots.map((r) => r.name).sort()).toEqual(libraries);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fidl-corpus-ts-'));
    try {
      const runtime = path.join(repo, 'src', 'fidl');
      for (const f of generateTypeScript(roots, { runtimeImport: runtime })) fs.writeFileSync(path.join(dir, f.path), f.content);
      fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
        compilerOptions: {
          target: 'ES2022', module: 'commonjs', lib: ['ES2022'], strict: true, noEmit: true, noImplicitOverride: true,
          skipLibCheck: true, isolatedModules: true, types: ['node'], typeRoots: [path.join(repo, 'node_modules', '@types')],
        },
        include: ['*.ts'],
      }));
      const tsc = path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
      execFileSync(process.execPath, [tsc, '-p', dir], { stdio: 'pipe', timeout: 240000 });
    } catch (e) {
      const out = (e as { stdout?: Buffer }).stdout?.toString() ?? '';
      throw new Error(`tsc --strict failed on the generated corpus bindings:\n${out.slice(0, 4000)}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 300000);
}
