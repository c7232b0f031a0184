// Syntax tree of one .fidl file, as the parser produces it (names not yet resolved).
import type { SourceLocation } from './errors';

export interface Name {
  /** Dotted components as written: `zx.Handle` -> ['zx', 'Handle']. */
  parts: string[];
  loc: SourceLocation;
}

export type ConstExpr =
  | { kind: 'literal'; literalKind: 'numeric' | 'string' | 'bool'; text: string; loc: SourceLocation }
  | { kind: 'ident'; name: Name; loc: SourceLocation }
  | { kind: 'binop'; op: '|'; left: ConstExpr; right: ConstExpr; loc: SourceLocation };

export interface AttributeArg {
  /** Undefined for the single unnamed argument. */
  name?: string;
  value: ConstExpr;
  loc: SourceLocation;
}

export interface Attribute {
  name: string;
  args: AttributeArg[];
  loc: SourceLocation;
  /** Set for `doc` attributes made from `///` comments. */
  fromDocComment?: boolean;
}

export type LayoutKind = 'struct' | 'table' | 'union' | 'enum' | 'bits' | 'overlay';

/**
 * A modifier as written (`strict`, `flexible`, `resource`, `open`, `ajar`, `closed`), with its
 * availability arguments if versioned (`flexible(added=18)`). availability.ts turns the list into
 * the element's strictness/resourceness/openness at the target version.
 */
export interface Modifier {
  name: string;
  args: AttributeArg[] | null;
  loc: SourceLocation;
}

export interface LayoutMember {
  attrs: Attribute[];
  /** table/union only. */
  ordinal?: { value: number; loc: SourceLocation };
  /** table/union `N: reserved;` members have no name or type. */
  reserved: boolean;
  name?: string;
  /** struct/table/union members. */
  type?: TypeCtor;
  /** enum/bits member value, or a struct member's default. */
  value?: ConstExpr;
  loc: SourceLocation;
}

export interface Layout {
  kind: LayoutKind;
  /** Attributes written on the inline layout itself (`@generated_name("X") struct {...}`). */
  attrs: Attribute[];
  modifiers: Modifier[];
  /** Set from `modifiers` by availability.ts. */
  strictness?: 'strict' | 'flexible';
  resource: boolean;
  /** enum/bits underlying type. */
  subtype?: TypeCtor;
  members: LayoutMember[];
  loc: SourceLocation;
}

export interface TypeCtor {
  /** A named type, or an inline (anonymous) layout. */
  target: { kind: 'named'; name: Name } | { kind: 'layout'; layout: Layout };
  /** `vector<T>`, `array<T, N>`, `box<S>`. */
  params: Array<{ kind: 'type'; type: TypeCtor } | { kind: 'const'; value: ConstExpr }>;
  /** After `:`, single or in `<...>`. */
  constraints: ConstExpr[];
  loc: SourceLocation;
}

export interface ConstDecl {
  kind: 'const';
  attrs: Attribute[];
  name: string;
  type: TypeCtor;
  value: ConstExpr;
  loc: SourceLocation;
}

export interface AliasDecl {
  kind: 'alias';
  attrs: Attribute[];
  name: string;
  type: TypeCtor;
  loc: SourceLocation;
}

export interface TypeDecl {
  kind: 'type';
  attrs: Attribute[];
  name: string;
  layout: Layout;
  loc: SourceLocation;
}

export interface ResourceDecl {
  kind: 'resource';
  attrs: Attribute[];
  name: string;
  type: TypeCtor;
  properties: Array<{ attrs: Attribute[]; name: string; type: TypeCtor; loc: SourceLocation }>;
  loc: SourceLocation;
}

export interface MethodAst {
  kind: 'method';
  attrs: Attribute[];
  modifiers: Modifier[];
  /** Set from `modifiers` by availability.ts. */
  strictness?: 'strict' | 'flexible';
  name: string;
  /** Present (possibly with no payload) for methods; absent for events. */
  request?: { payload?: TypeCtor };
  /** Present for two-way methods and events. */
  response?: { payload?: TypeCtor };
  error?: TypeCtor;
  loc: SourceLocation;
}

export interface ComposeAst {
  kind: 'compose';
  attrs: Attribute[];
  name: Name;
  loc: SourceLocation;
}

export interface ProtocolDecl {
  kind: 'protocol';
  attrs: Attribute[];
  modifiers: Modifier[];
  /** Set from `modifiers` by availability.ts. */
  openness?: 'open' | 'ajar' | 'closed';
  name: string;
  members: Array<MethodAst | ComposeAst>;
  loc: SourceLocation;
}

/** `type N = T;` where T is not a layout: a new type with T's wire form and its own name. */
export interface NewTypeDecl {
  kind: 'newtype';
  attrs: Attribute[];
  name: string;
  type: TypeCtor;
  loc: SourceLocation;
}

export interface ServiceDecl {
  kind: 'service';
  attrs: Attribute[];
  name: string;
  members: Array<{ attrs: Attribute[]; name: string; type: TypeCtor; loc: SourceLocation }>;
  loc: SourceLocation;
}

export type Decl = ConstDecl | AliasDecl | TypeDecl | NewTypeDecl | ResourceDecl | ProtocolDecl | ServiceDecl;

export interface FileAst {
  filename: string;
  libraryAttrs: Attribute[];
  library: Name;
  usings: Array<{ name: Name; alias?: string; loc: SourceLocation }>;
  decls: Decl[];
}
