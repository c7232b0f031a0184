// Coding tables: compact descriptions of FIDL types that drive the encoder and decoder.
// Generated bindings declare one of these per declaration (struct, table, union, enum, bits);
// the codec walks them. Member lists are given as thunks and resolved on first use, so that
// declarations may refer to each other (and to themselves, through boxes and vectors) in any order.

export type IntegerSubtype = 'int8' | 'int16' | 'int32' | 'int64' | 'uint8' | 'uint16' | 'uint32' | 'uint64';
export type PrimitiveSubtype = 'bool' | 'float32' | 'float64' | IntegerSubtype;

/** Bound of an unbounded string or vector (fidlc's MAX). */
export const MAX_BOUND = 0xffffffff;

/** Sentinel for handle rights meaning "whatever rights the sender had" (ZX_RIGHT_SAME_RIGHTS). */
export const SAME_RIGHTS = 0x80000000;

interface Shape {
  /** Inline size in bytes. */
  readonly size: number;
  /** Inline alignment in bytes. */
  readonly align: number;
}

export interface PrimitiveType extends Shape {
  readonly kind: 'primitive';
  readonly subtype: PrimitiveSubtype;
}
export interface StringType extends Shape {
  readonly kind: 'string';
  readonly maxLength: number;
  readonly nullable: boolean;
}
export interface VectorType extends Shape {
  readonly kind: 'vector';
  readonly element: FidlType;
  readonly maxLength: number;
  readonly nullable: boolean;
}
export interface ArrayType extends Shape {
  readonly kind: 'array';
  readonly element: FidlType;
  readonly count: number;
}
export interface HandleType extends Shape {
  readonly kind: 'handle';
  /** zx_obj_type_t the handle must have (0 = any). */
  readonly objType: number;
  /** Rights the handle must have (SAME_RIGHTS = no requirement). */
  readonly rights: number;
  readonly nullable: boolean;
}
export interface StructType extends Shape {
  readonly kind: 'struct';
  readonly decl: StructDecl;
}
/** box<Struct>: an optional struct stored out of line. */
export interface BoxType extends Shape {
  readonly kind: 'box';
  readonly decl: StructDecl;
}
export interface TableType extends Shape {
  readonly kind: 'table';
  readonly decl: TableDecl;
}
export interface UnionType extends Shape {
  readonly kind: 'union';
  readonly decl: UnionDecl;
  readonly nullable: boolean;
}
/** An overlay: a uint64 ordinal, then the selected member inline (strict, fixed size). */
export interface OverlayType extends Shape {
  readonly kind: 'overlay';
  readonly decl: OverlayDecl;
}
export interface EnumType extends Shape {
  readonly kind: 'enum';
  readonly decl: EnumDecl;
}
export interface BitsType extends Shape {
  readonly kind: 'bits';
  readonly decl: BitsDecl;
}
/** The framework_err variant of a result union: an int32 whose only legal value is UNKNOWN_METHOD. */
export interface FrameworkErrType extends Shape {
  readonly kind: 'framework_err';
}

export type FidlType =
  | PrimitiveType
  | StringType
  | VectorType
  | ArrayType
  | HandleType
  | StructType
  | BoxType
  | TableType
  | UnionType
  | OverlayType
  | EnumType
  | BitsType
  | FrameworkErrType;

// ---- declarations -------------------------------------------------------------------------

export interface StructField {
  /** Property name in TypeScript (camelCase). */
  readonly name: string;
  readonly type: FidlType;
  /** Byte offset inside the struct. */
  readonly offset: number;
}
/** Byte range of padding inside a struct, which must be zero on the wire. */
export interface PaddingRange {
  readonly offset: number;
  readonly length: number;
}

export class StructDecl {
  private resolvedFields: readonly StructField[] | null = null;
  private resolvedPadding: readonly PaddingRange[] | null = null;
  constructor(
    /** Fully qualified FIDL name, e.g. "fuchsia.starnix.runner/PagerExtent". */
    readonly name: string,
    readonly size: number,
    readonly align: number,
    readonly resource: boolean,
    private readonly fieldThunk: () => StructField[],
  ) {}
  get fields(): readonly StructField[] {
    if (this.resolvedFields === null) this.resolve();
    return this.resolvedFields!;
  }
  /** Gaps between fields (and after the last one) that must be zero. */
  get padding(): readonly PaddingRange[] {
    if (this.resolvedPadding === null) this.resolve();
    return this.resolvedPadding!;
  }
  private resolve(): void {
    const fields = this.fieldThunk();
    const padding: PaddingRange[] = [];
    let cursor = 0;
    for (const f of fields) {
      if (f.offset > cursor) padding.push({ offset: cursor, length: f.offset - cursor });
      cursor = f.offset + f.type.size;
    }
    // An empty struct is one byte that must be zero; the decoder checks it on its own.
    if (fields.length > 0 && this.size > cursor) padding.push({ offset: cursor, length: this.size - cursor });
    this.resolvedFields = fields;
    this.resolvedPadding = padding;
  }
}

export interface TableMember {
  readonly ordinal: number;
  readonly name: string;
  readonly type: FidlType;
}

export class TableDecl {
  private resolvedMembers: readonly TableMember[] | null = null;
  private resolvedByOrdinal: readonly (TableMember | undefined)[] = [];
  constructor(
    readonly name: string,
    readonly resource: boolean,
    /** Tables are flexible in FIDL; a strict table (fidlc allows none today) rejects unknown fields. */
    readonly strict: boolean,
    private readonly memberThunk: () => TableMember[],
  ) {}
  /** Members sorted by ordinal. */
  get members(): readonly TableMember[] {
    if (this.resolvedMembers === null) this.resolve();
    return this.resolvedMembers!;
  }
  /** members indexed by ordinal (index 0 unused). */
  get byOrdinal(): readonly (TableMember | undefined)[] {
    if (this.resolvedMembers === null) this.resolve();
    return this.resolvedByOrdinal;
  }
  private resolve(): void {
    const members = [...this.memberThunk()].sort((a, b) => a.ordinal - b.ordinal);
    const byOrdinal: (TableMember | undefined)[] = [];
    for (const m of members) byOrdinal[m.ordinal] = m;
    this.resolvedMembers = members;
    this.resolvedByOrdinal = byOrdinal;
  }
}

export interface UnionMember {
  readonly ordinal: number;
  readonly name: string;
  readonly type: FidlType;
}

export class UnionDecl {
  private resolvedMembers: readonly UnionMember[] | null = null;
  private byOrdinalMap = new Map<number, UnionMember>();
  private byNameMap = new Map<string, UnionMember>();
  constructor(
    readonly name: string,
    readonly resource: boolean,
    readonly strict: boolean,
    /** A result union (of a method with `error`, or of a flexible two-way method). */
    readonly isResult: boolean,
    private readonly memberThunk: () => UnionMember[],
  ) {}
  get members(): readonly UnionMember[] {
    if (this.resolvedMembers === null) this.resolve();
    return this.resolvedMembers!;
  }
  memberByOrdinal(ordinal: number): UnionMember | undefined {
    if (this.resolvedMembers === null) this.resolve();
    return this.byOrdinalMap.get(ordinal);
  }
  memberByName(name: string): UnionMember | undefined {
    if (this.resolvedMembers === null) this.resolve();
    return this.byNameMap.get(name);
  }
  private resolve(): void {
    const members = this.memberThunk();
    for (const m of members) {
      this.byOrdinalMap.set(m.ordinal, m);
      this.byNameMap.set(m.name, m);
    }
    this.resolvedMembers = members;
  }
}

/** An overlay's declaration: like a strict union's, plus its inline size (8 + the largest member, aligned to 8). */
export class OverlayDecl extends UnionDecl {
  constructor(name: string, readonly size: number, resource: boolean, memberThunk: () => UnionMember[]) {
    super(name, resource, true, false, memberThunk);
  }
}

export class EnumDecl {
  private readonly values: Set<number | bigint>;
  constructor(
    readonly name: string,
    readonly subtype: IntegerSubtype,
    readonly strict: boolean,
    /** Member name -> value (number, or bigint for 64-bit enums). */
    readonly members: Readonly<Record<string, number | bigint>>,
  ) {
    this.values = new Set(Object.values(members));
  }
  isKnown(value: number | bigint): boolean {
    return this.values.has(value);
  }
}

export class BitsDecl {
  constructor(
    readonly name: string,
    readonly subtype: IntegerSubtype,
    readonly strict: boolean,
    /** Union of all declared bits (number, or bigint for 64-bit bits). */
    readonly mask: number | bigint,
    readonly members: Readonly<Record<string, number | bigint>>,
  ) {}
}

// ---- constructors used by generated code ---------------------------------------------------

const PRIMITIVE_SIZES: Record<PrimitiveSubtype, number> = {
  bool: 1, int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, float32: 4,
  int64: 8, uint64: 8, float64: 8,
};

function primitive(subtype: PrimitiveSubtype): PrimitiveType {
  const size = PRIMITIVE_SIZES[subtype];
  return Object.freeze({ kind: 'primitive', subtype, size, align: size });
}

export const bool = primitive('bool');
export const int8 = primitive('int8');
export const int16 = primitive('int16');
export const int32 = primitive('int32');
export const int64 = primitive('int64');
export const uint8 = primitive('uint8');
export const uint16 = primitive('uint16');
export const uint32 = primitive('uint32');
export const uint64 = primitive('uint64');
export const float32 = primitive('float32');
export const float64 = primitive('float64');

export function primitiveType(subtype: PrimitiveSubtype): PrimitiveType {
  return primitive(subtype);
}

export function string(maxLength: number = MAX_BOUND, nullable = false): StringType {
  return { kind: 'string', maxLength, nullable, size: 16, align: 8 };
}
export function vector(element: FidlType, maxLength: number = MAX_BOUND, nullable = false): VectorType {
  return { kind: 'vector', element, maxLength, nullable, size: 16, align: 8 };
}
export function array(element: FidlType, count: number): ArrayType {
  return { kind: 'array', element, count, size: element.size * count, align: element.align };
}
export function handle(objType = 0, rights: number = SAME_RIGHTS, nullable = false): HandleType {
  return { kind: 'handle', objType, rights, nullable, size: 4, align: 4 };
}
export function struct(decl: StructDecl): StructType {
  return { kind: 'struct', decl, size: decl.size, align: decl.align };
}
export function box(decl: StructDecl): BoxType {
  return { kind: 'box', decl, size: 8, align: 8 };
}
export function table(decl: TableDecl): TableType {
  return { kind: 'table', decl, size: 16, align: 8 };
}
export function union(decl: UnionDecl, nullable = false): UnionType {
  return { kind: 'union', decl, nullable, size: 16, align: 8 };
}
export function overlay(decl: OverlayDecl): OverlayType {
  return { kind: 'overlay', decl, size: decl.size, align: 8 };
}
export function enumType(decl: EnumDecl): EnumType {
  const size = PRIMITIVE_SIZES[decl.subtype];
  return { kind: 'enum', decl, size, align: size };
}
export function bitsType(decl: BitsDecl): BitsType {
  const size = PRIMITIVE_SIZES[decl.subtype];
  return { kind: 'bits', decl, size, align: size };
}
export const frameworkErr: FrameworkErrType = Object.freeze({ kind: 'framework_err', size: 4, align: 4 });

/** A readable name of a type for error messages. */
export function describeType(t: FidlType): string {
  switch (t.kind) {
    case 'primitive': return t.subtype;
    case 'string': return `string${t.maxLength !== MAX_BOUND ? ':' + t.maxLength : ''}${t.nullable ? ':optional' : ''}`;
    case 'vector': return `vector<${describeType(t.element)}>${t.maxLength !== MAX_BOUND ? ':' + t.maxLength : ''}`;
    case 'array': return `array<${describeType(t.element)}, ${t.count}>`;
    case 'handle': return `handle(type ${t.objType})`;
    case 'struct': return t.decl.name;
    case 'box': return `box<${t.decl.name}>`;
    case 'table': case 'enum': case 'bits': return t.decl.name;
    case 'union': return t.decl.name + (t.nullable ? ':optional' : '');
    case 'overlay': return t.decl.name;
    case 'framework_err': return 'framework_err';
  }
}
