// One small library per language feature (test/codegen/features/*.fidl, written for this
// project): the IR is exactly the checked-in golden IR (golden/*.json), and the facts that matter
// are asserted by hand against fidlc's rules and IR schema (declaration kinds, names, shapes,
// offsets); values encode to golden bytes derived by hand from the wire format and decode back.
import * as fs from 'fs';
import * as path from 'path';
import * as fidl from '../../src/fidl';
import { compileSources } from '../../codegen/frontend/compile';
import { HEAD } from '../../codegen/frontend/availability';
import { IrRoot, irToJson } from '../../codegen/ir';
import { FEATURES, FEATURE_DIR, featureIr, featureModules, goldenIrPath } from './features/regenerate';
import * as bytes from './features/gen/test_bytes';
import * as consts from './features/gen/test_consts';
import * as newtypes from './features/gen/test_newtypes';
import * as overlays from './features/gen/test_overlays';
import * as sparse from './features/gen/test_sparse';

function hex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s.replace(/#[^\n]*/g, '').replace(/[\s|]/g, ''), 'hex'));
}
function toHex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}
/** Encodes at rest, checks the bytes, decodes them back to the same value. */
function roundTrip(type: fidl.FidlType, value: unknown, golden: string): void {
  const { bytes: got } = fidl.encodeValue(type, value);
  expect(toHex(got)).toBe(toHex(hex(golden)));
  expect(fidl.decodeValue(type, got, [])).toEqual(value);
}

describe('golden IR and bindings are up to date', () => {
  test.each(FEATURES)('%s', (feature) => {
    const root = featureIr(feature);
    const golden = fs.readFileSync(goldenIrPath(root), 'utf8');
    if (irToJson(root) !== golden) throw new Error(`${goldenIrPath(root)} is stale: node dist/test/codegen/features/regenerate.js, then review the diff`);
  });
  test('gen/*.ts', () => {
    for (const m of featureModules()) {
      expect(fs.readFileSync(path.join(FEATURE_DIR, 'gen', m.path), 'utf8')).toBe(m.content);
    }
  });
});

const ir = (feature: string): IrRoot => featureIr(feature);

describe('sparse ordinals', () => {
  test('IR lists members by ordinal; the envelope array runs to the largest ordinal', () => {
    const t = ir('sparse').table_declarations[0];
    expect(t.members.map((m) => [m.ordinal, m.name])).toEqual([[1, 'near'], [5, 'far']]);
    // 5 envelopes of 8 bytes, plus the uint64 out of line (8): fidlc's max_out_of_line.
    expect(t.type_shape_v2).toMatchObject({ inline_size: 16, alignment: 8, depth: 2, max_out_of_line: 48 });
    expect(ir('sparse').union_declarations[0].members.map((m) => m.ordinal)).toEqual([2, 7]);
  });
  test('wire: a table with ordinals 1 and 5 has 5 envelopes, 2-4 empty', () => {
    roundTrip(fidl.table(sparse.GappyCoding), { near: 9, far: 0x0102030405060708n }, `
      05 00 00 00 00 00 00 00 | ff ff ff ff ff ff ff ff   # vector header: 5 envelopes, present
      09 00 00 00 00 00 01 00                             # 1: near, inlined (flags 0x0001)
      00 00 00 00 00 00 00 00 | 00 00 00 00 00 00 00 00 | 00 00 00 00 00 00 00 00   # 2-4 absent
      08 00 00 00 00 00 00 00                             # 5: far, 8 bytes out of line, 0 handles
      08 07 06 05 04 03 02 01`);
  });
  test('wire: union member 7', () => {
    roundTrip(fidl.union(sparse.ChoiceCoding), { tag: 'seven', value: 7 }, `
      07 00 00 00 00 00 00 00 | 07 00 00 00 00 00 01 00`);
  });
});

describe('byte', () => {
  test('is uint8 in the IR and on the wire', () => {
    const s = ir('byte').struct_declarations[0];
    expect(s.members[0].type).toMatchObject({ kind_v2: 'vector', element_type: { kind_v2: 'primitive', subtype: 'uint8' }, maybe_element_count: 16 });
    expect(s.members[1].type).toMatchObject({ kind_v2: 'primitive', subtype: 'uint8' });
    expect(s.members.map((m) => m.field_shape_v2)).toEqual([{ offset: 0, padding: 0 }, { offset: 16, padding: 7 }]);
    roundTrip(fidl.struct(bytes.BlobCoding), { data: Uint8Array.from([1, 2, 3]), one: 0xab }, `
      03 00 00 00 00 00 00 00 | ff ff ff ff ff ff ff ff | ab 00 00 00 00 00 00 00
      01 02 03 00 00 00 00 00`);
  });
});

describe('@generated_name and attributes on inline layouts', () => {
  test('names and naming contexts', () => {
    const root = ir('generated_name');
    expect(Object.keys(root.declarations)).toEqual([
      'test.naming/BoxedPart', 'test.naming/Chosen', 'test.naming/Inner', 'test.naming/MReply', 'test.naming/Outer', 'test.naming/P', 'test.naming/PMRequest',
    ]);
    const chosen = root.table_declarations.find((t) => t.name === 'test.naming/Chosen')!;
    expect(chosen.naming_context).toEqual(['Outer', 'other']);
    expect(chosen.maybe_attributes?.map((a) => a.name)).toEqual(['generated_name']);
    const outer = root.struct_declarations.find((t) => t.name === 'test.naming/Outer')!;
    expect(outer.members.map((m) => (m.type as { identifier?: string }).identifier)).toEqual(['test.naming/Inner', 'test.naming/Chosen', 'test.naming/BoxedPart']);
    expect(outer.members[2].type).toMatchObject({ nullable: true });
    expect(root.protocol_declarations[0].methods[0].maybe_response_payload).toMatchObject({ identifier: 'test.naming/MReply' });
  });
});

describe('new types', () => {
  test('IR: new_type declarations, members refer to them by name with the underlying shape', () => {
    const root = ir('newtype');
    expect(root.new_type_declarations.map((d) => [d.name, d.type.kind_v2])).toEqual([['test.newtypes/Meters', 'primitive'], ['test.newtypes/Tags', 'vector']]);
    expect(root.declarations['test.newtypes/Meters']).toBe('new_type');
    const trip = root.struct_declarations[0];
    expect(trip.members[0].type).toMatchObject({ kind_v2: 'identifier', identifier: 'test.newtypes/Meters', type_shape_v2: { inline_size: 4, alignment: 4 } });
    expect(trip.members.map((m) => m.field_shape_v2.offset)).toEqual([0, 8]);
    // fidlc's sort: ready declarations from a stack filled in name order, so Tags comes off first.
    expect(root.declaration_order).toEqual(['test.newtypes/Tags', 'test.newtypes/Meters', 'test.newtypes/Trip']);
  });
  test('wire: the underlying type\'s bytes', () => {
    const value: newtypes.Trip = { distance: 300, tags: ['ab'] };
    roundTrip(fidl.struct(newtypes.TripCoding), value, `
      2c 01 00 00 00 00 00 00                             # distance 300, padding
      01 00 00 00 00 00 00 00 | ff ff ff ff ff ff ff ff   # tags: 1 element
      02 00 00 00 00 00 00 00 | ff ff ff ff ff ff ff ff   # "ab"
      61 62 00 00 00 00 00 00`);
  });
});

describe('overlays', () => {
  test('IR: 8-byte ordinal then the largest member inline (string:4 = 16): 24 bytes', () => {
    const o = ir('overlay').overlay_declarations![0];
    expect(o).toMatchObject({ name: 'test.overlays/Num', strict: true, resource: false });
    expect(o.type_shape_v2).toMatchObject({ inline_size: 24, alignment: 8, depth: 1, max_out_of_line: 8 });
    expect(ir('overlay').struct_declarations[0].members.map((m) => m.field_shape_v2.offset)).toEqual([0, 8]);
  });
  test('wire: the ordinal as uint64, the member at +8, zero after it', () => {
    const t = fidl.struct(overlays.HolderCoding);
    roundTrip(t, { flag: true, num: { tag: 'small', value: 5 } }, `
      01 00 00 00 00 00 00 00 | 01 00 00 00 00 00 00 00 | 05 00 00 00 00 00 00 00 | 00 00 00 00 00 00 00 00`);
    roundTrip(t, { flag: false, num: { tag: 'text', value: 'hi' } }, `
      00 00 00 00 00 00 00 00 | 03 00 00 00 00 00 00 00
      02 00 00 00 00 00 00 00 | ff ff ff ff ff ff ff ff
      68 69 00 00 00 00 00 00`);
  });
  test('decode refuses an unknown ordinal and non-zero bytes after the member', () => {
    const t = fidl.struct(overlays.HolderCoding);
    const unknown = hex('00 00 00 00 00 00 00 00 | 09 00 00 00 00 00 00 00 | 00 00 00 00 00 00 00 00 | 00 00 00 00 00 00 00 00');
    expect(() => fidl.decodeValue(t, unknown, [])).toThrow(expect.objectContaining({ code: 'unknown_union_tag' }));
    const dirty = hex('00 00 00 00 00 00 00 00 | 01 00 00 00 00 00 00 00 | 05 01 00 00 00 00 00 00 | 00 00 00 00 00 00 00 00');
    expect(() => fidl.decodeValue(t, dirty, [])).toThrow(expect.objectContaining({ code: 'nonzero_padding' }));
  });
});

describe('bits and enum constants', () => {
  test('IR values and generated constants', () => {
    const root = ir('consts');
    const c = Object.fromEntries(root.const_declarations.map((d) => [d.name.split('/')[1], d]));
    expect(c.RW.value).toMatchObject({ kind: 'binary_operator', value: '3' });
    expect(c.ALL.value).toMatchObject({ kind: 'binary_operator', value: '7' });
    expect(c.DEFAULT_MODE.value).toMatchObject({ kind: 'identifier', identifier: 'test.consts/Mode.ON', value: '1' });
    expect(c.RW.type).toMatchObject({ kind_v2: 'identifier', identifier: 'test.consts/Perm' });
    expect(c.NAME.value).toMatchObject({ kind: 'literal', value: 'abc\t' });
    expect([consts.RW, consts.ALL, consts.DEFAULT_MODE, consts.MAX, consts.NAME]).toEqual([3, 7, 1, 0xffffffffffffffffn, 'abc\t']);
  });
});

describe('services', () => {
  test('IR service_declarations with client_end members', () => {
    const s = ir('service').service_declarations[0];
    expect(s.name).toBe('test.services/EchoService');
    expect(s.members.map((m) => [m.name, m.type.kind_v2, (m.type as { protocol?: string }).protocol])).toEqual([
      ['regular', 'endpoint', 'test.services/Echo'], ['reversed', 'endpoint', 'test.services/Echo'],
    ]);
  });
});

describe('versioning at a target version', () => {
  const source = fs.readFileSync(path.join(FEATURE_DIR, 'versioning.fidl'), 'utf8');
  const at = (version: number): IrRoot => {
    const roots = compileSources([{ filename: 'versioning.fidl', text: source }], { targets: new Map([['example', version]]) });
    return roots[0];
  };
  test.each([
    [1, '10', false, 'closed', ['PaintOld'], ['size', 'color'], ['RED'], false],
    [2, '20', false, 'closed', ['Paint'], ['size', 'color'], ['RED', 'GREEN'], false],
    [3, '20', true, 'open', ['Paint', 'Clear'], ['size', 'colour'], ['RED', 'GREEN'], false],
    [HEAD, '20', true, 'open', ['Paint', 'Clear'], ['size', 'colour', 'label'], ['RED', 'GREEN'], true],
  ])('at version %s', (version, limit, flexible, openness, methods, fields, colors, head) => {
    const root = at(version as number);
    expect(root.available).toEqual({ example: [version === HEAD ? 'HEAD' : String(version)] });
    expect(root.const_declarations.map((c) => c.value.value)).toEqual([limit]);
    expect(root.enum_declarations[0].strict).toBe(!flexible);
    expect(root.enum_declarations[0].members.map((m) => m.name)).toEqual(colors);
    const p = root.protocol_declarations[0];
    expect(p.openness).toBe(openness);
    expect(p.methods.map((m) => m.name)).toEqual(methods);
    // PaintOld, with @selector("Paint"), and Paint are one method: one ordinal.
    expect(new Set(p.methods.filter((m) => m.name.startsWith('Paint')).map((m) => m.ordinal)).size).toBe(1);
    expect(root.table_declarations[0].members.map((m) => m.name)).toEqual(fields);
    expect(root.table_declarations[0].members.some((m) => m.name === 'label')).toBe(head);
  });
});
