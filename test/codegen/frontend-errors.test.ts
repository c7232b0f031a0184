// Bad FIDL must fail with a typed error that names the file, line and column, and the kind of
// compile error; never with a crash or a half-made IR.
import { spawnSync } from 'child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { compileSources } from '../../codegen/frontend/compile';
import { CompileErrorKind, FidlCompileError, FidlSyntaxError } from '../../codegen/frontend/errors';

const ROOT = join(__dirname, '..', '..');
const ZX = { filename: 'zx.fidl', text: readFileSync(join(ROOT, 'fidl', 'zx.fidl'), 'utf8') };

function compile(text: string, withZx = false): void {
  compileSources([...(withZx ? [ZX] : []), { filename: 'test.fidl', text }]);
}

function syntaxError(text: string): FidlSyntaxError {
  try {
    compile(text);
  } catch (e) {
    if (e instanceof FidlSyntaxError) return e;
    throw e;
  }
  throw new Error('expected a syntax error');
}

function compileError(text: string, withZx = false): FidlCompileError {
  try {
    compile(text, withZx);
  } catch (e) {
    if (e instanceof FidlCompileError) return e;
    throw e;
  }
  throw new Error('expected a compile error');
}

describe('syntax errors', () => {
  test('name file, line and column', () => {
    const e = syntaxError('library a;\n\ntype S = struct {\n    x uint32\n};\n');
    expect(e).toBeInstanceOf(FidlSyntaxError);
    // The missing ';' is noticed at the '}' on line 5, column 1.
    expect([e.file, e.line, e.column]).toEqual(['test.fidl', 5, 1]);
    expect(e.message).toBe("test.fidl:5:1: error: expected ';', found '}'");
  });

  const cases: Array<[string, string, number, number, RegExp]> = [
    ['stray character', 'library a;\nconst X uint32 = 1 $ 2;\n', 2, 20, /unexpected character '\$'/],
    ['unterminated string', 'library a;\nconst S string = "abc;\n', 2, 18, /unterminated string/],
    ['table member without ordinal', 'library a;\ntype T = table {\n  x uint32;\n};\n', 3, 3, /expected an ordinal/],
    ['block comment', 'library a;\n/* no */\n', 2, 1, /block comments/],
    ['missing library', 'type S = struct {};\n', 1, 1, /expected 'library'/],
    ['bad library name', 'library Foo.bar;\n', 1, 13, /invalid library name component 'Foo'/],
    ['method without parameter list', 'library a;\nprotocol P {\n  M;\n};\n', 3, 4, /expected '\('/],
    ['unknown declaration', 'library a;\nstruct S {};\n', 2, 1, /expected a declaration/],
  ];
  test.each(cases)('%s', (_name, text, line, column, message) => {
    const e = syntaxError(text);
    expect([e.line, e.column]).toEqual([line, column]);
    expect(e.message).toMatch(message);
  });
});

describe('compile errors', () => {
  const cases: Array<[string, CompileErrorKind, string, boolean, number, RegExp]> = [
    ['undefined type', 'undefined-name', 'library a;\ntype S = struct {\n  x Missing;\n};\n', false, 3, /cannot find 'Missing'/],
    ['undefined library', 'undefined-name', 'library a;\nusing b;\n', false, 2, /library b is not among the files/],
    ['undefined member', 'undefined-name', 'library a;\ntype E = enum { A = 1; };\nconst X E = E.B;\n', false, 3, /has no member 'B'/],
    ['duplicate declaration', 'duplicate-name', 'library a;\ntype S = struct {};\ntype S = table {};\n', false, 3, /'S' is declared twice/],
    ['names equal up to case', 'duplicate-name', 'library a;\nconst FOO_BAR uint8 = 1;\nconst FooBar uint8 = 2;\n', false, 3, /collides with 'FOO_BAR'/],
    ['anonymous name collision', 'duplicate-name', 'library a;\ntype PM Request = struct {};\n', false, 0, /./],
    ['duplicate member', 'duplicate-name', 'library a;\ntype S = struct {\n  x uint8;\n  x uint16;\n};\n', false, 4, /member 'x' of struct S/],
    ['duplicate method ordinal', 'duplicate-ordinal',
      'library a;\nprotocol P {\n  strict A();\n  @selector("a/P.A")\n  strict B();\n};\n', false, 5, /same ordinal/],
    ['duplicate table ordinal', 'duplicate-member-ordinal', 'library a;\ntype T = table {\n  1: x uint8;\n  1: y uint8;\n};\n', false, 4, /ordinal 1 is used twice/],
    ['duplicate union ordinal', 'duplicate-member-ordinal', 'library a;\ntype U = union {\n  1: x uint8;\n  1: y uint8;\n};\n', false, 4, /ordinal 1 is used twice/],
    ['strict struct', 'bad-modifier', 'library a;\ntype S = strict struct {};\n', false, 2, /structs cannot be strict/],
    ['duplicate enum value', 'duplicate-member-ordinal', 'library a;\ntype E = enum {\n  A = 1;\n  B = 1;\n};\n', false, 4, /same value/],
    ['handle in value struct', 'resource-in-value-type', 'library a;\nusing zx;\ntype S = struct {\n  h zx.Handle;\n};\n', true, 4, /must be declared a resource/],
    ['resource table in value table', 'resource-in-value-type',
      'library a;\nusing zx;\ntype R = resource table { 1: h zx.Handle:VMO; };\ntype T = table {\n  1: r vector<R>;\n};\n', true, 5, /may contain handles/],
    ['endpoint in value union', 'resource-in-value-type', 'library a;\nprotocol P {};\ntype U = union {\n  1: p client_end:P;\n};\n', false, 4, /resource/],
    ['optional primitive', 'bad-constraint', 'library a;\ntype S = struct {\n  x uint32:optional;\n};\n', false, 3, /unexpected constraint 'optional' on uint32/],
    ['optional struct', 'bad-constraint', 'library a;\ntype A = struct {};\ntype S = struct {\n  a A:optional;\n};\n', false, 4, /use box<A>/],
    ['too many constraints', 'bad-constraint', 'library a;\ntype S = struct {\n  v vector<uint8>:<1, optional, 3>;\n};\n', false, 3, /unexpected constraint '3'/],
    ['unknown handle subtype', 'bad-constraint', 'library a;\nusing zx;\ntype S = resource struct {\n  h zx.Handle:NOPE;\n};\n', true, 4, /'NOPE' is not a ObjType member/],
    ['endpoint without protocol', 'bad-constraint', 'library a;\ntype S = resource struct {\n  c client_end;\n};\n', false, 3, /client_end needs a protocol/],
    ['optional table member', 'bad-constraint', 'library a;\ntype T = table {\n  1: s string:optional;\n};\n', false, 3, /cannot be optional/],
    ['struct cycle', 'include-cycle', 'library a;\ntype A = struct {\n  b B;\n};\ntype B = struct {\n  a A;\n};\n', false, 2, /include cycle: A -> B -> A/],
    ['cycle through a vector', 'include-cycle', 'library a;\ntype A = struct {\n  v vector<A>;\n};\n', false, 2, /include cycle/],
    ['const cycle', 'include-cycle', 'library a;\nconst X uint32 = Y;\nconst Y uint32 = X;\n', false, 2, /defined in terms of itself/],
    ['library using itself', 'bad-library', 'library a;\nusing a;\n', false, 2, /cannot use itself/],
    ['const out of range', 'bad-constant', 'library a;\nconst X uint8 = 256;\n', false, 2, /256 is out of range for uint8/],
    ['const of the wrong kind', 'bad-constant', 'library a;\nconst X string = 1;\n', false, 2, /a number cannot be used as string/],
    ['bits not a power of two', 'bad-constant', 'library a;\ntype B = bits {\n  A = 3;\n};\n', false, 3, /power of two/],
    ['string error type', 'bad-type', 'library a;\nprotocol P {\n  strict M() -> () error string;\n};\n', false, 3, /error type must be int32/],
    ['flexible method in closed protocol', 'bad-type', 'library a;\nclosed protocol P {\n  flexible M();\n};\n', false, 3, /not allowed in closed protocol/],
    ['protocol used as a type', 'bad-type', 'library a;\nprotocol P {};\ntype S = struct {\n  p P;\n};\n', false, 4, /use client_end:P/],
  ];
  test.each(cases)('%s', (name, kind, text, withZx, line, message) => {
    if (name === 'anonymous name collision') {
      // A user type named like the request payload fidlc generates for P.M collides with it.
      const e = compileError('library a;\ntype PMRequest = struct {};\nprotocol P {\n  strict M(struct { x uint8; });\n};\n');
      expect(e.kind).toBe('duplicate-name');
      expect(e.message).toMatch(/'PMRequest' is declared twice/);
      return;
    }
    const e = compileError(text, withZx);
    expect(e).toBeInstanceOf(FidlCompileError);
    expect([e.kind, e.file, e.line]).toEqual([kind, 'test.fidl', line]);
    expect(e.column).toBeGreaterThan(0);
    expect(e.message).toMatch(message);
    expect(e.message.startsWith(`test.fidl:${line}:${e.column}: error: `)).toBe(true);
    expect(e.message.endsWith(` [${kind}]`)).toBe(true);
  });

  test('a cycle of libraries', () => {
    let caught: unknown;
    try {
      compileSources([
        { filename: 'a.fidl', text: 'library a;\nusing b;\n' },
        { filename: 'b.fidl', text: 'library b;\nusing a;\n' },
      ]);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(FidlCompileError);
    expect((caught as FidlCompileError).kind).toBe('include-cycle');
    expect((caught as FidlCompileError).message).toMatch(/library dependency cycle: a -> b -> a/);
  });

  test('a self-recursive struct through box compiles', () => {
    expect(() => compile('library a;\ntype N = struct {\n  next box<N>;\n};\n')).not.toThrow();
  });
});

describe('main.js command', () => {
  const main = join(ROOT, 'dist', 'codegen', 'frontend', 'main.js');
  const run = (args: string[]) => spawnSync(process.execPath, [main, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 20000 });
  const haveBuild = existsSync(main);

  (haveBuild ? test : test.skip)('writes one <library>.fidl.json per library', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fidl-ir-'));
    try {
      const r = run(['fidl/zx.fidl', 'fidl/fuchsia.starnix.runner.fidl', 'fidl/starnix.pager.fidl', '--ir-out', dir]);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      for (const name of ['zx', 'fuchsia.starnix.runner', 'starnix.pager']) {
        const json = readFileSync(join(dir, `${name}.fidl.json`), 'utf8');
        expect(JSON.parse(json).name).toBe(name);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  (haveBuild ? test : test.skip)('reports errors with their location and exits 1', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fidl-ir-'));
    try {
      const bad = join(dir, 'bad.fidl');
      writeFileSync(bad, 'library bad;\ntype S = struct {\n  x Nope;\n};\n');
      const r = run([bad, '--ir-out', dir]);
      expect(r.status).toBe(1);
      expect(r.stderr).toBe(`${bad}:3:5: error: cannot find 'Nope' in library bad [undefined-name]\n`);
      expect(existsSync(join(dir, 'bad.fidl.json'))).toBe(false);
      expect(run(['fidl/zx.fidl']).status).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
