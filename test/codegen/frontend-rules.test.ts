// The rules fidlc enforces that change what a program means or what goes on the wire, each
// refused with a FidlCompileError that names the file, line and column (frontend-errors.test.ts
// has the older kinds: names, ordinals, resourceness, constraints, constants, cycles); and the
// `codegen` command's answer to a bad file: `file:line:col: error: ...`, exit status 1, no stack.
import { spawnSync } from 'child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { compileSources } from '../../codegen/frontend/compile';
import { CompileErrorKind, FidlCompileError } from '../../codegen/frontend/errors';

const ROOT = join(__dirname, '..', '..');

function compileError(text: string, targets?: Map<string, number>): FidlCompileError {
  try {
    compileSources([{ filename: 'rules.fidl', text }], { targets });
  } catch (e) {
    if (e instanceof FidlCompileError) return e;
    throw e;
  }
  throw new Error('expected a compile error');
}

const V = '@available(added=1)\nlibrary a;\n'; // a versioned library (platform "a"): lines 1-2

// [name, kind, source, line, column, message]
const cases: Array<[string, CompileErrorKind, string, number, number, RegExp]> = [
  // ---- availability (versioning changes which elements exist, and their ABI) ----
  ['@available in an unversioned library', 'availability', 'library a;\n@available(added=2)\nconst X uint8 = 1;\n', 2, 1, /library declaration needs @available/],
  ['library @available without added', 'availability', '@available(deprecated=2)\nlibrary a;\n', 1, 1, /needs 'added'/],
  ['platform on a declaration', 'availability', `${V}@available(platform="b")\nconst X uint8 = 1;\n`, 3, 12, /only allowed on the library/],
  ['renamed on a declaration', 'availability', `${V}@available(removed=2, renamed="Y")\nconst X uint8 = 1;\n`, 3, 23, /only allowed on members/],
  ['renamed without removed or replaced', 'availability', `${V}type T = table {\n  @available(renamed="y")\n  1: x uint8;\n};\n`, 4, 3, /needs 'removed' or 'replaced'/],
  ['removed and replaced together', 'availability', `${V}@available(removed=2, replaced=2)\nconst X uint8 = 1;\n`, 3, 1, /cannot both be given/],
  ['removed before added', 'availability', `${V}@available(added=3, removed=2)\nconst X uint8 = 1;\n`, 3, 1, /must come after added=3/],
  ['deprecated before added', 'availability', `${V}@available(added=3, deprecated=2)\nconst X uint8 = 1;\n`, 3, 1, /comes before added=3/],
  ['not a version', 'availability', `${V}@available(added=LATER)\nconst X uint8 = 1;\n`, 3, 12, /'LATER' is not a version/],
  ['unknown argument', 'availability', `${V}@available(addded=2)\nconst X uint8 = 1;\n`, 3, 12, /unknown @available argument 'addded'/],
  ['member added before its parent', 'availability', `${V}@available(added=3)\ntype T = table {\n  @available(added=2)\n  1: x uint8;\n};\n`, 5, 3, /before its parent was added/],
  ['member removed after its parent', 'availability', `${V}@available(removed=3)\ntype T = table {\n  @available(removed=4)\n  1: x uint8;\n};\n`, 5, 3, /after its parent is removed/],
  ['replaced without a replacement', 'availability', `${V}type T = table {\n  @available(replaced=2)\n  1: x uint8;\n};\n`, 4, 3, /no member with the same ABI identity is added at 2/],
  ['removed but replaced in fact', 'availability', `${V}type T = table {\n  @available(removed=2)\n  1: x uint8;\n  @available(added=2)\n  1: x uint16;\n};\n`, 4, 3, /use replaced=/],
  ['replacement with another name and no renamed', 'availability', `${V}type T = table {\n  @available(replaced=2)\n  1: x uint8;\n  @available(added=2)\n  1: y uint8;\n};\n`, 4, 3, /use renamed= to change its name/],
  ['renamed to a name the replacement does not have', 'availability', `${V}type T = table {\n  @available(replaced=2, renamed="z")\n  1: x uint8;\n  @available(added=2)\n  1: y uint8;\n};\n`, 4, 3, /not by 'z'/],
  ['modifier availability with other arguments', 'availability', `${V}type E = strict(deprecated=2) enum { A = 1; };\n`, 3, 17, /takes only 'added' and 'removed'/],
  ['versioned modifier in an unversioned library', 'availability', 'library a;\ntype E = strict(added=2) enum { A = 1; };\n', 2, 10, /has no @available/],
  ['duplicate @available', 'bad-attribute', `${V}@available(added=2)\n@available(deprecated=3)\nconst X uint8 = 1;\n`, 4, 1, /duplicate attribute @available/],
  // ---- modifiers (strictness and resourceness change the wire and the bindings) ----
  ['strict and flexible at once', 'bad-modifier', 'library a;\ntype U = strict flexible union { 1: x uint8; };\n', 2, 17, /cannot both apply/],
  ['versioned strict and flexible overlapping', 'bad-modifier', `${V}type U = strict(removed=3) flexible(added=2) union { 1: x uint8; };\n`, 3, 28, /cannot both apply/],
  ['duplicate modifier', 'bad-modifier', 'library a;\ntype S = resource resource struct {};\n', 2, 19, /duplicate modifier 'resource'/],
  ['resource enum', 'bad-modifier', 'library a;\ntype E = resource enum { A = 1; };\n', 2, 10, /cannot be a resource/],
  ['flexible table', 'bad-modifier', 'library a;\ntype T = flexible table {};\n', 2, 10, /tables cannot be flexible/],
  ['two protocol opennesses', 'bad-modifier', 'library a;\nopen closed protocol P {};\n', 2, 6, /cannot both apply/],
  ['flexible overlay', 'bad-modifier', 'library a;\ntype O = flexible overlay { 1: x uint8; };\n', 2, 10, /overlays are always strict/],
  ['overlay without strict', 'bad-modifier', 'library a;\ntype O = overlay { 1: x uint8; };\n', 2, 6, /must be declared strict/],
  // ---- attributes that change ordinals, names and payload names ----
  ['malformed @selector', 'bad-attribute', 'library a;\nprotocol P {\n  @selector("no spaces")\n  strict M();\n};\n', 3, 3, /invalid @selector/],
  ['malformed @discoverable name', 'bad-attribute', 'library a;\n@discoverable(name="Not A Name")\nprotocol P {};\n', 2, 15, /invalid @discoverable name/],
  ['@generated_name that is not a name', 'bad-attribute', 'library a;\ntype S = struct {\n  x @generated_name("1x") struct {};\n};\n', 3, 5, /not a valid name/],
  ['duplicate attribute', 'bad-attribute', 'library a;\n@selector("A")\n@selector("B")\nconst X uint8 = 1;\n', 3, 1, /duplicate attribute @selector/],
  // ---- layouts and types ----
  ['table ordinal over 64', 'bad-type', 'library a;\ntype T = table {\n  65: x uint8;\n};\n', 3, 7, /over 64/],
  ['flexible enum member at the unknown placeholder', 'bad-constant', 'library a;\ntype E = flexible enum : uint8 {\n  A = 1;\n  B = 255;\n};\n', 4, 3, /stands for unknown values/],
  ['overlay of handles', 'bad-type', 'library a;\nresource_definition H : uint32 { properties { subtype S; }; };\ntype S = enum : uint32 { NONE = 0; };\ntype O = strict resource overlay {\n  1: h H;\n};\n', 5, 6, /overlay members cannot be handles/],
  ['service member that is not a client_end', 'bad-type', 'library a;\nservice S {\n  m uint8;\n};\n', 3, 5, /must be client_end/],
  ['new type of itself', 'include-cycle', 'library a;\ntype N = N;\n', 2, 6, /refers to itself/],
  ['a service as a type', 'bad-type', 'library a;\nprotocol P {};\nservice S { p client_end:P; };\nconst X S = 1;\n', 4, 9, /is not a type/],
];

describe('each rule, with file, line and column', () => {
  test.each(cases)('%s', (_name, kind, text, line, column, message) => {
    const e = compileError(text);
    expect(e.kind).toBe(kind);
    expect(e.message).toMatch(message);
    expect([e.file, e.line, e.column]).toEqual(['rules.fidl', line, column]);
    expect(e.message.startsWith(`rules.fidl:${line}:${column}: error: `)).toBe(true);
  });

  test('an element absent at the target is not there to be named', () => {
    const src = `${V}@available(added=2)\nconst X uint8 = 1;\nconst Y uint8 = X;\n`;
    const e = compileError(src, new Map([['a', 1]]));
    expect([e.kind, e.line]).toEqual(['undefined-name', 5]);
    expect(() => compileSources([{ filename: 'rules.fidl', text: src }], { targets: new Map([['a', 2]]) })).not.toThrow();
  });
});

describe('the codegen command on a bad file', () => {
  const cli = join(ROOT, 'dist', 'codegen', 'cli.js');
  (existsSync(cli) ? test : test.skip)('prints file:line:col: error: ... and exits 1, never a stack trace', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fidl-bad-'));
    try {
      const samples: Array<[string, RegExp]> = [
        ['library a;\ntype T = table {\n  1: x uint8\n};\n', /^bad\.fidl:4:1: error: expected ';', found '}'$/],
        ['library a;\ntype T = struct { x Missing; };\n', /^bad\.fidl:2:21: error: cannot find 'Missing' in library a \[undefined-name\]$/],
        ['@available(added=1)\nlibrary a;\n@available(added=3, removed=2)\nconst X uint8 = 1;\n', /^bad\.fidl:3:1: error: removed=2 must come after added=3 \[availability\]$/],
        ['library a;\nconst S string = "bad \\q escape";\n', /^bad\.fidl:2:23: error: invalid escape sequence/],
      ];
      for (const [text, want] of samples) {
        writeFileSync(join(dir, 'bad.fidl'), text);
        const r = spawnSync(process.execPath, [cli, 'bad.fidl', '--out', join(dir, 'out')], { cwd: dir, encoding: 'utf8', timeout: 20000 });
        expect(r.status).toBe(1);
        expect(r.stdout).toBe('');
        expect(r.stderr.trim()).toMatch(want);
        expect(r.stderr).not.toMatch(/\n\s+at /);
        expect(existsSync(join(dir, 'out'))).toBe(false);
      }
      const missing = spawnSync(process.execPath, [cli, 'nope.fidl', '--out', join(dir, 'out')], { cwd: dir, encoding: 'utf8' });
      expect(missing.status).toBe(1);
      expect(missing.stderr).toMatch(/nope\.fidl/);
      expect(missing.stderr).not.toMatch(/\n\s+at /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
