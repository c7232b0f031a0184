// The FIDL front end against our three .fidl files and a fixture library that uses every
// construct we support. Expected values are derived by hand from the wire format and fidlc's
// type-shape rules (see comments), not copied from our own output.
import { join } from 'path';
import {
  IrHandleType, IrIdentifierType, IrMethod, IrRoot, IrStruct, IrTable, IrTypeShape, IrUnion, irFromJson, irToJson,
} from '../../codegen/ir';
import { compileLibraries } from '../../codegen/ir';

const ROOT = join(__dirname, '..', '..');
const FIDL = ['zx.fidl', 'fuchsia.starnix.runner.fidl', 'starnix.pager.fidl'].map((f) => join(ROOT, 'fidl', f));
const FIXTURES = [
  join(ROOT, 'fidl', 'zx.fidl'),
  join(__dirname, 'fixtures', 'fixture.dep.fidl'),
  join(__dirname, 'fixtures', 'fixture.everything.fidl'),
];
const MAX = 0xffffffff;

function lib(roots: IrRoot[], name: string): IrRoot {
  const r = roots.find((x) => x.name === name);
  if (!r) throw new Error(`no library ${name}`);
  return r;
}
function decl<T extends { name: string }>(list: T[], name: string): T {
  const d = list.find((x) => x.name === name);
  if (!d) throw new Error(`no declaration ${name} in [${list.map((x) => x.name).join(', ')}]`);
  return d;
}
function shape(
  inline_size: number, alignment: number, depth: number, max_handles: number, max_out_of_line: number,
  has_padding: boolean, has_flexible_envelope: boolean,
): IrTypeShape {
  return { inline_size, alignment, depth, max_handles, max_out_of_line, has_padding, has_flexible_envelope };
}

describe('fuchsia.starnix.runner', () => {
  const roots = compileLibraries(FIDL);
  const runner = lib(roots, 'fuchsia.starnix.runner');
  const N = (s: string): string => `fuchsia.starnix.runner/${s}`;
  const methods = new Map<string, IrMethod>();
  for (const p of runner.protocol_declarations) for (const m of p.methods) methods.set(`${p.name}.${m.name}`, m);
  const method = (p: string, m: string): IrMethod => {
    const x = methods.get(`${N(p)}.${m}`);
    if (!x) throw new Error(`no method ${p}.${m}`);
    return x;
  };

  test('libraries come out dependencies first', () => {
    expect(roots.map((r) => r.name)).toEqual(['zx', 'fuchsia.starnix.runner', 'starnix.pager']);
    expect(runner.library_dependencies.map((d) => d.name)).toEqual(['zx']);
    expect(runner.platform).toBe('fuchsia');
  });

  test('method ordinals equal the published ones (protocol.md)', () => {
    expect(method('Manager', 'CreatePager').ordinal).toBe(0x49d14958b736198bn);
    expect(method('Pager', 'RegisterFile').ordinal).toBe(0x4f85a2ce6cae4aedn);
  });

  test('every Manager method is flexible, with the right kind and payload names', () => {
    const expected: Array<[string, string, string | undefined, string | undefined]> = [
      ['SuspendContainer', 'twoway', 'ManagerSuspendContainerRequest', 'Manager_SuspendContainer_Result'],
      ['ProxyWakeChannel', 'oneway', 'ManagerProxyWakeChannelRequest', undefined],
      ['AddWakeSource', 'oneway', 'ManagerAddWakeSourceRequest', undefined],
      ['RemoveWakeSource', 'oneway', 'ManagerRemoveWakeSourceRequest', undefined],
      ['RegisterWakeWatcher', 'twoway', 'ManagerRegisterWakeWatcherRequest', 'Manager_RegisterWakeWatcher_Result'],
      ['CreatePager', 'oneway', 'ManagerCreatePagerRequest', undefined],
    ];
    const manager = decl(runner.protocol_declarations, N('Manager'));
    expect(manager.methods.map((m) => m.name)).toEqual(expected.map((e) => e[0]));
    expect(manager.openness).toBe('open');
    expect(manager.maybe_attributes?.map((a) => a.name)).toContain('discoverable');
    for (const [name, kind, req, resp] of expected) {
      const m = method('Manager', name);
      expect([m.kind, m.strict, m.is_composed]).toEqual([kind, false, false]);
      expect(m.maybe_request_payload?.identifier).toBe(N(req!));
      expect(m.maybe_response_payload?.identifier).toBe(resp && N(resp));
    }
    expect(runner.maybe_attributes?.find((a) => a.name === 'available')?.arguments[0]).toMatchObject({
      name: 'added', value: { value: 'HEAD' },
    });
  });

  test('error and flexible responses are result unions, as fidlc makes them', () => {
    const reg = method('Pager', 'RegisterFile');
    expect(reg.has_error).toBe(true);
    expect((reg.maybe_response_success_type as IrIdentifierType).identifier).toBe(N('Pager_RegisterFile_Response'));
    // zx.Status is an alias of int32: the IR carries the aliased type.
    expect(reg.maybe_response_err_type).toMatchObject({ kind_v2: 'primitive', subtype: 'int32' });
    const result = decl(runner.union_declarations, N('Pager_RegisterFile_Result'));
    expect(result.is_result).toBe(true);
    expect(result.strict).toBe(true);
    expect(result.resource).toBe(true); // the success table holds a VMO
    expect(result.members.map((m) => [m.ordinal, m.name, m.type.kind_v2])).toEqual([
      [1, 'response', 'identifier'], [2, 'err', 'primitive'], [3, 'framework_err', 'internal'],
    ]);

    // fidlc's NamingContext: the result union takes the response context, and the user's
    // anonymous success layout the `response` member context with the name P_M_Response
    // (Rust bindings spell it PagerRegisterFileResponse, dropping the underscores).
    expect(result.naming_context).toEqual(['Pager', 'RegisterFile', 'Response']);
    expect(decl(runner.table_declarations, N('Pager_RegisterFile_Response')).naming_context)
      .toEqual(['Pager', 'RegisterFile', 'Response', 'response']);
    expect(decl(runner.table_declarations, N('PagerRegisterFileRequest')).naming_context)
      .toEqual(['Pager', 'RegisterFile', 'Request']);

    const suspend = method('Manager', 'SuspendContainer');
    expect(suspend.maybe_response_err_type).toMatchObject({ kind_v2: 'identifier', identifier: N('SuspendError') });

    // A flexible `-> ()` still gets a union: response (an empty struct) and framework_err, no err.
    const watch = method('Manager', 'RegisterWakeWatcher');
    expect(watch.has_error).toBe(false);
    const empty = decl(runner.struct_declarations, N('Manager_RegisterWakeWatcher_Response'));
    expect(empty.is_empty_success_struct).toBe(true);
    expect(decl(runner.union_declarations, N('Manager_RegisterWakeWatcher_Result')).members.map((m) => m.ordinal)).toEqual([1, 3]);
  });

  test('type shapes of every declaration match fidlc rules', () => {
    // PagerExtent: u32 @0, u32 @4, u64 @8 -> 16 bytes, align 8, no padding.
    const extent = decl(runner.struct_declarations, N('PagerExtent'));
    expect(extent.type_shape_v2).toEqual(shape(16, 8, 0, 0, 0, false, false));
    expect(extent.members.map((m) => m.field_shape_v2)).toEqual([
      { offset: 0, padding: 0 }, { offset: 4, padding: 0 }, { offset: 8, padding: 0 },
    ]);
    // Empty structs are one byte.
    expect(decl(runner.struct_declarations, N('Manager_RegisterWakeWatcher_Response')).type_shape_v2)
      .toEqual(shape(1, 1, 0, 0, 0, false, false));

    // Tables: inline a vector header (16, align 8). Out of line: 8 bytes per envelope up to the
    // highest ordinal, plus each member of more than 4 bytes (those of 4 or less sit in the
    // envelope) aligned to 8. depth = 1 (envelopes) + 1 (member) + member depth.
    // has_padding: any member whose size is not a multiple of 8.
    const tables: Array<[string, IrTypeShape]> = [
      // job(4,in) eventpair(4,in) duration(8): 3*8 + 8 = 32.
      ['ManagerSuspendContainerRequest', shape(16, 8, 2, 2, 32, true, true)],
      // duration(8) string:1024 (16 + 1024): 2*8 + 8 + 1040 = 1064; string adds a level.
      ['Manager_SuspendContainer_Response', shape(16, 8, 3, 0, 1064, true, true)],
      // job, chan, chan (in), string:1024 (16+1024), counter (in): 5*8 + 1040 = 1080.
      ['ManagerProxyWakeChannelRequest', shape(16, 8, 3, 4, 1080, true, true)],
      // job(in), string:1024 (1040), handle(in), signals u32(in): 4*8 + 1040 = 1072.
      ['ManagerAddWakeSourceRequest', shape(16, 8, 3, 2, 1072, true, true)],
      ['ManagerRemoveWakeSourceRequest', shape(16, 8, 2, 2, 16, true, true)],
      ['ManagerRegisterWakeWatcherRequest', shape(16, 8, 2, 1, 8, true, true)],
      // vmo(in), u64 (8), server_end(in): 3*8 + 8 = 32.
      ['ManagerCreatePagerRequest', shape(16, 8, 2, 2, 32, true, true)],
      // string:MAX is unbounded: out-of-line saturates at 2^32-1.
      ['PagerRegisterFileRequest', shape(16, 8, 3, 0, MAX, true, true)],
      ['Pager_RegisterFile_Response', shape(16, 8, 2, 1, 8, true, true)],
    ];
    for (const [name, expected] of tables) {
      expect([name, decl(runner.table_declarations, N(name)).type_shape_v2]).toEqual([name, expected]);
    }
    expect(runner.table_declarations.every((t) => t.resource === !['Manager_SuspendContainer_Response', 'PagerRegisterFileRequest']
      .includes(t.name.split('/')[1]))).toBe(true);

    // Unions: inline 16 (ordinal + envelope); out of line: the largest member over 4 bytes,
    // aligned, plus its own out-of-line; depth = 1 + deepest member; has_padding is always
    // true in fidlc. Strict result unions are flexible only through their members (tables).
    const unions: Array<[string, IrTypeShape]> = [
      // response table: 16 + 1064 = 1080, depth 1 + 3.
      ['Manager_SuspendContainer_Result', shape(16, 8, 4, 0, 1080, true, true)],
      // response is a 1-byte empty struct, inlined in the envelope.
      ['Manager_RegisterWakeWatcher_Result', shape(16, 8, 1, 0, 0, true, false)],
      // response table: 16 + 8 = 24, one VMO handle.
      ['Pager_RegisterFile_Result', shape(16, 8, 3, 1, 24, true, true)],
    ];
    for (const [name, expected] of unions) {
      expect([name, decl(runner.union_declarations, N(name)).type_shape_v2]).toEqual([name, expected]);
    }
    expect(runner.table_declarations).toHaveLength(tables.length);
    expect(runner.union_declarations).toHaveLength(unions.length);
    expect(runner.struct_declarations).toHaveLength(2);
  });

  test('handles carry the zx object types, rights and resource', () => {
    const members = (name: string): Map<string, IrHandleType> =>
      new Map(decl(runner.table_declarations, N(name)).members.map((m) => [m.name, m.type as IrHandleType]));
    const proxy = members('ManagerProxyWakeChannelRequest');
    expect(proxy.get('container_job')).toMatchObject({ kind_v2: 'handle', subtype: 'job', obj_type: 17, rights: 0x80000000, resource_identifier: 'zx/Handle', nullable: false });
    expect(proxy.get('container_channel')).toMatchObject({ subtype: 'channel', obj_type: 4 });
    expect(proxy.get('counter')).toMatchObject({ subtype: 'counter', obj_type: 34 });
    expect(proxy.get('name')).toMatchObject({ kind_v2: 'string', maybe_element_count: 1024 });
    expect(members('ManagerSuspendContainerRequest').get('wake_locks')).toMatchObject({ subtype: 'eventpair', obj_type: 16 });
    expect(members('ManagerAddWakeSourceRequest').get('handle')).toMatchObject({ subtype: 'handle', obj_type: 0 });
    expect(members('ManagerCreatePagerRequest').get('pager')).toMatchObject({
      kind_v2: 'endpoint', role: 'server', protocol: N('Pager'), protocol_transport: 'Channel', nullable: false,
    });
    const extents = decl(runner.table_declarations, N('PagerRegisterFileRequest')).members[3].type;
    expect(extents).toMatchObject({ kind_v2: 'vector', maybe_element_count: 1024, element_type: { identifier: N('PagerExtent') } });
    expect(decl(runner.table_declarations, N('PagerRegisterFileRequest')).members[0].type).not.toHaveProperty('maybe_element_count');
  });

  test('constants, enums and the zx library', () => {
    expect(decl(runner.const_declarations, N('PROXY_NAME_LEN')).value.value).toBe('1024');
    const err = decl(runner.enum_declarations, N('SuspendError'));
    expect([err.type, err.strict, err.maybe_unknown_value]).toEqual(['uint32', false, 0xffffffff]);
    expect(err.members.map((m) => [m.name, m.value.value])).toEqual([['WAKE_LOCKS_EXIST', '1'], ['SUSPEND_FAILURE', '2']]);
    const zx = lib(roots, 'zx');
    const status = (n: string): string => decl(zx.const_declarations, `zx/${n}`).value.value;
    expect([status('ERR_INVALID_ARGS'), status('ERR_IO'), status('ERR_FILE_BIG'), status('MAX_NAME_LEN')]).toEqual(['-10', '-40', '-53', '32']);
    expect(decl(zx.alias_declarations, 'zx/Duration').type).toMatchObject({ kind_v2: 'primitive', subtype: 'int64' });
    expect(zx.experimental_resource_declarations[0].properties.map((p) => p.name)).toEqual(['subtype', 'rights']);
    expect(zx.declarations['zx/Handle']).toBe('experimental_resource');
  });

  test('starnix.pager.Mapper', () => {
    const pager = lib(roots, 'starnix.pager');
    const m = pager.protocol_declarations[0].methods[0];
    expect([m.name, m.kind, m.strict, m.has_error]).toEqual(['AttachMapping', 'twoway', false, true]);
    const req = decl(pager.table_declarations, 'starnix.pager/MapperAttachMappingRequest');
    expect(req.resource).toBe(true);
    // vmo, uffd (in), three u64s: 5*8 + 3*8 = 64.
    expect(req.type_shape_v2).toEqual(shape(16, 8, 2, 2, 64, true, true));
    expect(pager.library_dependencies[0].declarations['zx/ObjType']).toMatchObject({ kind: 'enum' });
  });

  test('output is deterministic and survives a JSON round trip without losing ordinal bits', () => {
    const a = compileLibraries(FIDL).map(irToJson);
    const b = compileLibraries(FIDL).map(irToJson);
    expect(a).toEqual(b);
    expect(a[1]).toContain('"ordinal": 5319113280280992139,'); // 0x49d14958b736198b, exact
    const back = irFromJson(a[1]);
    expect(back).toEqual(roots[1]);
    expect(irToJson(back)).toBe(a[1]);
  });
});

describe('fixture library with every construct', () => {
  const roots = compileLibraries(FIXTURES);
  const fx = lib(roots, 'fixture.everything');
  const N = (s: string): string => `fixture.everything/${s}`;
  const struct = (n: string): IrStruct => decl(fx.struct_declarations, N(n));
  const table = (n: string): IrTable => decl(fx.table_declarations, N(n));
  const union = (n: string): IrUnion => decl(fx.union_declarations, N(n));

  test('round trip through JSON is exact', () => {
    for (const r of roots) expect(irFromJson(irToJson(r))).toEqual(r);
    expect(fx.library_dependencies.map((d) => d.name)).toEqual(['fixture.dep', 'zx']);
    expect(fx.maybe_attributes?.[0]).toMatchObject({ name: 'doc', arguments: [{ value: { value: ' A library that uses every construct the front end supports.\n' } }] });
  });

  test('constants: literals, references across libraries, members and |', () => {
    const c = (n: string): string => decl(fx.const_declarations, N(n)).value.value;
    expect([c('MAX_ITEMS'), c('NAME_LEN'), c('GREETING'), c('ENABLED'), c('RATIO'), c('DEFAULT_FLAGS'), c('FAVOURITE'), c('READ_MAP')])
      .toEqual(['16', '64', 'hi "there"', 'true', '1.5', '5', '2', '36']);
    expect(decl(fx.const_declarations, N('NAME_LEN')).value).toMatchObject({ kind: 'identifier', identifier: 'fixture.dep/NAME_LEN' });
    expect(decl(fx.const_declarations, N('FAVOURITE')).type).toMatchObject({ kind_v2: 'identifier', identifier: 'fixture.dep/Color' });
  });

  test('bits and enums with underlying types', () => {
    const flags = decl(fx.bits_declarations, N('Flags'));
    expect([flags.mask, flags.strict, flags.type.subtype]).toEqual(['7', false, 'uint16']);
    const level = decl(fx.enum_declarations, N('Level'));
    expect([level.type, level.strict, level.members.map((m) => m.value.value)]).toEqual(['int8', true, ['-1', '1']]);
    expect(level).not.toHaveProperty('maybe_unknown_value');
  });

  test('struct layout, padding and recursion through box', () => {
    // u8 @0 (+3), u32 @4, u64 @8, u16 @16 (+6) -> 24.
    expect(struct('Mixed').members.map((m) => [m.field_shape_v2.offset, m.field_shape_v2.padding])).toEqual([[0, 3], [4, 0], [8, 0], [16, 6]]);
    expect(struct('Mixed').type_shape_v2).toEqual(shape(24, 8, 0, 0, 0, true, false));
    // A recursive struct has unbounded depth and out-of-line size.
    expect(struct('Node').type_shape_v2).toEqual(shape(16, 8, MAX, 0, MAX, true, false));
    expect(struct('Node').members[1].type).toMatchObject({ kind_v2: 'identifier', identifier: N('Node'), nullable: true });
    // Five 4-byte handles.
    expect(struct('Holder').type_shape_v2).toEqual(shape(20, 4, 0, 5, 0, false, false));
    expect(struct('Holder').members.map((m) => m.type)).toMatchObject([
      { subtype: 'vmo', rights: 36, nullable: false },
      { subtype: 'event', rights: 0x4000, nullable: true },
      { subtype: 'handle', obj_type: 0 },
      { kind_v2: 'endpoint', role: 'client', protocol: N('Thing') },
      { kind_v2: 'endpoint', role: 'server', nullable: true },
    ]);
  });

  test('anonymous layouts get fidlc names and naming contexts', () => {
    expect(struct('Inner').naming_context).toEqual(['Outer', 'inner']);
    expect(table('Deep').naming_context).toEqual(['Outer', 'inner', 'deep']);
    expect(struct('ThingTellRequest').naming_context).toEqual(['Thing', 'Tell', 'Request']);
    expect(table('ThingAskRequest')).toBeDefined();
    expect(struct('ThingAskResponse').naming_context).toEqual(['Thing', 'Ask', 'Response']);
    expect(union('ThingOnEventRequest').naming_context).toEqual(['Thing', 'OnEvent', 'Request']);
    expect(struct('Thing_Nothing_Response').naming_context).toEqual(['Thing', 'Nothing', 'Response', 'response']);
    expect(union('ThingOnEventRequest')).toBeDefined();
    expect(struct('HalfFireRequest').resource).toBe(true);
  });

  test('type constructors: arrays, vectors, strings, optional unions, aliases', () => {
    const outer = struct('Outer');
    const t = (n: string): unknown => outer.members.find((m) => m.name === n)!.type;
    expect(t('pair')).toMatchObject({ kind_v2: 'array', element_count: 2, element_type: { identifier: 'fixture.dep/Point' }, type_shape_v2: { inline_size: 16 } });
    // alias Name = string:NAME_LEN (64): the alias is resolved in place.
    expect(t('names')).toMatchObject({ kind_v2: 'vector', maybe_element_count: 4, element_type: { kind_v2: 'string', maybe_element_count: 64 } });
    expect(t('maybe_names')).toMatchObject({ kind_v2: 'vector', nullable: true, element_type: { maybe_element_count: 8 } });
    expect(t('choice')).toMatchObject({ kind_v2: 'identifier', identifier: N('Choice'), nullable: true });
    expect(t('boxed')).toMatchObject({ nullable: true, type_shape_v2: { inline_size: 8, depth: 1, max_out_of_line: 24 } });
    expect(union('Choice').members.map((m) => [m.ordinal, m.name])).toEqual([[1, 'number'], [3, 'text']]);
    expect(union('Choice').strict).toBe(true);
    expect(union('Loose').type_shape_v2.has_flexible_envelope).toBe(true);
    expect(table('Settings').members.map((m) => m.ordinal)).toEqual([1, 3, 4]);
    const items = decl(fx.alias_declarations, N('Items'));
    expect(items.partial_type_ctor).toMatchObject({ name: 'vector', args: [{ name: 'uint64' }], maybe_size: { value: '16' } });
  });

  test('protocols: composition, events, selectors, strictness, error', () => {
    const thing = decl(fx.protocol_declarations, N('Thing'));
    const m = new Map(thing.methods.map((x) => [x.name, x]));
    expect([...m.keys()]).toEqual(['Tell', 'Ask', 'Try', 'Nothing', 'Fail', 'Oops', 'Renamed', 'OnEvent', 'OnEmpty', 'Ping']);
    expect(thing.composed_protocols.map((c) => c.name)).toEqual(['fixture.dep/Base']);
    expect(thing.maybe_attributes?.map((a) => a.name)).toEqual(['discoverable', 'transitional']);
    // Composed methods keep the ordinal of the protocol that declares them.
    const ping = m.get('Ping')!;
    expect([ping.is_composed, ping.strict, ping.kind]).toEqual([true, true, 'twoway']);
    expect(ping.ordinal).toBe(ordinalOf('fixture.dep/Base.Ping'));
    expect(m.get('Renamed')!.ordinal).toBe(ordinalOf('fixture.other/Thing.Renamed'));
    expect(m.get('Tell')!.ordinal).toBe(ordinalOf('fixture.everything/Thing.Tell'));
    expect(m.get('OnEvent')).toMatchObject({ kind: 'event', has_request: false, has_response: true, maybe_response_payload: { identifier: N('ThingOnEventRequest') } });
    expect(m.get('OnEmpty')).toMatchObject({ kind: 'event', strict: true });
    expect(m.get('OnEmpty')).not.toHaveProperty('maybe_response_payload');
    // Strict two-way without error: the payload is the response itself.
    expect(m.get('Ask')).toMatchObject({ strict: true, maybe_response_payload: { identifier: N('ThingAskResponse') } });
    expect(m.get('Ask')).not.toHaveProperty('maybe_response_success_type');
    // Named payloads, and an enum as the error type.
    expect(m.get('Try')).toMatchObject({
      maybe_request_payload: { identifier: N('Mixed') },
      maybe_response_success_type: { identifier: N('Settings') },
      maybe_response_err_type: { identifier: N('Open') },
    });
    expect(union('Thing_Try_Result').members.map((x) => x.name)).toEqual(['response', 'err', 'framework_err']);
    // A strict method with error: no framework_err.
    expect(union('Thing_Fail_Result').members.map((x) => x.name)).toEqual(['response', 'err']);
    expect(struct('Thing_Fail_Response').is_empty_success_struct).toBe(true);
    // Anonymous success and error layouts of a result union.
    expect(m.get('Oops')).toMatchObject({
      maybe_response_success_type: { identifier: N('Thing_Oops_Response') },
      maybe_response_err_type: { identifier: N('Thing_Oops_Error') },
    });
    expect(struct('Thing_Oops_Response').is_empty_success_struct).toBe(false);
    expect(decl(fx.enum_declarations, N('Thing_Oops_Error'))).toMatchObject({ type: 'int32', naming_context: ['Thing', 'Oops', 'Response', 'err'] });
    expect(decl(fx.protocol_declarations, N('Half')).openness).toBe('ajar');
    expect(decl(lib(roots, 'fixture.dep').protocol_declarations, 'fixture.dep/Base').openness).toBe('closed');
  });

  test('declaration_order lists every declaration once, each after what it embeds', () => {
    const order = fx.declaration_order;
    expect(new Set(order).size).toBe(order.length);
    expect([...order].sort()).toEqual(Object.keys(fx.declarations).sort());
    const before = (a: string, b: string): boolean => order.indexOf(N(a)) < order.indexOf(N(b));
    expect(before('Inner', 'Outer')).toBe(true);
    expect(before('Deep', 'Inner')).toBe(true);
    expect(before('Thing_Try_Result', 'Thing')).toBe(true);
    expect(before('Settings', 'Thing_Try_Result')).toBe(true);
    expect(before('Items', 'Settings')).toBe(true); // through the alias
    expect(before('Flags', 'DEFAULT_FLAGS')).toBe(true);
    // fidlc's order exactly: Kahn's algorithm, ready declarations taken from a stack, ties by
    // name; optional references (Outer.choice) are not edges, so Choice may come after Outer.
    expect(order.slice(0, 3).map((x) => x.split('/')[1])).toEqual(['Thing_Oops_Response', 'Thing_Oops_Error', 'Thing_Oops_Result']);
    expect(order[order.length - 1]).toBe(N('Choice'));
  });
});

function ordinalOf(selector: string): bigint {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createHash } = require('crypto') as typeof import('crypto');
  return createHash('sha256').update(selector).digest().readBigUInt64LE(0) & 0x7fffffffffffffffn;
}
