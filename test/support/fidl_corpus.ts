// Where the FIDL corpus of real Fuchsia libraries is (../shared/fidl-corpus beside the checkout,
// or FIDL_CORPUS), and each library's files with those of its `using` closure, dependencies
// first. Nothing of the corpus is copied into the project: tests read it from there and are
// skipped with "corpus not found" where it is absent.
import * as fs from 'fs';
import * as path from 'path';

const REPO = path.resolve(__dirname, '..', '..');

/** The corpus directory, or null when it is not on this machine. */
export function findCorpus(): string | null {
  const candidates = [
    process.env.FIDL_CORPUS,
    path.resolve(REPO, '..', 'shared', 'fidl-corpus'),
    path.resolve(REPO, '..', '..', 'shared', 'fidl-corpus'),
  ].filter((p): p is string => p !== undefined && p !== '');
  return candidates.find((p) => fs.existsSync(path.join(p, 'check.sh'))) ?? null;
}

/** The corpus's libraries (folders holding .fidl files), by name. */
export function corpusLibraries(corpus: string): string[] {
  return fs.readdirSync(corpus)
    .filter((d) => fs.statSync(path.join(corpus, d)).isDirectory() && fidlFiles(corpus, d).length > 0)
    .sort();
}

function fidlFiles(corpus: string, lib: string): string[] {
  const dir = path.join(corpus, lib);
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((f) => f.endsWith('.fidl')).sort().map((f) => path.join(dir, f));
}

function usings(corpus: string, lib: string): string[] {
  const out = new Set<string>();
  for (const f of fidlFiles(corpus, lib)) {
    for (const m of fs.readFileSync(f, 'utf8').matchAll(/^using ([A-Za-z0-9_.]+)/gm)) out.add(m[1]);
  }
  return [...out].sort();
}

/** `lib`'s files and those of every library it uses, transitively, dependencies first. */
export function closureFiles(corpus: string, lib: string): string[] {
  const order: string[] = [];
  const visit = (l: string): void => {
    if (order.includes(l)) return;
    for (const d of usings(corpus, l)) visit(d);
    order.push(l);
  };
  visit(lib);
  return order.flatMap((l) => fidlFiles(corpus, l));
}
