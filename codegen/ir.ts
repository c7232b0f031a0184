// The JSON IR of a compiled FIDL library: the contract between the front end
// (codegen/frontend, which produces it) and any back end (which reads only this).
//
// It follows fidlc's schema (tools/fidl/fidlc/schema.json in the Fuchsia tree) for the parts
// this project covers, with the same key names, so a back end written against fidlc's output
// reads ours. Differences, all deliberate:
//   - Method ordinals are 63-bit values. In memory they are `bigint` (a JS number would lose
//     bits); in the JSON text they are plain integers, as fidlc writes them. Use `irToJson` /
//     `irFromJson` to cross that boundary without losing precision.
//   - `declarations` of other libraries are not repeated in `library_dependencies` beyond what
//     fidlc puts there (kind, resource, type_shape_v2).

/** Source position of a declaration, one-based, in bytes, as fidlc reports it. */
export interface IrLocation {
  filename: string;
  line: number;
  column: number;
  length: number;
}

/** Wire-format v2 shape of a type, as fidlc computes it (all counts saturate at 2^32-1). */
export interface IrTypeShape {
  inline_size: number;
  alignment: number;
  depth: number;
  max_handles: number;
  max_out_of_line: number;
  has_padding: boolean;
  has_flexible_envelope: boolean;
}

/** Where a struct member sits inside its struct, and how many padding bytes follow it. */
export interface IrFieldShape {
  offset: number;
  padding: number;
}

export interface IrLiteral {
  kind: 'string' | 'numeric' | 'bool';
  /** Resolved value (strings without quotes). */
  value: string;
  /** As written in the source (strings with quotes). */
  expression: string;
}

export interface IrLiteralConstant {
  kind: 'literal';
  literal: IrLiteral;
  value: string;
  expression: string;
}

export interface IrIdentifierConstant {
  kind: 'identifier';
  /** `lib/Name` for a const, `lib/Enum.MEMBER` for a member. */
  identifier: string;
  value: string;
  expression: string;
}

export interface IrBinaryOperatorConstant {
  kind: 'binary_operator';
  value: string;
  expression: string;
}

export type IrConstant = IrLiteralConstant | IrIdentifierConstant | IrBinaryOperatorConstant;

export interface IrAttributeArg {
  /** `value` for the single unnamed argument, as fidlc names it. */
  name: string;
  type: string;
  value: IrConstant;
  location: IrLocation;
}

export interface IrAttribute {
  /** snake_case, as fidlc normalises it (`doc`, `discoverable`, `available`, `selector`...). */
  name: string;
  arguments: IrAttributeArg[];
  location: IrLocation;
}

export type IrIntegerSubtype =
  | 'int8' | 'int16' | 'int32' | 'int64'
  | 'uint8' | 'uint16' | 'uint32' | 'uint64';
export type IrPrimitiveSubtype = IrIntegerSubtype | 'bool' | 'float32' | 'float64';

/** zx_obj_type_t names as fidlc writes them in `subtype`. */
export type IrHandleSubtype =
  | 'handle' | 'bti' | 'channel' | 'clock' | 'counter' | 'debuglog' | 'event' | 'eventpair'
  | 'exception' | 'fifo' | 'guest' | 'interrupt' | 'iob' | 'iommu' | 'job' | 'msi' | 'pager'
  | 'pcidevice' | 'pmt' | 'port' | 'process' | 'profile' | 'resource' | 'socket' | 'stream'
  | 'suspendtoken' | 'thread' | 'timer' | 'vcpu' | 'vmar' | 'vmo';

export interface IrPrimitiveType {
  kind_v2: 'primitive';
  subtype: IrPrimitiveSubtype;
  type_shape_v2: IrTypeShape;
}

export interface IrStringType {
  kind_v2: 'string';
  /** Absent when unbounded (`string` or `string:MAX`). */
  maybe_element_count?: number;
  nullable: boolean;
  type_shape_v2: IrTypeShape;
}

export interface IrVectorType {
  kind_v2: 'vector';
  element_type: IrType;
  /** Absent when unbounded. */
  maybe_element_count?: number;
  nullable: boolean;
  type_shape_v2: IrTypeShape;
}

export interface IrArrayType {
  kind_v2: 'array';
  element_type: IrType;
  element_count: number;
  type_shape_v2: IrTypeShape;
}

export interface IrHandleType {
  kind_v2: 'handle';
  /** Numeric zx_obj_type_t (0 = any handle). */
  obj_type: number;
  subtype: IrHandleSubtype;
  /** Required rights mask; 0x80000000 (ZX_RIGHT_SAME_RIGHTS) when not constrained. */
  rights: number;
  /** The resource declaration the handle comes from, e.g. `zx/Handle`. */
  resource_identifier: string;
  nullable: boolean;
  type_shape_v2: IrTypeShape;
}

/** `client_end:P` / `server_end:P`. */
export interface IrEndpointType {
  kind_v2: 'endpoint';
  role: 'client' | 'server';
  protocol: string;
  protocol_transport: string;
  nullable: boolean;
  type_shape_v2: IrTypeShape;
}

/** A reference to a declared layout: struct, table, union, enum, bits (by `lib/Name`). */
export interface IrIdentifierType {
  kind_v2: 'identifier';
  identifier: string;
  /** `box<S>` and `T:optional` give nullable identifier types. */
  nullable: boolean;
  type_shape_v2: IrTypeShape;
}

/** The `framework_err` variant of a flexible method's result union (an int32 on the wire). */
export interface IrInternalType {
  kind_v2: 'internal';
  subtype: 'framework_error';
  type_shape_v2: IrTypeShape;
}

export type IrType =
  | IrPrimitiveType
  | IrStringType
  | IrVectorType
  | IrArrayType
  | IrHandleType
  | IrEndpointType
  | IrIdentifierType
  | IrInternalType;

/** Fields every declaration and member carries. */
interface IrDeclCommon {
  deprecated: boolean;
  location: IrLocation;
  maybe_attributes?: IrAttribute[];
}

export interface IrConst extends IrDeclCommon {
  name: string;
  type: IrType;
  value: IrConstant;
}

export interface IrBitsMember extends IrDeclCommon {
  name: string;
  value: IrConstant;
}

export interface IrBits extends IrDeclCommon {
  name: string;
  naming_context?: string[];
  /** Always a primitive (unsigned) type. */
  type: IrPrimitiveType;
  /** Decimal string of the OR of all members. */
  mask: string;
  members: IrBitsMember[];
  strict: boolean;
}

export interface IrEnumMember extends IrDeclCommon {
  name: string;
  value: IrConstant;
}

export interface IrEnum extends IrDeclCommon {
  name: string;
  naming_context?: string[];
  type: IrIntegerSubtype;
  members: IrEnumMember[];
  strict: boolean;
  /** Flexible enums only: the value the bindings use for unknown members (bigint beyond 2^53). */
  maybe_unknown_value?: number | bigint;
}

export interface IrStructMember extends IrDeclCommon {
  name: string;
  type: IrType;
  field_shape_v2: IrFieldShape;
}

export interface IrStruct extends IrDeclCommon {
  name: string;
  /** Present for anonymous layouts, e.g. `["Pager", "RegisterFile", "Request"]`. */
  naming_context?: string[];
  members: IrStructMember[];
  resource: boolean;
  /** The empty success struct fidlc makes for `-> () error E` or a flexible `-> ()`. */
  is_empty_success_struct: boolean;
  type_shape_v2: IrTypeShape;
}

export interface IrTableMember extends IrDeclCommon {
  ordinal: number;
  name: string;
  type: IrType;
}

export interface IrTable extends IrDeclCommon {
  name: string;
  naming_context?: string[];
  /** Sorted by ordinal. */
  members: IrTableMember[];
  strict: boolean;
  resource: boolean;
  type_shape_v2: IrTypeShape;
}

export interface IrUnionMember extends IrDeclCommon {
  ordinal: number;
  name: string;
  type: IrType;
}

export interface IrUnion extends IrDeclCommon {
  name: string;
  naming_context?: string[];
  /** Sorted by ordinal. */
  members: IrUnionMember[];
  strict: boolean;
  resource: boolean;
  /** True for the compiler-made `<Protocol>_<Method>_Result` unions. */
  is_result: boolean;
  type_shape_v2: IrTypeShape;
}

export interface IrOverlay extends IrDeclCommon {
  name: string;
  naming_context?: string[];
  /** Sorted by ordinal. */
  members: IrUnionMember[];
  strict: true;
  resource: boolean;
  type_shape_v2: IrTypeShape;
}

export interface IrNewType extends IrDeclCommon {
  name: string;
  /** The underlying type: the new type's wire form. */
  type: IrType;
}

export interface IrService extends IrDeclCommon {
  name: string;
  members: Array<IrDeclCommon & { name: string; type: IrType }>;
}

export interface IrAlias extends IrDeclCommon {
  name: string;
  partial_type_ctor: IrPartialTypeCtor;
  /** The aliased type, fully resolved. */
  type: IrType;
}

export interface IrPartialTypeCtor {
  name: string;
  args: IrPartialTypeCtor[];
  nullable: boolean;
  maybe_size?: IrConstant;
}

export interface IrResourceProperty {
  deprecated: boolean;
  location: IrLocation;
  name: string;
  type: IrType;
}

/** `resource_definition` (zx.Handle). */
export interface IrResource extends IrDeclCommon {
  name: string;
  type: IrType;
  properties: IrResourceProperty[];
}

export interface IrMethod extends IrDeclCommon {
  name: string;
  kind: 'oneway' | 'twoway' | 'event';
  /** SHA-256 ordinal (63 bits). A bigint in memory, a JSON integer in text. */
  ordinal: bigint;
  strict: boolean;
  has_request: boolean;
  /** The request body: an identifier type naming a struct, table or union. */
  maybe_request_payload?: IrIdentifierType;
  has_response: boolean;
  /** The wire response: for flexible two-way or `error` methods, the result union. */
  maybe_response_payload?: IrIdentifierType;
  /** Present for flexible two-way methods and methods with `error`. */
  maybe_response_success_type?: IrType;
  /** Present for methods with `error`. */
  maybe_response_err_type?: IrType;
  is_composed: boolean;
  has_error: boolean;
}

export interface IrCompose {
  deprecated: boolean;
  location: IrLocation;
  maybe_attributes?: IrAttribute[];
  name: string;
}

export interface IrProtocol extends IrDeclCommon {
  name: string;
  openness: 'open' | 'ajar' | 'closed';
  composed_protocols: IrCompose[];
  /** Own methods and those composed in (`is_composed`), in declaration order. */
  methods: IrMethod[];
}

export type IrDeclKind =
  | 'alias' | 'bits' | 'const' | 'enum' | 'experimental_resource' | 'protocol' | 'struct'
  | 'table' | 'union' | 'overlay' | 'new_type' | 'service';

export interface IrExternalDecl {
  kind: IrDeclKind;
  /** struct, table and union only. */
  resource?: boolean;
  /** struct, table, union, bits and enum only. */
  type_shape_v2?: IrTypeShape;
}

export interface IrLibraryDependency {
  name: string;
  declarations: Record<string, IrExternalDecl>;
}

/** One compiled library. */
export interface IrRoot {
  name: string;
  /** `unversioned`, or the first component of the library name when it uses @available. */
  platform: string;
  available: Record<string, string[]>;
  maybe_attributes?: IrAttribute[];
  experiments: string[];
  library_dependencies: IrLibraryDependency[];
  bits_declarations: IrBits[];
  const_declarations: IrConst[];
  enum_declarations: IrEnum[];
  experimental_resource_declarations: IrResource[];
  protocol_declarations: IrProtocol[];
  service_declarations: IrService[];
  struct_declarations: IrStruct[];
  external_struct_declarations: IrStruct[];
  table_declarations: IrTable[];
  union_declarations: IrUnion[];
  /** Overlays (experimental in fidlc): absent from IR that has none. */
  overlay_declarations?: IrOverlay[];
  alias_declarations: IrAlias[];
  new_type_declarations: IrNewType[];
  /** Every declaration of this library, dependencies before dependents. */
  declaration_order: string[];
  declarations: Record<string, IrDeclKind>;
}

// ---------------------------------------------------------------------------------------------
// Serialisation that keeps 64-bit method ordinals exact.

const ORDINAL_MARK = '\u0000ordinal:';

/** JSON text of an IR, 2-space indented, ordinals written as exact integers. */
export function irToJson(root: IrRoot): string {
  const text = JSON.stringify(
    root,
    (_key, value: unknown) => (typeof value === 'bigint' ? `${ORDINAL_MARK}${value.toString()}` : value),
    2,
  );
  // JSON.stringify escapes the NUL of the mark as \u0000: unquote the marked strings.
  return text.replace(/"\\u0000ordinal:(\d+)"/g, '$1') + '\n';
}

/** Parse IR JSON text (ours or fidlc's), turning method ordinals into bigint without loss. */
export function irFromJson(text: string): IrRoot {
  // Method ordinals are the only integers that can exceed 2^53; quote every `"ordinal": N`
  // with more than 15 digits before parsing, then turn method ordinals into bigint.
  const quoted = text.replace(/("(?:ordinal|maybe_unknown_value)"\s*:\s*)(\d{16,})/g, '$1"$2"');
  const root = JSON.parse(quoted) as IrRoot;
  for (const protocol of root.protocol_declarations ?? []) {
    for (const method of protocol.methods) {
      method.ordinal = BigInt(method.ordinal as unknown as string | number);
    }
  }
  for (const e of root.enum_declarations ?? []) {
    if (typeof e.maybe_unknown_value === 'string') {
      const v = BigInt(e.maybe_unknown_value);
      e.maybe_unknown_value = v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
  }
  return root;
}

/** Signature of the front end entry point; implemented in codegen/frontend/compile.ts. */
export type CompileLibraries = (files: string[]) => IrRoot[];

export { compileLibraries } from './frontend/compile';
