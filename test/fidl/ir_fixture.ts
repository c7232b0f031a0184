// A hand-built IR, in fidlc's JSON schema, of the libraries the project speaks (zx subset,
// fuchsia.starnix.runner, starnix.pager): what fidlc itself emits for them, including its
// compiler-made names (Pager_RegisterFile_Result...). It lets the back end and the runtime be
// tested independently of the project's own front end.
import { createHash } from 'crypto';
import type {
  IrIdentifierType, IrMethod, IrProtocol, IrRoot, IrStruct, IrTable, IrType, IrTypeShape, IrUnion,
} from '../../codegen/ir';

const loc = (filename: string) => ({ filename, line: 1, column: 1, length: 1 });
const shape = (inline_size: number, alignment: number, extra: Partial<IrTypeShape> = {}): IrTypeShape => ({
  inline_size, alignment, depth: 0, max_handles: 0, max_out_of_line: 0, has_padding: false, has_flexible_envelope: false, ...extra,
});

export const t = {
  prim: (subtype: 'bool' | 'uint8' | 'uint32' | 'int32' | 'uint64' | 'int64'): IrType => {
    const size = { bool: 1, uint8: 1, uint32: 4, int32: 4, uint64: 8, int64: 8 }[subtype];
    return { kind_v2: 'primitive', subtype, type_shape_v2: shape(size, size) };
  },
  string: (max?: number, nullable = false): IrType => ({ kind_v2: 'string', ...(max !== undefined ? { maybe_element_count: max } : {}), nullable, type_shape_v2: shape(16, 8) }),
  vector: (el: IrType, max?: number, nullable = false): IrType => ({ kind_v2: 'vector', element_type: el, ...(max !== undefined ? { maybe_element_count: max } : {}), nullable, type_shape_v2: shape(16, 8) }),
  array: (el: IrType, n: number): IrType => ({ kind_v2: 'array', element_type: el, element_count: n, type_shape_v2: shape(el.type_shape_v2.inline_size * n, el.type_shape_v2.alignment) }),
  handle: (subtype: 'handle' | 'vmo' | 'channel' | 'eventpair' | 'job' | 'counter', nullable = false): IrType => ({
    kind_v2: 'handle', subtype, nullable, rights: 0x80000000, resource_identifier: 'zx/Handle',
    obj_type: { handle: 0, vmo: 3, channel: 4, eventpair: 16, job: 17, counter: 34 }[subtype], type_shape_v2: shape(4, 4, { max_handles: 1 }),
  }),
  serverEnd: (protocol: string): IrType => ({ kind_v2: 'endpoint', role: 'server', protocol, protocol_transport: 'Channel', nullable: false, type_shape_v2: shape(4, 4, { max_handles: 1 }) }),
  id: (identifier: string, size: number, align = 8, nullable = false): IrIdentifierType => ({ kind_v2: 'identifier', identifier, nullable, type_shape_v2: shape(size, align) }),
  frameworkErr: (): IrType => ({ kind_v2: 'internal', subtype: 'framework_error', type_shape_v2: shape(4, 4) }),
};

/** fidlc's method ordinal: SHA-256 of "lib/Protocol.Method", first 8 bytes LE, top bit cleared. */
export function methodOrdinal(selector: string): bigint {
  const digest = createHash('sha256').update(selector).digest();
  return digest.readBigUInt64LE(0) & 0x7fffffffffffffffn;
}

function table(file: string, name: string, resource: boolean, members: [number, string, IrType][], context?: string[]): IrTable {
  return {
    name, deprecated: false, location: loc(file), resource, strict: false, type_shape_v2: shape(16, 8),
    ...(context ? { naming_context: context } : {}),
    members: members.map(([ordinal, n, type]) => ({ ordinal, name: n, type, deprecated: false, location: loc(file) })),
  };
}

function struct(file: string, name: string, size: number, align: number, members: [string, IrType, number][], extra: Partial<IrStruct> = {}): IrStruct {
  return {
    name, deprecated: false, location: loc(file), resource: false, is_empty_success_struct: false, type_shape_v2: shape(size, align),
    members: members.map(([n, type, offset]) => ({ name: n, type, field_shape_v2: { offset, padding: 0 }, deprecated: false, location: loc(file) })),
    ...extra,
  };
}

function resultUnion(file: string, name: string, resource: boolean, success: IrType, err: IrType | null): IrUnion {
  const members: [number, string, IrType][] = [[1, 'response', success]];
  if (err) members.push([2, 'err', err]);
  members.push([3, 'framework_err', t.frameworkErr()]);
  return {
    name, deprecated: false, location: loc(file), resource, strict: true, is_result: true, type_shape_v2: shape(16, 8),
    members: members.map(([ordinal, n, type]) => ({ ordinal, name: n, type, deprecated: false, location: loc(file) })),
  };
}

interface MethodSpec {
  name: string;
  kind: 'oneway' | 'twoway';
  request?: IrIdentifierType;
  result?: IrIdentifierType;
  success?: IrType;
  err?: IrType;
  doc?: string;
}

function protocol(file: string, lib: string, name: string, discoverable: boolean, specs: MethodSpec[]): IrProtocol {
  const methods: IrMethod[] = specs.map((s) => ({
    name: s.name, kind: s.kind, ordinal: methodOrdinal(`${lib}/${name}.${s.name}`), strict: false, deprecated: false, location: loc(file),
    has_request: true, ...(s.request ? { maybe_request_payload: s.request } : {}),
    has_response: s.kind === 'twoway', ...(s.result ? { maybe_response_payload: s.result } : {}),
    ...(s.success ? { maybe_response_success_type: s.success } : {}), ...(s.err ? { maybe_response_err_type: s.err } : {}),
    is_composed: false, has_error: s.err !== undefined,
    ...(s.doc ? { maybe_attributes: [{ name: 'doc', arguments: [{ name: 'value', type: 'string', value: { kind: 'literal', value: s.doc, expression: JSON.stringify(s.doc), literal: { kind: 'string', value: s.doc, expression: JSON.stringify(s.doc) } }, location: loc(file) }], location: loc(file) }] } : {}),
  }));
  return {
    name: `${lib}/${name}`, deprecated: false, location: loc(file), openness: 'open', composed_protocols: [], methods,
    ...(discoverable ? { maybe_attributes: [{ name: 'discoverable', arguments: [], location: loc(file) }] } : {}),
  };
}

function root(name: string, parts: Partial<IrRoot>): IrRoot {
  const r: IrRoot = {
    name, platform: 'unversioned', available: {}, experiments: [], library_dependencies: [], bits_declarations: [],
    const_declarations: [], enum_declarations: [], experimental_resource_declarations: [], protocol_declarations: [],
    service_declarations: [], struct_declarations: [], external_struct_declarations: [], table_declarations: [],
    union_declarations: [], alias_declarations: [], new_type_declarations: [], declaration_order: [], declarations: {},
    ...parts,
  };
  const kinds: [string, { name: string }[]][] = [
    ['const', r.const_declarations], ['enum', r.enum_declarations], ['struct', r.struct_declarations], ['table', r.table_declarations],
    ['union', r.union_declarations], ['protocol', r.protocol_declarations], ['alias', r.alias_declarations], ['bits', r.bits_declarations],
  ];
  for (const [kind, list] of kinds) for (const d of list) r.declarations[d.name] = kind as never;
  if (r.declaration_order.length === 0) r.declaration_order = Object.keys(r.declarations);
  return r;
}

const numeric = (v: number) => ({ kind: 'literal' as const, value: String(v), expression: String(v), literal: { kind: 'numeric' as const, value: String(v), expression: String(v) } });

export function zxFixture(): IrRoot {
  const f = 'fidl/zx.fidl';
  return root('zx', {
    alias_declarations: [
      { name: 'zx/Status', deprecated: false, location: loc(f), partial_type_ctor: { name: 'int32', args: [], nullable: false }, type: t.prim('int32') },
    ],
    const_declarations: [
      { name: 'zx/MAX_NAME_LEN', deprecated: false, location: loc(f), type: t.prim('uint64'), value: numeric(32) },
      { name: 'zx/ERR_INTERNAL', deprecated: false, location: loc(f), type: t.prim('int32'), value: numeric(-1) },
    ],
    bits_declarations: [{
      name: 'zx/Rights', deprecated: false, location: loc(f), type: t.prim('uint32') as never, mask: String(0x80000003), strict: true,
      members: [
        { name: 'DUPLICATE', deprecated: false, location: loc(f), value: numeric(1) },
        { name: 'TRANSFER', deprecated: false, location: loc(f), value: numeric(2) },
        { name: 'SAME_RIGHTS', deprecated: false, location: loc(f), value: numeric(0x80000000) },
      ],
    }],
  });
}

export function runnerFixture(): IrRoot {
  const f = 'fidl/fuchsia.starnix.runner.fidl';
  const L = 'fuchsia.starnix.runner';
  const n = (s: string) => `${L}/${s}`;
  const tbl = (s: string) => t.id(n(s), 16);
  const suspendError = t.id(n('SuspendError'), 4, 4);
  return root(L, {
    library_dependencies: [{ name: 'zx', declarations: { 'zx/Status': { kind: 'alias' }, 'zx/Rights': { kind: 'bits' } } }],
    const_declarations: [{ name: n('PROXY_NAME_LEN'), deprecated: false, location: loc(f), type: t.prim('uint32'), value: numeric(1024) }],
    enum_declarations: [{
      name: n('SuspendError'), deprecated: false, location: loc(f), type: 'uint32', strict: false, maybe_unknown_value: 0xffffffff,
      members: [
        { name: 'WAKE_LOCKS_EXIST', deprecated: false, location: loc(f), value: numeric(1) },
        { name: 'SUSPEND_FAILURE', deprecated: false, location: loc(f), value: numeric(2) },
      ],
    }],
    struct_declarations: [
      struct(f, n('PagerExtent'), 16, 8, [['logical_start', t.prim('uint32'), 0], ['logical_end', t.prim('uint32'), 4], ['physical_block', t.prim('uint64'), 8]]),
      struct(f, n('Manager_RegisterWakeWatcher_Response'), 1, 1, [], { is_empty_success_struct: true }),
    ],
    table_declarations: [
      table(f, n('ManagerSuspendContainerRequest'), true, [[1, 'container_job', t.handle('job')], [2, 'wake_locks', t.handle('eventpair')], [3, 'suspend_debounce_duration', t.prim('int64')]]),
      table(f, n('ManagerSuspendContainerResponse'), false, [[1, 'suspend_time', t.prim('int64')], [2, 'resume_reason', t.string(1024)]]),
      table(f, n('ManagerProxyWakeChannelRequest'), true, [[1, 'container_job', t.handle('job')], [2, 'container_channel', t.handle('channel')], [3, 'remote_channel', t.handle('channel')], [4, 'name', t.string(1024)], [5, 'counter', t.handle('counter')]]),
      table(f, n('ManagerAddWakeSourceRequest'), true, [[1, 'container_job', t.handle('job')], [2, 'name', t.string(1024)], [3, 'handle', t.handle('handle')], [4, 'signals', t.prim('uint32')]]),
      table(f, n('ManagerRemoveWakeSourceRequest'), true, [[1, 'container_job', t.handle('job')], [2, 'handle', t.handle('handle')]]),
      table(f, n('ManagerRegisterWakeWatcherRequest'), true, [[1, 'watcher', t.handle('eventpair')]]),
      table(f, n('ManagerCreatePagerRequest'), true, [[1, 'backing_vmo', t.handle('vmo')], [2, 'block_size', t.prim('uint64')], [3, 'pager', t.serverEnd(n('Pager'))]]),
      table(f, n('PagerRegisterFileRequest'), false, [[1, 'name', t.string()], [2, 'inode_num', t.prim('uint32')], [3, 'size', t.prim('uint64')], [4, 'extents', t.vector(t.id(n('PagerExtent'), 16), 1024)]]),
      table(f, n('PagerRegisterFileResponse'), true, [[1, 'vmo', t.handle('vmo')]]),
    ],
    union_declarations: [
      resultUnion(f, n('Manager_SuspendContainer_Result'), false, tbl('ManagerSuspendContainerResponse'), suspendError),
      resultUnion(f, n('Manager_RegisterWakeWatcher_Result'), false, t.id(n('Manager_RegisterWakeWatcher_Response'), 1, 1), null),
      resultUnion(f, n('Pager_RegisterFile_Result'), true, tbl('PagerRegisterFileResponse'), t.prim('int32')),
    ],
    protocol_declarations: [
      protocol(f, L, 'Manager', true, [
        { name: 'SuspendContainer', kind: 'twoway', request: tbl('ManagerSuspendContainerRequest'), result: t.id(n('Manager_SuspendContainer_Result'), 16), success: tbl('ManagerSuspendContainerResponse'), err: suspendError },
        { name: 'ProxyWakeChannel', kind: 'oneway', request: tbl('ManagerProxyWakeChannelRequest') },
        { name: 'AddWakeSource', kind: 'oneway', request: tbl('ManagerAddWakeSourceRequest') },
        { name: 'RemoveWakeSource', kind: 'oneway', request: tbl('ManagerRemoveWakeSourceRequest') },
        { name: 'RegisterWakeWatcher', kind: 'twoway', request: tbl('ManagerRegisterWakeWatcherRequest'), result: t.id(n('Manager_RegisterWakeWatcher_Result'), 16), success: t.id(n('Manager_RegisterWakeWatcher_Response'), 1, 1) },
        { name: 'CreatePager', kind: 'oneway', request: tbl('ManagerCreatePagerRequest'), doc: ' Starts a pager over `backing_vmo`.' },
      ]),
      protocol(f, L, 'Pager', false, [
        { name: 'RegisterFile', kind: 'twoway', request: tbl('PagerRegisterFileRequest'), result: t.id(n('Pager_RegisterFile_Result'), 16), success: tbl('PagerRegisterFileResponse'), err: t.prim('int32') },
      ]),
    ],
  });
}

export function pagerFixture(): IrRoot {
  const f = 'fidl/starnix.pager.fidl';
  const L = 'starnix.pager';
  const n = (s: string) => `${L}/${s}`;
  return root(L, {
    struct_declarations: [struct(f, n('Mapper_AttachMapping_Response'), 1, 1, [], { is_empty_success_struct: true })],
    table_declarations: [
      table(f, n('MapperAttachMappingRequest'), true, [[1, 'vmo', t.handle('vmo')], [2, 'uffd', t.handle('handle')], [3, 'address', t.prim('uint64')], [4, 'length', t.prim('uint64')], [5, 'offset', t.prim('uint64')]]),
    ],
    union_declarations: [resultUnion(f, n('Mapper_AttachMapping_Result'), false, t.id(n('Mapper_AttachMapping_Response'), 1, 1), t.prim('int32'))],
    protocol_declarations: [protocol(f, L, 'Mapper', true, [
      { name: 'AttachMapping', kind: 'twoway', request: t.id(n('MapperAttachMappingRequest'), 16), result: t.id(n('Mapper_AttachMapping_Result'), 16), success: t.id(n('Mapper_AttachMapping_Response'), 1, 1), err: t.prim('int32') },
    ])],
  });
}

/** A test library with the shapes the real ones lack: strict union, box, array, bits, padding, nesting. */
export function kitchenSinkFixture(): IrRoot {
  const f = 'test/kitchen.fidl';
  const L = 'test.kitchen';
  const n = (s: string) => `${L}/${s}`;
  return root(L, {
    library_dependencies: [{ name: 'zx', declarations: { 'zx/Rights': { kind: 'bits' }, 'zx/Status': { kind: 'alias' } } }],
    enum_declarations: [{
      name: n('Color'), deprecated: false, location: loc(f), type: 'uint8', strict: true,
      members: [{ name: 'RED', deprecated: false, location: loc(f), value: numeric(1) }, { name: 'BLUE', deprecated: false, location: loc(f), value: numeric(2) }],
    }],
    struct_declarations: [
      // struct { flag bool; color Color; rights zx.Rights; big int64; tags array<uint8, 3>; } = 1+1(+2 pad)+4+8+3(+5 pad) = 24
      struct(f, n('Inner'), 24, 8, [['flag', t.prim('bool'), 0], ['color', t.id(n('Color'), 1, 1), 1], ['rights', t.id('zx/Rights', 4, 4), 4], ['big', t.prim('int64'), 8], ['tags', t.array(t.prim('uint8'), 3), 16]]),
      // struct { inner box<Inner>; choice Choice:optional; words vector<string:8>:4; maybe string:optional; }
      struct(f, n('Outer'), 64, 8, [['inner', t.id(n('Inner'), 8, 8, true), 0], ['choice', t.id(n('Choice'), 16, 8, true), 8], ['words', t.vector(t.string(8), 4), 24], ['maybe', t.string(undefined, true), 40], ['status', t.id('zx/Status', 4, 4), 56]]),
      // struct { next box<Chain>; } : recursive, for the depth limit
      struct(f, n('Chain'), 8, 8, [['next', t.id(n('Chain'), 8, 8, true), 0]]),
    ],
    union_declarations: [{
      name: n('Choice'), deprecated: false, location: loc(f), resource: false, strict: true, is_result: false, type_shape_v2: shape(16, 8),
      members: [
        { ordinal: 1, name: 'small', type: t.prim('uint32'), deprecated: false, location: loc(f) },
        { ordinal: 2, name: 'text', type: t.string(), deprecated: false, location: loc(f) },
        { ordinal: 3, name: 'inner', type: t.id(n('Inner'), 24), deprecated: false, location: loc(f) },
      ],
    }, {
      name: n('Loose'), deprecated: false, location: loc(f), resource: true, strict: false, is_result: false, type_shape_v2: shape(16, 8),
      members: [
        { ordinal: 1, name: 'num', type: t.prim('uint64'), deprecated: false, location: loc(f) },
        { ordinal: 2, name: 'h', type: t.handle('handle', true), deprecated: false, location: loc(f) },
      ],
    }],
    table_declarations: [
      table(f, n('Everything'), true, [[1, 'outer', t.id(n('Outer'), 64)], [2, 'loose', t.id(n('Loose'), 16)], [3, 'flag', t.prim('bool')], [5, 'handles', t.vector(t.handle('handle'), 3)], [6, 'nested', t.id(n('Everything'), 16)]]),
    ],
  });
}
