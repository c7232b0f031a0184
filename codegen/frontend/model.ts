// The resolved (semantic) model of compiled libraries: declarations with their names bound,
// constants evaluated and types resolved. Type shapes and the IR are computed from this.
import type * as ast from './ast';
import type { SourceLocation } from './errors';
import type { IrConstant, IrPrimitiveSubtype, IrIntegerSubtype } from '../ir';

export interface Library {
  name: string;
  attrs: ast.Attribute[];
  files: ast.FileAst[];
  /** Libraries named in `using`, by the name (or alias) they are referred to with. */
  imports: Map<string, Library>;
  /** Every declaration, by short name (anonymous layouts included). */
  decls: Map<string, Decl>;
  /** Source order of top-level declarations, with anonymous layouts after their parents. */
  ordered: Decl[];
  /** Whether the library declared @available. */
  versioned: boolean;
  /** Its versioning platform ('unversioned' without @available). */
  platform: string;
  /** The version it was compiled at (availability.ts). */
  target: number;
  /** fidlc's declaration order, set once the library is resolved (sort.ts). */
  declarationOrder?: Decl[];
}

/**
 * A resolved type; `fromAlias` records the alias it was written through (fidlc sorts by it);
 * `newType` the new type (`type N = T;`) it names: the wire form is T's, the IR names N.
 */
export type Type = TypeBody & { fromAlias?: AliasDecl; newType?: NewTypeDecl };

type TypeBody =
  | { kind: 'primitive'; subtype: IrPrimitiveSubtype }
  | { kind: 'string'; maxSize?: number; nullable: boolean }
  | { kind: 'vector'; element: Type; maxSize?: number; nullable: boolean }
  | { kind: 'array'; element: Type; count: number }
  | { kind: 'handle'; resource: ResourceDecl; objType: number; subtype: string; rights: number; nullable: boolean }
  | { kind: 'endpoint'; role: 'client' | 'server'; protocol: ProtocolDecl; nullable: boolean }
  /** struct, table, union, enum or bits; a nullable struct is a `box<S>`. */
  | { kind: 'identifier'; decl: LayoutDecl; nullable: boolean }
  /** `framework_err` of flexible methods' result unions. */
  | { kind: 'internal' };

interface DeclBase {
  name: string;
  library: Library;
  attrs: ast.Attribute[];
  loc: SourceLocation;
  /** Set for layouts: the naming context (fidlc's), e.g. ['Pager', 'RegisterFile', 'Request']. */
  namingContext?: string[];
}

export interface ConstDecl extends DeclBase {
  kind: 'const';
  ast: ast.ConstDecl;
  type?: Type;
  value?: ConstValue;
  state: 'new' | 'resolving' | 'done';
}

export interface AliasDecl extends DeclBase {
  kind: 'alias';
  ast: ast.AliasDecl;
  type?: Type;
  state: 'new' | 'resolving' | 'done';
}

export interface StructMember {
  name: string;
  type: Type;
  attrs: ast.Attribute[];
  loc: SourceLocation;
  defaultValue?: ConstValue;
}

export interface StructDecl extends DeclBase {
  kind: 'struct';
  layout: ast.Layout;
  resource: boolean;
  members: StructMember[];
  isEmptySuccessStruct: boolean;
}

export interface EnvelopeMember {
  ordinal: number;
  attrs: ast.Attribute[];
  loc: SourceLocation;
  /** Absent for reserved members. */
  used?: { name: string; type: Type };
}

export interface TableDecl extends DeclBase {
  kind: 'table';
  layout: ast.Layout;
  resource: boolean;
  members: EnvelopeMember[];
}

export interface OverlayDecl extends DeclBase {
  kind: 'overlay';
  layout: ast.Layout;
  resource: boolean;
  members: EnvelopeMember[];
}

export interface NewTypeDecl extends DeclBase {
  kind: 'newtype';
  ast: ast.NewTypeDecl;
  type?: Type;
  state: 'new' | 'resolving' | 'done';
}

export interface ServiceDecl extends DeclBase {
  kind: 'service';
  ast: ast.ServiceDecl;
  members: Array<{ name: string; type: Type; attrs: ast.Attribute[]; loc: SourceLocation }>;
}

export interface UnionDecl extends DeclBase {
  kind: 'union';
  layout: ast.Layout;
  resource: boolean;
  strict: boolean;
  members: EnvelopeMember[];
  isResult: boolean;
}

export interface EnumBitsMember {
  name: string;
  attrs: ast.Attribute[];
  loc: SourceLocation;
  value: bigint;
  constant: IrConstant;
  /** Declarations the value expression names. */
  refs: Decl[];
}

export interface EnumDecl extends DeclBase {
  kind: 'enum';
  layout: ast.Layout;
  subtype: IrIntegerSubtype;
  strict: boolean;
  members: EnumBitsMember[];
  state: 'new' | 'resolving' | 'done';
}

export interface BitsDecl extends DeclBase {
  kind: 'bits';
  layout: ast.Layout;
  subtype: IrIntegerSubtype;
  strict: boolean;
  members: EnumBitsMember[];
  state: 'new' | 'resolving' | 'done';
}

export interface ResourceDecl extends DeclBase {
  kind: 'resource';
  ast: ast.ResourceDecl;
  subtypeEnum?: EnumDecl;
  rightsBits?: BitsDecl;
  underlying?: Type;
}

export interface Method {
  name: string;
  attrs: ast.Attribute[];
  loc: SourceLocation;
  strict: boolean;
  ordinal: bigint;
  selector: string;
  hasRequest: boolean;
  requestPayload?: LayoutDecl;
  hasResponse: boolean;
  /** The wire response body (the result union when there is one). */
  responsePayload?: LayoutDecl;
  successType?: Type;
  errorType?: Type;
  hasError: boolean;
  /** The protocol that declares it (differs from the owner for composed methods). */
  declaredIn: ProtocolDecl;
}

export interface ProtocolDecl extends DeclBase {
  kind: 'protocol';
  ast: ast.ProtocolDecl;
  openness: 'open' | 'ajar' | 'closed';
  composes: Array<{ protocol: ProtocolDecl; attrs: ast.Attribute[]; loc: SourceLocation }>;
  /** Own methods only; composed ones are gathered when emitting. */
  methods: Method[];
}

export type LayoutDecl = StructDecl | TableDecl | UnionDecl | OverlayDecl | EnumDecl | BitsDecl;
export type Decl = ConstDecl | AliasDecl | NewTypeDecl | LayoutDecl | ResourceDecl | ProtocolDecl | ServiceDecl;

/** An evaluated constant: its value and its IR form. */
export interface ConstValue {
  value: bigint | string | boolean;
  /** Set when the value is a float literal (kept as its source text). */
  float?: boolean;
  ir: IrConstant;
  /** Declarations the expression names (constants, enums/bits of members). */
  refs: Decl[];
}

export function fqn(decl: { name: string; library: Library }): string {
  return `${decl.library.name}/${decl.name}`;
}
