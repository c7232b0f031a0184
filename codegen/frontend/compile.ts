// Entry point of the FIDL front end: .fidl files in, one fidlc-schema IR per library out.
import { readFileSync } from 'fs';
import type { IrRoot } from '../ir';
import type { FileAst } from './ast';
import { checkProtocols, checkResourceness, findRecursive } from './checks';
import { Emitter } from './emit';
import { FidlCompileError } from './errors';
import { Library } from './model';
import { parseFile } from './parser';
import { Resolver } from './resolver';
import { sortDeclarations } from './sort';
import { ShapeCalculator } from './typeshape';
import { HEAD, Targets, resolveAvailability } from './availability';

/** A source given by content rather than by path (tests, tools). */
export interface FidlSource {
  filename: string;
  text: string;
}

/**
 * Compile the given .fidl files. Files are grouped by their `library` declaration; the result
 * holds one IR per library, dependencies before the libraries that use them.
 * Throws FidlSyntaxError or FidlCompileError (codegen/frontend/errors.ts) on bad input.
 */
export interface CompileOptions {
  /** Target version per platform (`--available fuchsia:HEAD`); every platform defaults to HEAD. */
  targets?: Targets;
}

export function compileLibraries(files: string[], options: CompileOptions = {}): IrRoot[] {
  return compileSources(files.map((filename) => ({ filename, text: readFileSync(filename, 'utf8') })), options);
}

export function compileSources(sources: FidlSource[], options: CompileOptions = {}): IrRoot[] {
  const asts = sources.map((s) => parseFile(s.filename, s.text));
  const targets = options.targets ?? new Map();
  // Availability first: what is not present at the target is gone before names are bound.
  const byLibrary = new Map<string, FileAst[]>();
  for (const a of asts) {
    const name = a.library.parts.join('.');
    byLibrary.set(name, [...(byLibrary.get(name) ?? []), a]);
  }
  const platforms = new Map<string, { platform: string; versioned: boolean }>();
  for (const [name, files] of byLibrary) platforms.set(name, resolveAvailability(name, files, targets));
  const grouped = groupLibraries(asts);
  for (const lib of grouped.values()) {
    const p = platforms.get(lib.name)!;
    lib.platform = p.platform;
    lib.versioned = p.versioned;
    lib.target = p.versioned ? targets.get(p.platform) ?? HEAD : HEAD;
  }
  const libraries = orderLibraries(grouped);

  const resolver = new Resolver();
  for (const lib of libraries) {
    resolver.collect(lib);
    resolver.resolve(lib);
    checkResourceness(lib);
    lib.declarationOrder = sortDeclarations(lib);
    checkProtocols(lib);
  }
  const emitter = new Emitter(resolver, new ShapeCalculator(findRecursive(libraries)));
  return libraries.map((lib) => emitter.library(lib));
}

function groupLibraries(asts: FileAst[]): Map<string, Library> {
  const libs = new Map<string, Library>();
  for (const file of asts) {
    const name = file.library.parts.join('.');
    let lib = libs.get(name);
    if (!lib) {
      lib = { name, attrs: [], files: [], imports: new Map(), decls: new Map(), ordered: [], versioned: false, platform: 'unversioned', target: HEAD };
      libs.set(name, lib);
    }
    lib.files.push(file);
    lib.attrs.push(...file.libraryAttrs);
  }
  for (const lib of libs.values()) {
    for (const file of lib.files) {
      for (const u of file.usings) {
        const target = libs.get(u.name.parts.join('.'));
        if (!target) {
          throw new FidlCompileError('undefined-name', u.loc,
            `library ${u.name.parts.join('.')} is not among the files given (needed by 'using' in ${lib.name})`);
        }
        if (target === lib) throw new FidlCompileError('bad-library', u.loc, `library ${lib.name} cannot use itself`);
        const key = u.alias ?? target.name;
        const prior = lib.imports.get(key);
        if (prior && prior !== target) {
          throw new FidlCompileError('duplicate-name', u.loc, `'${key}' already names library ${prior.name}`);
        }
        lib.imports.set(key, target);
      }
    }
  }
  return libs;
}

/** Dependencies first; a cycle of `using` is an error. Ties keep the order files were given in. */
function orderLibraries(libs: Map<string, Library>): Library[] {
  const order: Library[] = [];
  const state = new Map<Library, 'visiting' | 'done'>();
  const visit = (lib: Library, path: Library[]): void => {
    if (state.get(lib) === 'done') return;
    if (state.get(lib) === 'visiting') {
      const cycle = [...path.slice(path.indexOf(lib)), lib].map((l) => l.name).join(' -> ');
      throw new FidlCompileError('include-cycle', lib.files[0].library.loc, `library dependency cycle: ${cycle}`);
    }
    state.set(lib, 'visiting');
    for (const dep of new Set(lib.imports.values())) visit(dep, [...path, lib]);
    state.set(lib, 'done');
    order.push(lib);
  };
  for (const lib of libs.values()) visit(lib, []);
  return order;
}
