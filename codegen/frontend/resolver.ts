// Name resolution, constant evaluation, type resolution and the semantic checks of fidlc that
// this project relies on: undefined and duplicate names, duplicate method/member ordinals,
// resource types inside value types, bad constraints, and include cycles (recursion that is not
// broken by an optional/boxed reference).
import * as ast from './ast';
import { CompileErrorKind, FidlCompileError, SourceLocation } from './errors';
import {
  AliasDecl, BitsDecl, ConstDecl, ConstValue, Decl, EnumBitsMember, EnumDecl, EnvelopeMember, Library,
  LayoutDecl, Method, NewTypeDecl, OverlayDecl, ProtocolDecl, ResourceDecl, ServiceDecl, StructDecl, TableDecl, Type,
  UnionDecl, fqn,
} from './model';
import { methodOrdinal, methodSelector } from './ordinal';
import { stringLiteralValue } from './lexer';
import type { IrConstant, IrIntegerSubtype, IrPrimitiveSubtype } from '../ir';

const INTEGER_RANGES: Record<IrIntegerSubtype, [bigint, bigint]> = {
  int8: [-(2n ** 7n), 2n ** 7n - 1n],
  int16: [-(2n ** 15n), 2n ** 15n - 1n],
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint8: [0n, 2n ** 8n - 1n],
  uint16: [0n, 2n ** 16n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
};
const PRIMITIVES = new Set<string>([...Object.keys(INTEGER_RANGES), 'bool', 'float32', 'float64']);
const BUILTIN_TYPES = new Set(['string', 'vector', 'array', 'box', 'client_end', 'server_end', 'byte']);
const SAME_RIGHTS = 0x80000000;
const UINT32: Type = { kind: 'primitive', subtype: 'uint32' };

export function fail(kind: CompileErrorKind, loc: SourceLocation, detail: string): never {
  throw new FidlCompileError(kind, loc, detail);
}

function isInteger(subtype: string): subtype is IrIntegerSubtype {
  return subtype in INTEGER_RANGES;
}

/** fidlc's naming of anonymous layouts: the last context element in UpperCamelCase. */
export function upperCamel(name: string): string {
  return name
    .split('_')
    .filter((p) => p.length > 0)
    .map((p) => p[0].toUpperCase() + p.slice(1))
    .join('');
}

/** Names collide in fidlc when equal after lower-casing and dropping underscores. */
function canonical(name: string): string {
  return name.toLowerCase().replace(/_/g, '');
}

export function exprText(e: ast.ConstExpr): string {
  switch (e.kind) {
    case 'literal':
      return e.text;
    case 'ident':
      return e.name.parts.join('.');
    case 'binop':
      return `${exprText(e.left)} | ${exprText(e.right)}`;
  }
}

type Lookup =
  | { kind: 'decl'; decl: Decl }
  | { kind: 'builtin'; name: string }
  | { kind: 'member'; decl: EnumDecl | BitsDecl; member: string };

// -------------------------------------------------------------------------------------------
// Collection: create a declaration object for every named and anonymous declaration.

export class Resolver {
  /** Inline layouts of the syntax tree, to their declarations. */
  private readonly layoutDecls = new Map<ast.Layout, LayoutDecl>();
  /** Per protocol method AST, the result union and empty success struct made for it. */
  private readonly methodExtras = new Map<ast.MethodAst, { result?: UnionDecl; emptySuccess?: StructDecl }>();

  collect(lib: Library): void {
    const canonicalNames = new Map<string, Decl>();
    const register = (decl: Decl): void => {
      const prior = canonicalNames.get(canonical(decl.name));
      if (prior) {
        const same = prior.name === decl.name;
        fail('duplicate-name', decl.loc,
          same
            ? `'${decl.name}' is declared twice in library ${lib.name} (first at ${prior.loc.filename}:${prior.loc.line}:${prior.loc.column})`
            : `'${decl.name}' collides with '${prior.name}' (${prior.loc.filename}:${prior.loc.line}:${prior.loc.column}): names may not differ only in case or underscores`);
      }
      canonicalNames.set(canonical(decl.name), decl);
      lib.decls.set(decl.name, decl);
      lib.ordered.push(decl);
    };

    for (const file of lib.files) {
      for (const d of file.decls) {
        switch (d.kind) {
          case 'const':
            register({ kind: 'const', name: d.name, library: lib, attrs: d.attrs, loc: d.loc, ast: d, state: 'new' });
            break;
          case 'alias':
            register({ kind: 'alias', name: d.name, library: lib, attrs: d.attrs, loc: d.loc, ast: d, state: 'new' });
            this.collectTypeCtor(lib, d.type, [d.name], register);
            break;
          case 'resource':
            register({ kind: 'resource', name: d.name, library: lib, attrs: d.attrs, loc: d.loc, ast: d });
            break;
          case 'type':
            this.collectLayout(lib, d.layout, d.name, [d.name], d.attrs, d.loc, register);
            break;
          case 'newtype':
            register({ kind: 'newtype', name: d.name, library: lib, attrs: d.attrs, loc: d.loc, ast: d, state: 'new' });
            this.collectTypeCtor(lib, d.type, [d.name], register);
            break;
          case 'service':
            register({ kind: 'service', name: d.name, library: lib, attrs: d.attrs, loc: d.loc, ast: d, members: [] });
            break;
          case 'protocol': {
            const proto: ProtocolDecl = {
              kind: 'protocol', name: d.name, library: lib, attrs: d.attrs, loc: d.loc, ast: d,
              openness: d.openness ?? 'open', composes: [], methods: [],
            };
            register(proto);
            for (const m of d.members) {
              if (m.kind === 'method') this.collectMethod(lib, d, m, register);
            }
            break;
          }
        }
      }
    }
  }

  private collectMethod(lib: Library, p: ast.ProtocolDecl, m: ast.MethodAst, register: (d: Decl) => void): void {
    // Names follow fidlc's NamingContext: requests and responses are `<P><M>Request` /
    // `<P><M>Response` with context [P, M, 'Request'|'Response']; event payloads are named like
    // requests. When a method needs a result union (error syntax, or flexible two-way), the
    // union is `<P>_<M>_Result` (context [P, M, 'Response']), its success layout
    // `<P>_<M>_Response` (context [..., 'response']) and an anonymous error layout `<P>_<M>_Error`.
    const isEvent = m.request === undefined;
    const prefix = upperCamel(p.name) + upperCamel(m.name);
    const reqPayload = isEvent ? m.response?.payload : m.request?.payload;
    if (reqPayload) this.collectPayload(lib, reqPayload, prefix + 'Request', [p.name, m.name, 'Request'], register);
    if (isEvent || m.response === undefined) return;
    const responseContext = [p.name, m.name, 'Response'];
    const flexible = m.strictness !== 'strict';
    if (m.error === undefined && !flexible) {
      if (m.response.payload) this.collectPayload(lib, m.response.payload, prefix + 'Response', responseContext, register);
      return;
    }
    const extras: { result?: UnionDecl; emptySuccess?: StructDecl } = {};
    const successName = `${p.name}_${m.name}_Response`;
    const successContext = [...responseContext, 'response'];
    if (m.response.payload) {
      this.collectPayload(lib, m.response.payload, successName, successContext, register);
    } else {
      const empty: StructDecl = {
        kind: 'struct', name: successName, library: lib, attrs: [], loc: m.loc, namingContext: successContext,
        layout: { kind: 'struct', attrs: [], modifiers: [], resource: false, members: [], loc: m.loc },
        resource: false, members: [], isEmptySuccessStruct: true,
      };
      register(empty);
      extras.emptySuccess = empty;
    }
    if (m.error) this.collectPayload(lib, m.error, `${p.name}_${m.name}_Error`, [...responseContext, 'err'], register);
    const result: UnionDecl = {
      kind: 'union', name: `${p.name}_${m.name}_Result`, library: lib, attrs: [], loc: m.loc,
      namingContext: responseContext,
      layout: { kind: 'union', attrs: [], modifiers: [], strictness: 'strict', resource: false, members: [], loc: m.loc },
      resource: false, strict: true, members: [], isResult: true,
    };
    register(result);
    extras.result = result;
    this.methodExtras.set(m, extras);
  }

  private collectPayload(lib: Library, ctor: ast.TypeCtor, name: string, context: string[], register: (d: Decl) => void): void {
    if (ctor.target.kind === 'layout') {
      const layout = ctor.target.layout;
      this.collectLayout(lib, layout, generatedName(layout) ?? name, context, layout.attrs, layout.loc, register);
    } else {
      this.collectTypeCtor(lib, ctor, context, register);
    }
  }

  /** Finds inline layouts inside a type constructor (also inside vector<...> parameters). */
  private collectTypeCtor(lib: Library, ctor: ast.TypeCtor, context: string[], register: (d: Decl) => void): void {
    if (ctor.target.kind === 'layout') {
      const layout = ctor.target.layout;
      const name = generatedName(layout) ?? upperCamel(context[context.length - 1]);
      this.collectLayout(lib, layout, name, context, layout.attrs, layout.loc, register);
    }
    for (const p of ctor.params) {
      if (p.kind === 'type') this.collectTypeCtor(lib, p.type, context, register);
    }
  }

  private collectLayout(
    lib: Library, layout: ast.Layout, name: string, context: string[], attrs: ast.Attribute[],
    loc: SourceLocation, register: (d: Decl) => void,
  ): void {
    const base = { name, library: lib, attrs, loc, namingContext: context, layout };
    let decl: LayoutDecl;
    switch (layout.kind) {
      case 'struct':
        decl = { ...base, kind: 'struct', resource: layout.resource, members: [], isEmptySuccessStruct: false };
        break;
      case 'table':
        decl = { ...base, kind: 'table', resource: layout.resource, members: [] };
        break;
      case 'union':
        decl = { ...base, kind: 'union', resource: layout.resource, strict: layout.strictness === 'strict', members: [], isResult: false };
        break;
      case 'overlay':
        decl = { ...base, kind: 'overlay', resource: layout.resource, members: [] };
        break;
      case 'enum':
        decl = { ...base, kind: 'enum', subtype: 'uint32', strict: layout.strictness === 'strict', members: [], state: 'new' };
        break;
      case 'bits':
        decl = { ...base, kind: 'bits', subtype: 'uint32', strict: layout.strictness === 'strict', members: [], state: 'new' };
        break;
    }
    register(decl);
    this.layoutDecls.set(layout, decl);
    for (const m of layout.members) {
      if (m.type && m.name) this.collectTypeCtor(lib, m.type, [...context, m.name], register);
    }
  }

  // -----------------------------------------------------------------------------------------
  // Resolution.

  resolve(lib: Library): void {
    for (const d of lib.ordered) {
      switch (d.kind) {
        case 'resource':
          this.resolveResource(d);
          break;
        case 'const':
          this.resolveConst(d);
          break;
        case 'alias':
          this.resolveAlias(d);
          break;
        case 'newtype':
          this.resolveNewType(d);
          break;
        case 'enum':
        case 'bits':
          this.resolveEnumBits(d);
          break;
        default:
          break;
      }
    }
    for (const d of lib.ordered) {
      if (d.kind === 'struct' && !d.isEmptySuccessStruct) this.resolveStruct(d);
      else if (d.kind === 'table') this.resolveTable(d);
      else if (d.kind === 'union' && !d.isResult) this.resolveUnion(d);
      else if (d.kind === 'overlay') this.resolveOverlay(d);
    }
    for (const d of lib.ordered) {
      if (d.kind === 'protocol') this.resolveProtocol(d);
    }
    for (const d of lib.ordered) {
      if (d.kind === 'service') this.resolveService(d);
    }
  }

  private resolveNewType(d: NewTypeDecl): Type {
    if (d.state === 'done') return d.type!;
    if (d.state === 'resolving') fail('include-cycle', d.loc, `new type ${d.name} refers to itself`);
    d.state = 'resolving';
    const t = this.resolveType(d.library, d.ast.type);
    if (t.kind === 'endpoint' || t.kind === 'internal') fail('bad-type', d.ast.type.loc, `a new type cannot be based on ${describeType(t)}`);
    if ('nullable' in t && t.nullable) fail('bad-constraint', d.ast.type.loc, 'a new type cannot be optional');
    d.type = t;
    d.state = 'done';
    return t;
  }

  private resolveService(d: ServiceDecl): void {
    const seen = new Set<string>();
    for (const m of d.ast.members) {
      if (seen.has(canonical(m.name))) fail('duplicate-name', m.loc, `member '${m.name}' of service ${d.name} is declared twice`);
      seen.add(canonical(m.name));
      const type = this.resolveType(d.library, m.type);
      if (type.kind !== 'endpoint' || type.role !== 'client') fail('bad-type', m.type.loc, `service members must be client_end types (member '${m.name}' of ${d.name})`);
      if (type.nullable) fail('bad-constraint', m.type.loc, `service members cannot be optional (member '${m.name}' of ${d.name})`);
      d.members.push({ name: m.name, type, attrs: m.attrs, loc: m.loc });
    }
  }

  private resolveOverlay(d: OverlayDecl): void {
    this.resolveEnvelopeMembers(d);
    if (d.layout.strictness !== 'strict') fail('bad-modifier', d.loc, `overlay ${d.name} must be declared strict`);
    if (d.members.filter((m) => m.used).length === 0) fail('bad-type', d.loc, `overlay ${d.name} must have at least one member`);
    for (const m of d.members) {
      if (m.used && m.used.type.kind === 'handle') fail('bad-type', m.loc, `overlay members cannot be handles (member '${m.used.name}' of ${d.name})`);
    }
  }

  lookup(lib: Library, name: ast.Name): Lookup {
    const parts = name.parts;
    const notFound = (): never => fail('undefined-name', name.loc, `cannot find '${parts.join('.')}' in library ${lib.name}`);
    if (parts.length === 1) {
      const d = lib.decls.get(parts[0]);
      if (d) return { kind: 'decl', decl: d };
      if (PRIMITIVES.has(parts[0]) || BUILTIN_TYPES.has(parts[0]) || parts[0] === 'MAX' || parts[0] === 'optional') {
        return { kind: 'builtin', name: parts[0] };
      }
      return notFound();
    }
    // Library-qualified: the longest prefix naming an imported library (or this one).
    for (let k = parts.length - 1; k >= 1; k--) {
      const prefix = parts.slice(0, k).join('.');
      const target = prefix === lib.name ? lib : lib.imports.get(prefix);
      if (!target) continue;
      const rest = parts.slice(k);
      const d = target.decls.get(rest[0]);
      if (!d) fail('undefined-name', name.loc, `cannot find '${rest[0]}' in library ${target.name}`);
      if (rest.length === 1) return { kind: 'decl', decl: d };
      if (rest.length === 2 && (d.kind === 'enum' || d.kind === 'bits')) return { kind: 'member', decl: d, member: rest[1] };
      return notFound();
    }
    // Local `Enum.MEMBER`.
    if (parts.length === 2) {
      const d = lib.decls.get(parts[0]);
      if (d && (d.kind === 'enum' || d.kind === 'bits')) return { kind: 'member', decl: d, member: parts[1] };
      if (!d && !lib.imports.has(parts[0])) {
        fail('undefined-name', name.loc, `cannot find '${parts[0]}': no such declaration, and no 'using ${parts[0]};'`);
      }
    }
    return notFound();
  }

  private resolveResource(d: ResourceDecl): void {
    if (d.underlying) return;
    const lib = d.library;
    d.underlying = this.resolveType(lib, d.ast.type);
    if (d.underlying.kind !== 'primitive' || d.underlying.subtype !== 'uint32') {
      fail('bad-type', d.ast.type.loc, 'a resource_definition must be based on uint32');
    }
    for (const p of d.ast.properties) {
      const t = this.resolveType(lib, p.type);
      if (p.name === 'subtype') {
        if (t.kind !== 'identifier' || t.decl.kind !== 'enum') fail('bad-type', p.loc, "the 'subtype' property must be an enum");
        d.subtypeEnum = t.decl;
      } else if (p.name === 'rights') {
        if (t.kind !== 'identifier' || t.decl.kind !== 'bits') fail('bad-type', p.loc, "the 'rights' property must be a bits type");
        d.rightsBits = t.decl;
      }
    }
    if (!d.subtypeEnum) fail('bad-type', d.loc, `resource_definition ${d.name} needs a 'subtype' property`);
  }

  private resolveConst(d: ConstDecl): ConstValue {
    if (d.state === 'done') return d.value!;
    if (d.state === 'resolving') fail('include-cycle', d.loc, `constant ${d.name} is defined in terms of itself`);
    d.state = 'resolving';
    const type = this.resolveType(d.library, d.ast.type);
    const okType =
      type.kind === 'primitive' || (type.kind === 'string' && !type.nullable) ||
      (type.kind === 'identifier' && (type.decl.kind === 'enum' || type.decl.kind === 'bits'));
    if (!okType) fail('bad-type', d.ast.type.loc, `constants must be of a primitive, string, enum or bits type`);
    d.type = type;
    d.value = this.evalConst(d.library, d.ast.value, type);
    d.state = 'done';
    return d.value;
  }

  private resolveAlias(d: AliasDecl): Type {
    if (d.state === 'done') return d.type!;
    if (d.state === 'resolving') fail('include-cycle', d.loc, `alias ${d.name} refers to itself`);
    d.state = 'resolving';
    d.type = this.resolveType(d.library, d.ast.type);
    d.state = 'done';
    return d.type;
  }

  private resolveEnumBits(d: EnumDecl | BitsDecl): void {
    if (d.state === 'done') return;
    if (d.state === 'resolving') fail('include-cycle', d.loc, `${d.kind} ${d.name} depends on itself`);
    d.state = 'resolving';
    if (d.layout.subtype) {
      const t = this.resolveType(d.library, d.layout.subtype);
      if (t.kind !== 'primitive' || !isInteger(t.subtype) || (d.kind === 'bits' && t.subtype.startsWith('int'))) {
        fail('bad-type', d.layout.subtype.loc,
          `the underlying type of ${d.kind} ${d.name} must be ${d.kind === 'bits' ? 'an unsigned' : 'an'} integer type`);
      }
      d.subtype = t.subtype;
    }
    const seenNames = new Map<string, EnumBitsMember>();
    const seenValues = new Map<bigint, EnumBitsMember>();
    for (const m of d.layout.members) {
      const name = m.name!;
      const prior = seenNames.get(canonical(name));
      if (prior) fail('duplicate-name', m.loc, `member '${name}' of ${d.kind} ${d.name} is declared twice (or differs only in case)`);
      const cv = this.evalConst(d.library, m.value!, { kind: 'primitive', subtype: d.subtype });
      const value = cv.value as bigint;
      const sameValue = seenValues.get(value);
      if (sameValue) {
        fail('duplicate-member-ordinal', m.loc, `member '${name}' of ${d.kind} ${d.name} has the same value (${value}) as '${sameValue.name}'`);
      }
      if (d.kind === 'bits' && (value === 0n || (value & (value - 1n)) !== 0n)) {
        fail('bad-constant', m.loc, `bits member '${name}' must be a power of two, not ${value}`);
      }
      const member: EnumBitsMember = { name, attrs: m.attrs, loc: m.loc, value, constant: cv.ir, refs: cv.refs };
      seenNames.set(canonical(name), member);
      seenValues.set(value, member);
      d.members.push(member);
    }
    if (d.strict && d.members.length === 0) fail('bad-type', d.loc, `strict ${d.kind} ${d.name} must have at least one member`);
    if (d.kind === 'enum' && !d.strict) {
      // The largest value of the underlying type is a flexible enum's unknown placeholder
      // (maybe_unknown_value in the IR), unless a member is marked @unknown.
      const [, max] = INTEGER_RANGES[d.subtype];
      const unknownMarked = d.members.some((m) => m.attrs.some((a) => a.name === 'unknown'));
      const atMax = d.members.find((m) => m.value === max);
      if (atMax && !unknownMarked) {
        fail('bad-constant', atMax.loc, `member '${atMax.name}' of flexible enum ${d.name} has the value ${max}, which stands for unknown values; mark it @unknown or change it`);
      }
    }
    d.state = 'done';
  }

  private resolveStruct(d: StructDecl): void {
    const seen = new Set<string>();
    for (const m of d.layout.members) {
      const name = m.name!;
      if (seen.has(canonical(name))) fail('duplicate-name', m.loc, `member '${name}' of struct ${d.name} is declared twice`);
      seen.add(canonical(name));
      const type = this.resolveType(d.library, m.type!);
      const member = { name, type, attrs: m.attrs, loc: m.loc, defaultValue: undefined as ConstValue | undefined };
      if (m.value) member.defaultValue = this.evalConst(d.library, m.value, type);
      d.members.push(member);
    }
  }

  private resolveEnvelopeMembers(d: TableDecl | UnionDecl | OverlayDecl): void {
    const names = new Set<string>();
    const ordinals = new Map<number, ast.LayoutMember>();
    for (const m of d.layout.members) {
      const ord = m.ordinal!;
      const prior = ordinals.get(ord.value);
      if (prior) {
        fail('duplicate-member-ordinal', ord.loc,
          `ordinal ${ord.value} is used twice in ${d.kind} ${d.name} (first at line ${prior.loc.line})`);
      }
      ordinals.set(ord.value, m);
      const member: EnvelopeMember = { ordinal: ord.value, attrs: m.attrs, loc: m.loc };
      if (!m.reserved) {
        const name = m.name!;
        if (names.has(canonical(name))) fail('duplicate-name', m.loc, `member '${name}' of ${d.kind} ${d.name} is declared twice`);
        names.add(canonical(name));
        const type = this.resolveType(d.library, m.type!);
        if ('nullable' in type && type.nullable) {
          fail('bad-constraint', m.type!.loc, `${d.kind} members cannot be optional (member '${name}' of ${d.name})`);
        }
        member.used = { name, type };
      }
      d.members.push(member);
    }
    // Ordinals may have gaps (current fidlc); members are listed in ordinal order.
    d.members.sort((a, b) => a.ordinal - b.ordinal);
    if (d.kind === 'table' && d.members.length > 0 && d.members[d.members.length - 1].ordinal > 64) {
      const last = d.members[d.members.length - 1];
      fail('bad-type', last.loc, `table ${d.name}: ordinal ${last.ordinal} is over 64, the most a table may have`);
    }
  }

  private resolveTable(d: TableDecl): void {
    this.resolveEnvelopeMembers(d);
  }

  private resolveUnion(d: UnionDecl): void {
    this.resolveEnvelopeMembers(d);
    if (d.strict && !d.members.some((m) => m.used)) fail('bad-type', d.loc, `strict union ${d.name} must have at least one member`);
  }

  private resolveProtocol(p: ProtocolDecl): void {
    const lib = p.library;
    const discoverable = p.attrs.find((a) => a.name === 'discoverable');
    for (const arg of discoverable?.args ?? []) {
      // The name under which the protocol is served: "library.Protocol".
      const v = arg.value;
      if ((arg.name ?? 'name') === 'name') {
        const text = v.kind === 'literal' && v.literalKind === 'string' ? stringLiteralValue(v.text) : '';
        if (!/^[a-z][a-z0-9]*(\.[a-z][a-z0-9]*)*\.[A-Z][A-Za-z0-9_]*$/.test(text)) {
          fail('bad-attribute', arg.loc, `invalid @discoverable name ${v.kind === 'literal' ? v.text : exprText(v)}: "library.Protocol"`);
        }
      }
    }
    for (const m of p.ast.members) {
      if (m.kind === 'compose') {
        const r = this.lookup(lib, m.name);
        if (r.kind !== 'decl' || r.decl.kind !== 'protocol') fail('bad-type', m.loc, `'${m.name.parts.join('.')}' is not a protocol`);
        p.composes.push({ protocol: r.decl, attrs: m.attrs, loc: m.loc });
        continue;
      }
      p.methods.push(this.resolveMethod(p, m));
    }
  }

  private payloadDecl(lib: Library, ctor: ast.TypeCtor): LayoutDecl {
    const t = this.resolveType(lib, ctor);
    if (t.kind !== 'identifier' || t.nullable || !(t.decl.kind === 'struct' || t.decl.kind === 'table' || t.decl.kind === 'union')) {
      fail('bad-type', ctor.loc, 'a method payload must be a struct, table or union');
    }
    if (t.decl.kind === 'struct' && t.decl.members.length === 0 && ctor.target.kind === 'layout') {
      fail('bad-type', ctor.loc, 'an empty struct payload is written `()`');
    }
    return t.decl;
  }

  private resolveMethod(p: ProtocolDecl, m: ast.MethodAst): Method {
    const lib = p.library;
    const strict = m.strictness === 'strict';
    const isEvent = m.request === undefined;
    const twoWay = !isEvent && m.response !== undefined;
    if (!strict) {
      if (p.openness === 'closed') fail('bad-type', m.loc, `flexible method ${m.name} is not allowed in closed protocol ${p.name}`);
      if (p.openness === 'ajar' && twoWay) fail('bad-type', m.loc, `flexible two-way method ${m.name} needs an open protocol (${p.name} is ajar)`);
    }
    const selectorAttr = m.attrs.find((a) => a.name === 'selector');
    let selectorText: string | undefined;
    if (selectorAttr) {
      const v = selectorAttr.args[0]?.value;
      if (!v || v.kind !== 'literal' || v.literalKind !== 'string') fail('bad-constant', selectorAttr.loc, '@selector takes one string');
      selectorText = stringLiteralValue(v.text);
      // @selector changes the ordinal: it must be a method name or a full "library/Protocol.Method".
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(selectorText) && !/^[a-z][a-z0-9]*(\.[a-z][a-z0-9]*)*\/[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$/.test(selectorText)) {
        fail('bad-attribute', selectorAttr.loc, `invalid @selector "${selectorText}": a method name, or "library/Protocol.Method"`);
      }
    }
    const selector = methodSelector(lib.name, p.name, m.name, selectorText);
    const method: Method = {
      name: m.name, attrs: m.attrs, loc: m.loc, strict, ordinal: methodOrdinal(selector), selector,
      hasRequest: !isEvent, hasResponse: m.response !== undefined, hasError: m.error !== undefined, declaredIn: p,
    };
    const reqPayload = isEvent ? m.response?.payload : m.request?.payload;
    if (isEvent) {
      if (reqPayload) method.responsePayload = this.payloadDecl(lib, reqPayload);
      return method;
    }
    if (reqPayload) method.requestPayload = this.payloadDecl(lib, reqPayload);
    if (!twoWay) return method;
    const success = m.response!.payload ? this.payloadDecl(lib, m.response!.payload) : undefined;
    const extras = this.methodExtras.get(m);
    if (!extras?.result) {
      method.responsePayload = success;
      return method;
    }
    const successDecl: LayoutDecl = success ?? extras.emptySuccess!;
    const successType: Type = { kind: 'identifier', decl: successDecl, nullable: false };
    const result = extras.result;
    result.members.push({ ordinal: 1, attrs: [], loc: m.loc, used: { name: 'response', type: successType } });
    if (m.error) {
      const errType = this.resolveType(lib, m.error);
      const okErr =
        (errType.kind === 'primitive' && (errType.subtype === 'int32' || errType.subtype === 'uint32')) ||
        (errType.kind === 'identifier' && errType.decl.kind === 'enum' && (errType.decl.subtype === 'int32' || errType.decl.subtype === 'uint32'));
      if (!okErr) fail('bad-type', m.error.loc, 'an error type must be int32, uint32, or an enum of one of them');
      method.errorType = errType;
      result.members.push({ ordinal: 2, attrs: [], loc: m.loc, used: { name: 'err', type: errType } });
    }
    if (!strict) result.members.push({ ordinal: 3, attrs: [], loc: m.loc, used: { name: 'framework_err', type: { kind: 'internal' } } });
    result.resource = successDecl.kind !== 'enum' && successDecl.kind !== 'bits' && successDecl.resource;
    method.successType = successType;
    method.responsePayload = result;
    return method;
  }

  // -----------------------------------------------------------------------------------------
  // Types.

  resolveType(lib: Library, ctor: ast.TypeCtor): Type {
    let base: Type;
    let builtin: string | undefined;
    if (ctor.target.kind === 'layout') {
      const decl = this.layoutDecls.get(ctor.target.layout)!;
      if (decl.kind === 'enum' || decl.kind === 'bits') this.resolveEnumBits(decl);
      base = { kind: 'identifier', decl, nullable: false };
    } else {
      const r = this.lookup(lib, ctor.target.name);
      const loc = ctor.target.name.loc;
      if (r.kind === 'member') fail('bad-type', loc, `'${ctor.target.name.parts.join('.')}' is a ${r.decl.kind} member, not a type`);
      if (r.kind === 'builtin') {
        builtin = r.name;
        base = this.resolveBuiltin(lib, r.name, ctor);
      } else {
        const d = r.decl;
        if (ctor.params.length > 0) fail('bad-type', loc, `'${d.name}' takes no type parameters`);
        switch (d.kind) {
          case 'alias':
            base = { ...this.resolveAlias(d), fromAlias: d } as Type;
            break;
          case 'newtype':
            base = { ...this.resolveNewType(d), newType: d } as Type;
            delete (base as { fromAlias?: AliasDecl }).fromAlias;
            break;
          case 'service':
            return fail('bad-type', loc, `service ${d.name} is not a type`);
          case 'overlay':
            base = { kind: 'identifier', decl: d, nullable: false };
            break;
          case 'struct':
          case 'table':
          case 'union':
            base = { kind: 'identifier', decl: d, nullable: false };
            break;
          case 'enum':
          case 'bits':
            this.resolveEnumBits(d);
            base = { kind: 'identifier', decl: d, nullable: false };
            break;
          case 'resource':
            this.resolveResource(d);
            base = { kind: 'handle', resource: d, objType: 0, subtype: 'handle', rights: SAME_RIGHTS, nullable: false };
            break;
          case 'protocol':
            return fail('bad-type', loc, `protocol ${d.name} is not a type here: use client_end:${d.name} or server_end:${d.name}`);
          case 'const':
            return fail('bad-type', loc, `'${d.name}' is a constant, not a type`);
        }
      }
    }
    return this.applyConstraints(lib, base, ctor, builtin);
  }

  private resolveBuiltin(lib: Library, name: string, ctor: ast.TypeCtor): Type {
    const loc = ctor.loc;
    const typeParam = (i: number): Type => {
      const p = ctor.params[i];
      if (!p || p.kind !== 'type') fail('bad-type', loc, `${name} needs a type parameter: ${name}<T>`);
      return this.resolveType(lib, p.type);
    };
    const wantParams = (n: number): void => {
      if (ctor.params.length !== n) fail('bad-type', loc, `${name} takes ${n} parameter${n === 1 ? '' : 's'}, got ${ctor.params.length}`);
    };
    if (PRIMITIVES.has(name)) {
      wantParams(0);
      return { kind: 'primitive', subtype: name as IrPrimitiveSubtype };
    }
    if (name === 'byte') {
      // `byte` is a builtin name for uint8.
      wantParams(0);
      return { kind: 'primitive', subtype: 'uint8' };
    }
    switch (name) {
      case 'string':
        wantParams(0);
        return { kind: 'string', nullable: false };
      case 'vector':
        wantParams(1);
        return { kind: 'vector', element: typeParam(0), nullable: false };
      case 'array': {
        wantParams(2);
        const element = typeParam(0);
        const p = ctor.params[1];
        // `array<T, N>`: N may be parsed as a type name; it is a constant.
        let expr: ast.ConstExpr;
        if (p.kind === 'const') expr = p.value;
        else if (p.type.target.kind === 'named' && p.type.params.length === 0 && p.type.constraints.length === 0) {
          expr = { kind: 'ident', name: p.type.target.name, loc: p.type.loc };
        } else return fail('bad-type', loc, 'the size of an array must be a constant');
        const count = this.evalConst(lib, expr, UINT32).value as bigint;
        if (count === 0n) fail('bad-constant', expr.loc, 'an array cannot be empty');
        return { kind: 'array', element, count: Number(count) };
      }
      case 'box': {
        wantParams(1);
        const inner = typeParam(0);
        if (inner.kind !== 'identifier' || inner.decl.kind !== 'struct') fail('bad-type', loc, 'only structs can be boxed');
        return { kind: 'identifier', decl: inner.decl, nullable: true };
      }
      case 'client_end':
      case 'server_end':
        wantParams(0);
        // The protocol comes as the first constraint; applyConstraints fills it in.
        return { kind: 'endpoint', role: name === 'client_end' ? 'client' : 'server', protocol: undefined as unknown as ProtocolDecl, nullable: false };
      default:
        return fail('bad-type', loc, `'${name}' is not a type`);
    }
  }

  private isOptional(c: ast.ConstExpr): boolean {
    return c.kind === 'ident' && c.name.parts.length === 1 && c.name.parts[0] === 'optional';
  }

  private applyConstraints(lib: Library, base: Type, ctor: ast.TypeCtor, builtin: string | undefined): Type {
    const cs = ctor.constraints;
    const bad = (c: ast.ConstExpr | undefined, detail: string): never => fail('bad-constraint', c?.loc ?? ctor.loc, detail);
    const t = { ...base } as Type;
    let i = 0;
    switch (t.kind) {
      case 'string':
      case 'vector': {
        if (i < cs.length && !this.isOptional(cs[i])) {
          const c = cs[i++];
          if (c.kind === 'ident' && c.name.parts.length === 1 && c.name.parts[0] === 'MAX') t.maxSize = undefined;
          else {
            const v = this.evalConst(lib, c, UINT32).value as bigint;
            t.maxSize = v === 0xffffffffn ? undefined : Number(v);
          }
        }
        if (i < cs.length && this.isOptional(cs[i])) {
          i++;
          t.nullable = true;
        }
        break;
      }
      case 'handle': {
        if (i < cs.length && !this.isOptional(cs[i])) {
          const c = cs[i++];
          const member = this.subtypeMember(lib, t.resource, c);
          t.objType = Number(member.value);
          t.subtype = member.value === 0n ? 'handle' : member.name.toLowerCase().replace(/_/g, '');
        }
        if (i < cs.length && !this.isOptional(cs[i])) {
          const c = cs[i++];
          const bits = t.resource.rightsBits;
          if (!bits) bad(c, `${t.resource.name} has no rights property`);
          t.rights = Number(this.evalConst(lib, c, { kind: 'identifier', decl: bits!, nullable: false }).value as bigint);
        }
        if (i < cs.length && this.isOptional(cs[i])) {
          i++;
          t.nullable = true;
        }
        break;
      }
      case 'endpoint': {
        if (builtin !== undefined) {
          const c = cs[i++];
          if (!c || c.kind !== 'ident') bad(c, `${t.role}_end needs a protocol: ${t.role}_end:Protocol`);
          const r = this.lookup(lib, (c as { name: ast.Name }).name);
          if (r.kind !== 'decl' || r.decl.kind !== 'protocol') bad(c, `'${exprText(c!)}' is not a protocol`);
          t.protocol = (r as { decl: ProtocolDecl }).decl;
        }
        if (i < cs.length && this.isOptional(cs[i])) {
          i++;
          t.nullable = true;
        }
        break;
      }
      case 'identifier': {
        if (i < cs.length && this.isOptional(cs[i])) {
          if (t.decl.kind === 'struct') {
            if (builtin !== 'box') bad(cs[i], `structs cannot be optional: use box<${t.decl.name}>`);
          } else if (t.decl.kind !== 'union') {
            bad(cs[i], `${t.decl.kind} ${t.decl.name} cannot be optional`);
          }
          i++;
          t.nullable = true;
        }
        break;
      }
      default:
        break;
    }
    if (i < cs.length) {
      bad(cs[i], `unexpected constraint '${exprText(cs[i])}' on ${describeType(t)}`);
    }
    return t;
  }

  private subtypeMember(lib: Library, resource: ResourceDecl, c: ast.ConstExpr): EnumBitsMember {
    const e = resource.subtypeEnum!;
    if (c.kind === 'ident') {
      const parts = c.name.parts;
      // Bare subtype names (`zx.Handle:VMO`) are looked up in the subtype enum first.
      if (parts.length === 1) {
        const m = e.members.find((x) => x.name === parts[0]);
        if (m) return m;
      }
      let r: Lookup | undefined;
      try {
        r = this.lookup(lib, c.name);
      } catch (err) {
        // An unknown name here is a bad subtype, reported below as a constraint error.
        if (!(err instanceof FidlCompileError)) throw err;
      }
      if (r && r.kind === 'member' && r.decl === e) {
        const m = e.members.find((x) => x.name === r.member);
        if (m) return m;
      }
    }
    return fail('bad-constraint', c.loc, `'${exprText(c)}' is not a ${e.name} member (handle subtype of ${resource.name})`);
  }

  // -----------------------------------------------------------------------------------------
  // Constants.

  evalConst(lib: Library, e: ast.ConstExpr, type: Type): ConstValue {
    const expression = exprText(e);
    switch (e.kind) {
      case 'literal': {
        const literalValue = (v: string): IrConstant => ({
          kind: 'literal', value: v, expression,
          literal: { kind: e.literalKind, value: e.literalKind === 'string' ? v : v, expression },
        });
        if (e.literalKind === 'string') {
          if (type.kind !== 'string') fail('bad-constant', e.loc, `a string cannot be used as ${describeType(type)}`);
          const s = stringLiteralValue(e.text);
          if (type.maxSize !== undefined && Buffer.byteLength(s) > type.maxSize) {
            fail('bad-constant', e.loc, `string of ${Buffer.byteLength(s)} bytes exceeds the bound ${type.maxSize}`);
          }
          return { value: s, ir: literalValue(s), refs: [] };
        }
        if (e.literalKind === 'bool') {
          if (type.kind !== 'primitive' || type.subtype !== 'bool') fail('bad-constant', e.loc, `'${e.text}' cannot be used as ${describeType(type)}`);
          return { value: e.text === 'true', ir: literalValue(e.text), refs: [] };
        }
        const sub = numericSubtype(type);
        if (sub === undefined) fail('bad-constant', e.loc, `a number cannot be used as ${describeType(type)}`);
        if (sub === 'float32' || sub === 'float64') {
          return { value: e.text, float: true, ir: literalValue(String(Number(e.text))), refs: [] };
        }
        if (/[.eE]/.test(e.text) && !/^-?0x/.test(e.text)) fail('bad-constant', e.loc, `'${e.text}' is not an integer`);
        const negative = e.text.startsWith('-');
        const body = negative ? e.text.slice(1) : e.text;
        let v = BigInt(body);
        if (negative) v = -v;
        checkRange(v, sub as IrIntegerSubtype, e.loc);
        return { value: v, ir: literalValue(v.toString()), refs: [] };
      }
      case 'ident': {
        const r = this.lookup(lib, e.name);
        if (r.kind === 'decl' && r.decl.kind === 'const') {
          const cv = this.resolveConst(r.decl);
          this.checkAssignable(r.decl.type!, type, cv, e.loc);
          return { ...cv, ir: { kind: 'identifier', identifier: fqn(r.decl), value: irValue(cv), expression }, refs: [r.decl] };
        }
        if (r.kind === 'member') {
          this.resolveEnumBits(r.decl);
          const m = r.decl.members.find((x) => x.name === r.member);
          if (!m) fail('undefined-name', e.loc, `${r.decl.kind} ${r.decl.name} has no member '${r.member}'`);
          if (type.kind !== 'identifier' || type.decl !== r.decl) {
            fail('bad-constant', e.loc, `${r.decl.kind} member '${expression}' cannot be used as ${describeType(type)}`);
          }
          return {
            value: m!.value,
            ir: { kind: 'identifier', identifier: `${fqn(r.decl)}.${m!.name}`, value: m!.value.toString(), expression },
            refs: [r.decl],
          };
        }
        return fail('bad-constant', e.loc, `'${expression}' is not a constant`);
      }
      case 'binop': {
        const sub = numericSubtype(type);
        const bitsLike = (type.kind === 'identifier' && type.decl.kind === 'bits') || (sub !== undefined && sub.startsWith('uint'));
        if (!bitsLike) fail('bad-constant', e.loc, `'|' needs a bits or unsigned integer type, not ${describeType(type)}`);
        const l = this.evalConst(lib, e.left, type);
        const r = this.evalConst(lib, e.right, type);
        const v = (l.value as bigint) | (r.value as bigint);
        return { value: v, ir: { kind: 'binary_operator', value: v.toString(), expression }, refs: [...l.refs, ...r.refs] };
      }
    }
  }

  private checkAssignable(from: Type, to: Type, cv: ConstValue, loc: SourceLocation): void {
    if (from.kind === 'identifier' || to.kind === 'identifier') {
      if (from.kind !== 'identifier' || to.kind !== 'identifier' || from.decl !== to.decl) {
        fail('bad-constant', loc, `a constant of ${describeType(from)} cannot be used as ${describeType(to)}`);
      }
      return;
    }
    if (to.kind === 'string') {
      if (from.kind !== 'string') fail('bad-constant', loc, `a constant of ${describeType(from)} cannot be used as a string`);
      if (to.maxSize !== undefined && Buffer.byteLength(cv.value as string) > to.maxSize) {
        fail('bad-constant', loc, `string constant exceeds the bound ${to.maxSize}`);
      }
      return;
    }
    if (to.kind === 'primitive' && from.kind === 'primitive') {
      if (to.subtype === 'bool' || from.subtype === 'bool') {
        if (to.subtype !== from.subtype) fail('bad-constant', loc, `cannot use ${from.subtype} as ${to.subtype}`);
        return;
      }
      if (isInteger(to.subtype)) {
        if (!isInteger(from.subtype)) fail('bad-constant', loc, `cannot use ${from.subtype} as ${to.subtype}`);
        checkRange(cv.value as bigint, to.subtype, loc);
      }
      return;
    }
    fail('bad-constant', loc, `a constant of ${describeType(from)} cannot be used as ${describeType(to)}`);
  }
}

function numericSubtype(type: Type): IrPrimitiveSubtype | undefined {
  if (type.kind === 'primitive' && type.subtype !== 'bool') return type.subtype;
  if (type.kind === 'identifier' && (type.decl.kind === 'enum' || type.decl.kind === 'bits')) return type.decl.subtype;
  return undefined;
}

function checkRange(v: bigint, subtype: IrIntegerSubtype, loc: SourceLocation): void {
  const [lo, hi] = INTEGER_RANGES[subtype];
  if (v < lo || v > hi) fail('bad-constant', loc, `${v} is out of range for ${subtype}`);
}

function irValue(cv: ConstValue): string {
  return typeof cv.value === 'bigint' ? cv.value.toString() : String(cv.value);
}

export function describeType(t: Type): string {
  switch (t.kind) {
    case 'primitive':
      return t.subtype;
    case 'identifier':
      return `${t.decl.kind} ${t.decl.name}`;
    case 'handle':
      return `handle ${t.resource.name}`;
    case 'endpoint':
      return `${t.role}_end`;
    default:
      return t.kind;
  }
}

/** The name `@generated_name("Name")` gives an inline layout, if it has one. */
function generatedName(layout: ast.Layout): string | undefined {
  const attr = layout.attrs.find((a) => a.name === 'generated_name');
  if (attr === undefined) return undefined;
  const v = attr.args[0]?.value;
  if (attr.args.length !== 1 || !v || v.kind !== 'literal' || v.literalKind !== 'string') {
    fail('bad-attribute', attr.loc, '@generated_name takes one string');
  }
  const name = stringLiteralValue(v.text);
  if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(name)) fail('bad-attribute', attr.loc, `'${name}' is not a valid name for @generated_name`);
  return name;
}
