// The TypeScript back end: fidlc-schema IR in, one readable TypeScript module per library out.
// Each module declares, per FIDL declaration, a TypeScript type and a coding table (the codec
// in src/fidl walks those), and per protocol its method descriptors, a client class, a handler
// interface and a serve function. It reads nothing but the IR, so it also accepts fidlc's own.
import type {
  IrAlias, IrAttribute, IrBits, IrConst, IrEnum, IrIdentifierType, IrMethod, IrNewType, IrOverlay, IrProtocol, IrRoot,
  IrService, IrStruct, IrTable, IrType, IrUnion,
} from '../ir';
import { camelCase, clientMethodName, codingName, libraryModuleName, safeIdentifier, splitQualified, typeName } from './names';

export interface GeneratedFile {
  /** File name relative to the output directory, e.g. "fuchsia_starnix_runner.ts". */
  path: string;
  content: string;
}

export interface GenerateOptions {
  /** Module specifier of the FIDL runtime as seen from the output directory. */
  runtimeImport?: string;
  /** Module specifier prefix of the other generated libraries (default './': same directory). */
  libraryImportPrefix?: string;
}

type DeclKind = string;

/** What the back end knows about every declaration, across all libraries it was given. */
class DeclIndex {
  readonly kinds = new Map<string, DeclKind>();
  readonly structs = new Map<string, IrStruct>();
  readonly aliases = new Map<string, IrAlias>();
  readonly enums = new Map<string, IrEnum>();
  readonly bits = new Map<string, IrBits>();
  readonly newTypes = new Map<string, IrNewType>();

  constructor(roots: IrRoot[]) {
    for (const root of roots) {
      for (const dep of root.library_dependencies ?? []) {
        for (const [name, d] of Object.entries(dep.declarations ?? {})) if (!this.kinds.has(name)) this.kinds.set(name, d.kind);
      }
    }
    for (const root of roots) {
      for (const [name, kind] of Object.entries(root.declarations ?? {})) this.kinds.set(name, kind);
      for (const s of [...(root.struct_declarations ?? []), ...(root.external_struct_declarations ?? [])]) this.structs.set(s.name, s);
      for (const a of root.alias_declarations ?? []) this.aliases.set(a.name, a);
      for (const e of root.enum_declarations ?? []) this.enums.set(e.name, e);
      for (const b of root.bits_declarations ?? []) this.bits.set(b.name, b);
      for (const n of root.new_type_declarations ?? []) this.newTypes.set(n.name, n);
    }
  }

  /** The integer type under a bits, enum or new type (new types of other types are not constants). */
  integerSubtype(name: string): string {
    const e = this.enums.get(name);
    if (e) return e.type;
    const b = this.bits.get(name);
    if (b) return b.type.subtype;
    const n = this.newTypes.get(name);
    if (n && n.type.kind_v2 === 'primitive') return n.type.subtype;
    throw new Error(`FIDL back end: ${name} has no integer type`);
  }

  kindOf(name: string): DeclKind {
    const k = this.kinds.get(name);
    if (k === undefined) throw new Error(`FIDL back end: unknown declaration ${name}`);
    return k;
  }
}

function docComment(attrs: IrAttribute[] | undefined, indent: string): string[] {
  const doc = (attrs ?? []).filter((a) => a.name === 'doc');
  if (doc.length === 0) return [];
  const text = doc
    .map((a) => a.arguments[0]?.value?.value ?? '')
    .join('\n')
    .replace(/\*\//g, '*\\/')
    .split('\n')
    .map((l) => l.replace(/^ /, '').trimEnd());
  while (text.length > 0 && text[text.length - 1] === '') text.pop();
  if (text.length === 1) return [`${indent}/** ${text[0]} */`];
  return [`${indent}/**`, ...text.map((l) => (l ? `${indent} * ${l}` : `${indent} *`)), `${indent} */`];
}

function attribute(attrs: IrAttribute[] | undefined, name: string): IrAttribute | undefined {
  return (attrs ?? []).find((a) => a.name === name);
}

function ordinalOf(m: IrMethod): bigint {
  const raw = m.ordinal as unknown;
  if (typeof raw === 'bigint') return raw;
  if (typeof raw === 'string' && /^\d+$/.test(raw)) return BigInt(raw);
  if (typeof raw === 'number' && Number.isSafeInteger(raw)) return BigInt(raw);
  throw new Error(`FIDL back end: ordinal of ${m.name} is not exact (${String(raw)}); read IR JSON with irFromJson`);
}

const is64 = (subtype: string): boolean => subtype === 'int64' || subtype === 'uint64';

function numberLiteral(value: string, subtype: string): string {
  if (is64(subtype)) return `${BigInt(value)}n`;
  if (subtype === 'bool') return value === 'true' ? 'true' : 'false';
  return String(Number(value));
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

class LibraryEmitter {
  private readonly out: string[] = [];
  private readonly usedLibraries = new Set<string>();
  private readonly topLevel = new Set<string>();
  private readonly registry: [string, string][] = [];

  constructor(
    private readonly root: IrRoot,
    private readonly index: DeclIndex,
    private readonly options: Required<GenerateOptions>,
  ) {}

  /** Reserves a top-level name; two declarations that map to one TypeScript name are an error. */
  private declare(name: string): string {
    if (this.topLevel.has(name)) throw new Error(`FIDL back end: two declarations of ${this.root.name} map to ${name}`);
    this.topLevel.add(name);
    return name;
  }

  /** Reference to a name declared in `qualified`'s library (qualified through its module if foreign). */
  private ref(qualified: string, local: string): string {
    const [lib] = splitQualified(qualified);
    if (lib === this.root.name) return local;
    this.usedLibraries.add(lib);
    return `${libraryModuleName(lib)}.${local}`;
  }

  // ---- types -------------------------------------------------------------------------------

  /** Expression of the coding table (fidl.FidlType) of an IR type. */
  typeExpr(t: IrType): string {
    switch (t.kind_v2) {
      case 'primitive':
        return `fidl.${t.subtype}`;
      case 'string': {
        if (t.nullable) return `fidl.string(${t.maybe_element_count ?? 'fidl.MAX_BOUND'}, true)`;
        return t.maybe_element_count === undefined ? 'fidl.string()' : `fidl.string(${t.maybe_element_count})`;
      }
      case 'vector': {
        const el = this.typeExpr(t.element_type);
        if (t.nullable) return `fidl.vector(${el}, ${t.maybe_element_count ?? 'fidl.MAX_BOUND'}, true)`;
        return t.maybe_element_count === undefined ? `fidl.vector(${el})` : `fidl.vector(${el}, ${t.maybe_element_count})`;
      }
      case 'array':
        return `fidl.array(${this.typeExpr(t.element_type)}, ${t.element_count})`;
      case 'handle':
        const rights = t.rights >>> 0 === 0x80000000 ? 'fidl.SAME_RIGHTS' : hex(t.rights >>> 0);
        return `fidl.handle(${t.obj_type} /* ${t.subtype} */, ${rights}${t.nullable ? ', true' : ''})`;
      case 'endpoint':
        // A client or server end is a channel handle on the wire.
        return `fidl.handle(4 /* ${t.role}_end:${t.protocol} */, fidl.SAME_RIGHTS${t.nullable ? ', true' : ''})`;
      case 'internal':
        return 'fidl.frameworkErr';
      case 'identifier':
        return this.identifierTypeExpr(t);
    }
    throw new Error(`FIDL back end: unsupported type ${JSON.stringify(t)}`);
  }

  private identifierTypeExpr(t: IrIdentifierType): string {
    const kind = this.index.kindOf(t.identifier);
    if (kind === 'alias') {
      const alias = this.index.aliases.get(t.identifier);
      if (alias === undefined) throw new Error(`FIDL back end: alias ${t.identifier} not available`);
      return this.typeExpr(alias.type);
    }
    if (kind === 'new_type') {
      // A new type has its underlying type's wire form.
      const nt = this.index.newTypes.get(t.identifier);
      if (nt === undefined) throw new Error(`FIDL back end: new type ${t.identifier} not available`);
      return this.typeExpr(nt.type);
    }
    const coding = this.ref(t.identifier, codingName(t.identifier));
    switch (kind) {
      case 'overlay': return `fidl.overlay(${coding})`;
      case 'struct': return t.nullable ? `fidl.box(${coding})` : `fidl.struct(${coding})`;
      case 'table': return `fidl.table(${coding})`;
      case 'union': return t.nullable ? `fidl.union(${coding}, true)` : `fidl.union(${coding})`;
      case 'enum': return `fidl.enumType(${coding})`;
      case 'bits': return `fidl.bitsType(${coding})`;
    }
    throw new Error(`FIDL back end: ${t.identifier} (${kind}) cannot be used as a type`);
  }

  /** TypeScript type of the values of an IR type. */
  tsType(t: IrType): string {
    const orNull = (s: string, nullable: boolean): string => (nullable ? `${s} | null` : s);
    switch (t.kind_v2) {
      case 'primitive':
        if (t.subtype === 'bool') return 'boolean';
        return is64(t.subtype) ? 'bigint' : 'number';
      case 'string':
        return orNull('string', t.nullable);
      case 'vector': {
        const el = t.element_type;
        if (el.kind_v2 === 'primitive' && el.subtype === 'uint8') return orNull('Uint8Array', t.nullable);
        const inner = this.tsType(el);
        return orNull(/[ |]/.test(inner) ? `(${inner})[]` : `${inner}[]`, t.nullable);
      }
      case 'array': {
        const el = t.element_type;
        if (el.kind_v2 === 'primitive' && el.subtype === 'uint8') return 'Uint8Array';
        const inner = this.tsType(el);
        return /[ |]/.test(inner) ? `(${inner})[]` : `${inner}[]`;
      }
      case 'handle':
      case 'endpoint':
        return orNull('fidl.Handle', t.nullable);
      case 'internal':
        return 'number';
      case 'identifier': {
        const kind = this.index.kindOf(t.identifier);
        if (kind === 'alias') return this.tsType(this.index.aliases.get(t.identifier)!.type);
        const name = this.ref(t.identifier, typeName(t.identifier));
        return orNull(name, t.nullable && (kind === 'struct' || kind === 'union'));
      }
    }
    throw new Error(`FIDL back end: unsupported type ${JSON.stringify(t)}`);
  }

  // ---- declarations ------------------------------------------------------------------------

  private emitConst(c: IrConst): void {
    const name = this.declare(safeIdentifier(splitQualified(c.name)[1]));
    let type = c.type;
    while (type.kind_v2 === 'identifier' && this.index.kindOf(type.identifier) === 'alias') type = this.index.aliases.get(type.identifier)!.type;
    let literal: string;
    let annotation = '';
    if (type.kind_v2 === 'string') literal = JSON.stringify(c.value.value);
    else if (type.kind_v2 === 'primitive') literal = numberLiteral(c.value.value, type.subtype);
    else if (type.kind_v2 === 'identifier' && ['bits', 'enum', 'new_type'].includes(this.index.kindOf(type.identifier))) {
      // A bits or enum constant: its value, typed as the bits or enum.
      literal = numberLiteral(c.value.value, this.index.integerSubtype(type.identifier));
      annotation = `: ${this.tsType(type)}`;
    } else throw new Error(`FIDL back end: const ${c.name} of unsupported type`);
    this.out.push(...docComment(c.maybe_attributes, ''), `export const ${name}${annotation} = ${literal};`);
  }

  private emitAlias(a: IrAlias): void {
    const name = this.declare(typeName(a.name));
    this.out.push(...docComment(a.maybe_attributes, ''), `export type ${name} = ${this.tsType(a.type)};`, '');
  }

  private emitEnum(e: IrEnum): void {
    const name = this.declare(typeName(e.name));
    const coding = this.declare(codingName(e.name));
    this.out.push(...docComment(e.maybe_attributes, ''));
    this.out.push(`export const ${name} = {`);
    for (const m of e.members) {
      this.out.push(...docComment(m.maybe_attributes, '  '), `  ${m.name}: ${numberLiteral(m.value.value, e.type)},`);
    }
    this.out.push('} as const;');
    const valueType = is64(e.type) ? 'bigint' : 'number';
    if (e.strict) this.out.push(`export type ${name} = (typeof ${name})[keyof typeof ${name}];`);
    else this.out.push(`/** Flexible: values this side does not know are kept as they are. */`, `export type ${name} = ${valueType};`);
    this.out.push(`export const ${coding} = new fidl.EnumDecl('${e.name}', '${e.type}', ${e.strict}, ${name});`, '');
    this.registry.push([splitQualified(e.name)[1], `fidl.enumType(${coding})`]);
  }

  private emitBits(b: IrBits): void {
    const name = this.declare(typeName(b.name));
    const coding = this.declare(codingName(b.name));
    const subtype = b.type.subtype;
    this.out.push(...docComment(b.maybe_attributes, ''));
    this.out.push(`export const ${name} = {`);
    for (const m of b.members) {
      this.out.push(...docComment(m.maybe_attributes, '  '), `  ${m.name}: ${numberLiteral(m.value.value, subtype)},`);
    }
    this.out.push('} as const;');
    this.out.push(`export type ${name} = ${is64(subtype) ? 'bigint' : 'number'};`);
    const mask = is64(subtype) ? `${BigInt(b.mask)}n` : hex(Number(b.mask));
    this.out.push(`export const ${coding} = new fidl.BitsDecl('${b.name}', '${subtype}', ${b.strict}, ${mask}, ${name});`, '');
    this.registry.push([splitQualified(b.name)[1], `fidl.bitsType(${coding})`]);
  }

  private emitStruct(s: IrStruct): void {
    const name = this.declare(typeName(s.name));
    const coding = this.declare(codingName(s.name));
    const shape = s.type_shape_v2;
    this.out.push(...docComment(s.maybe_attributes, ''));
    if (s.members.length === 0) {
      this.out.push(`export type ${name} = Record<string, never>;`);
    } else {
      this.out.push(`export interface ${name} {`);
      for (const m of s.members) this.out.push(...docComment(m.maybe_attributes, '  '), `  ${camelCase(m.name)}: ${this.tsType(m.type)};`);
      this.out.push('}');
    }
    const head = `export const ${coding}: fidl.StructDecl = new fidl.StructDecl('${s.name}', ${shape.inline_size}, ${shape.alignment}, ${s.resource}, () => [`;
    if (s.members.length === 0) {
      this.out.push(`${head}]);`, '');
    } else {
      this.out.push(head);
      for (const m of s.members) {
        this.out.push(`  { name: '${camelCase(m.name)}', offset: ${m.field_shape_v2.offset}, type: ${this.typeExpr(m.type)} },`);
      }
      this.out.push(']);', '');
    }
    this.registry.push([splitQualified(s.name)[1], `fidl.struct(${coding})`]);
  }

  private emitTable(t: IrTable): void {
    const name = this.declare(typeName(t.name));
    const coding = this.declare(codingName(t.name));
    this.out.push(...docComment(t.maybe_attributes, ''));
    this.out.push(`export interface ${name} {`);
    for (const m of t.members) this.out.push(...docComment(m.maybe_attributes, '  '), `  ${camelCase(m.name)}?: ${this.tsType(m.type)};`);
    this.out.push('}');
    this.out.push(`export const ${coding}: fidl.TableDecl = new fidl.TableDecl('${t.name}', ${t.resource}, ${t.strict}, () => [`);
    for (const m of t.members) this.out.push(`  { ordinal: ${m.ordinal}, name: '${camelCase(m.name)}', type: ${this.typeExpr(m.type)} },`);
    this.out.push(']);', '');
    this.registry.push([splitQualified(t.name)[1], `fidl.table(${coding})`]);
  }

  private emitUnion(u: IrUnion): void {
    const name = this.declare(typeName(u.name));
    const coding = this.declare(codingName(u.name));
    this.out.push(...docComment(u.maybe_attributes, ''));
    this.out.push(`export type ${name} =`);
    const variants = u.members.map((m) => `{ tag: '${camelCase(m.name)}'; value: ${this.tsType(m.type)} }`);
    if (!u.strict) variants.push('fidl.UnknownUnionValue');
    variants.forEach((v, i) => this.out.push(`  | ${v}${i === variants.length - 1 ? ';' : ''}`));
    this.out.push(`export const ${coding}: fidl.UnionDecl = new fidl.UnionDecl('${u.name}', ${u.resource}, ${u.strict}, ${u.is_result}, () => [`);
    for (const m of u.members) this.out.push(`  { ordinal: ${m.ordinal}, name: '${camelCase(m.name)}', type: ${this.typeExpr(m.type)} },`);
    this.out.push(']);', '');
    this.registry.push([splitQualified(u.name)[1], `fidl.union(${coding})`]);
  }

  private emitOverlay(o: IrOverlay): void {
    const name = this.declare(typeName(o.name));
    const coding = this.declare(codingName(o.name));
    this.out.push(...docComment(o.maybe_attributes, ''));
    this.out.push(`export type ${name} =`);
    o.members.forEach((m, i) => this.out.push(`  | { tag: '${camelCase(m.name)}'; value: ${this.tsType(m.type)} }${i === o.members.length - 1 ? ';' : ''}`));
    this.out.push(`export const ${coding}: fidl.OverlayDecl = new fidl.OverlayDecl('${o.name}', ${o.type_shape_v2.inline_size}, ${o.resource}, () => [`);
    for (const m of o.members) this.out.push(`  { ordinal: ${m.ordinal}, name: '${camelCase(m.name)}', type: ${this.typeExpr(m.type)} },`);
    this.out.push(']);', '');
    this.registry.push([splitQualified(o.name)[1], `fidl.overlay(${coding})`]);
  }

  private emitNewType(n: IrNewType): void {
    const name = this.declare(typeName(n.name));
    this.out.push(...docComment(n.maybe_attributes, ''));
    this.out.push(`/** New type over ${describeIrType(n.type)}: the same values and wire form, its own name. */`);
    this.out.push(`export type ${name} = ${this.tsType(n.type)};`, '');
    this.registry.push([splitQualified(n.name)[1], this.typeExpr(n.type)]);
  }

  private emitService(sv: IrService): void {
    const name = this.declare(typeName(sv.name));
    this.out.push(...docComment(sv.maybe_attributes, ''));
    this.out.push(`/** Service ${sv.name}: each member is a protocol a client connects to. */`);
    this.out.push(`export const ${name} = {`);
    this.out.push(`  name: '${this.root.name}.${splitQualified(sv.name)[1]}',`);
    this.out.push('  members: {');
    for (const m of sv.members) {
      const protocol = m.type.kind_v2 === 'endpoint' ? m.type.protocol : '';
      this.out.push(`    ${camelCase(m.name)}: '${protocol}',`);
    }
    this.out.push('  },');
    this.out.push('} as const;', '');
  }

  // ---- protocols -----------------------------------------------------------------------------

  private isEmptySuccess(m: IrMethod): boolean {
    const t = m.maybe_response_success_type;
    if (t === undefined || t.kind_v2 !== 'identifier') return false;
    return this.index.structs.get(t.identifier)?.is_empty_success_struct === true;
  }

  private usesResultUnion(m: IrMethod): boolean {
    return m.kind === 'twoway' && (!m.strict || m.has_error);
  }

  /** TypeScript type of what a two-way call resolves to (before any Result wrapping). */
  private successType(m: IrMethod): string {
    if (this.usesResultUnion(m)) {
      if (this.isEmptySuccess(m) || m.maybe_response_success_type === undefined) return 'void';
      return this.tsType(m.maybe_response_success_type);
    }
    return m.maybe_response_payload === undefined ? 'void' : this.tsType(m.maybe_response_payload);
  }

  private replyType(m: IrMethod): string {
    const success = this.successType(m);
    if (!m.has_error) return success;
    return `fidl.Result<${success}, ${this.tsType(m.maybe_response_err_type!)}>`;
  }

  private payloadParam(m: IrMethod): string {
    return m.maybe_request_payload === undefined ? '' : `payload: ${this.tsType(m.maybe_request_payload)}`;
  }

  private emitProtocol(p: IrProtocol): void {
    const [, short] = splitQualified(p.name);
    const methodsConst = this.declare(`${short}Methods`);
    const protocolConst = this.declare(`${short}Protocol`);
    const clientClass = this.declare(`${short}Client`);
    const handlerIface = this.declare(`${short}Handler`);
    const serveFn = this.declare(`serve${short}`);
    const discoverable = attribute(p.maybe_attributes, 'discoverable');
    let discoverableName: string | null = null;
    if (discoverable !== undefined) {
      const arg = discoverable.arguments.find((a) => a.name === 'name' || a.name === 'value');
      discoverableName = arg?.value.value ?? `${this.root.name}.${short}`;
    }
    const methods = p.methods;

    this.out.push(`// ---- protocol ${p.name} (${p.openness}${discoverableName ? ', discoverable' : ''}) ----`, '');
    if (discoverableName !== null) {
      const nameConst = this.declare(`${short}DiscoverableName`);
      this.out.push(`/** Name under which ${short} is served (e.g. a socket of that name in a service directory). */`);
      this.out.push(`export const ${nameConst} = '${discoverableName}';`, '');
    }
    for (const m of methods) {
      const ord = this.declare(`${short}${m.name}Ordinal`);
      this.out.push(`export const ${ord} = ${hex0(ordinalOf(m))}n;`);
    }
    this.out.push('');

    this.out.push(`export const ${methodsConst} = {`);
    for (const m of methods) {
      this.out.push(`  ${m.name}: {`);
      this.out.push(`    name: '${m.name}',`);
      this.out.push(`    ordinal: ${short}${m.name}Ordinal,`);
      this.out.push(`    kind: '${m.kind}',`);
      this.out.push(`    strict: ${m.strict},`);
      this.out.push(`    hasError: ${m.has_error},`);
      this.out.push(`    emptySuccess: ${this.isEmptySuccess(m)},`);
      const payload = m.maybe_request_payload ?? (m.kind === 'event' ? m.maybe_response_payload : undefined);
      this.out.push(`    payload: ${payload === undefined ? 'null' : this.typeExpr(payload)},`);
      const response = m.kind === 'twoway' ? m.maybe_response_payload : undefined;
      this.out.push(`    response: ${response === undefined ? 'null' : this.typeExpr(response)},`);
      this.out.push('  },');
    }
    this.out.push(`} as const satisfies Readonly<Record<string, fidl.MethodDesc>>;`, '');

    this.out.push(...docComment(p.maybe_attributes, ''));
    this.out.push(`export const ${protocolConst}: fidl.ProtocolDesc = {`);
    this.out.push(`  name: '${p.name}',`);
    this.out.push(`  discoverableName: ${discoverableName === null ? 'null' : `'${discoverableName}'`},`);
    this.out.push(`  openness: '${p.openness}',`);
    this.out.push(`  methods: [${methods.map((m) => `${methodsConst}.${m.name}`).join(', ')}],`);
    this.out.push('};', '');

    // Client.
    this.out.push(`/** Client of ${p.name}: one method per FIDL method${methods.some((m) => m.kind === 'event') ? ', on<Event>() for events' : ''}. */`);
    this.out.push(`export class ${clientClass} extends fidl.ClientBase {`);
    this.out.push(`  constructor(channel: fidl.FidlChannel, options?: fidl.ClientOptions) {`);
    this.out.push(`    super(channel, ${protocolConst}, options);`);
    this.out.push('  }');
    for (const m of methods) {
      this.out.push('');
      this.out.push(...docComment(m.maybe_attributes, '  '));
      const method = clientMethodName(m.name);
      const arg = m.maybe_request_payload === undefined ? 'undefined' : 'payload';
      if (m.kind === 'oneway') {
        this.out.push(`  ${method}(${this.payloadParam(m)}): void {`);
        this.out.push(`    this.oneWay(${methodsConst}.${m.name}, ${arg});`);
        this.out.push('  }');
      } else if (m.kind === 'twoway') {
        const reply = this.replyType(m);
        this.out.push(`  ${method}(${this.payloadParam(m)}): Promise<${reply}> {`);
        this.out.push(`    return this.call(${methodsConst}.${m.name}, ${arg}) as Promise<${reply}>;`);
        this.out.push('  }');
      } else {
        const payloadType = m.maybe_response_payload === undefined ? 'void' : this.tsType(m.maybe_response_payload);
        this.out.push(`  on${m.name}(listener: (payload: ${payloadType}) => void): void {`);
        this.out.push(`    this.listen(${methodsConst}.${m.name}, listener as (payload: unknown) => void);`);
        this.out.push('  }');
      }
    }
    this.out.push('}', '');

    // Server.
    const calls = methods.filter((m) => m.kind !== 'event');
    this.out.push(`/** Implementation of ${p.name}: one function per method; two-way ones return the reply. */`);
    this.out.push(`export interface ${handlerIface} {`);
    for (const m of calls) {
      this.out.push(...docComment(m.maybe_attributes, '  '));
      const ret = m.kind === 'oneway' ? 'void' : this.replyType(m);
      this.out.push(`  ${camelCase(m.name)}(${this.payloadParam(m)}): fidl.Awaitable<${ret}>;`);
    }
    this.out.push('}', '');
    this.out.push(`/** Serves ${p.name} on \`channel\` with \`handler\` until either side closes. */`);
    this.out.push(`export function ${serveFn}(channel: fidl.FidlChannel, handler: ${handlerIface}, options?: fidl.ServeOptions): fidl.ServerBinding {`);
    this.out.push(`  return new fidl.ServerBinding(channel, ${protocolConst}, {`);
    for (const m of calls) {
      const param = m.maybe_request_payload === undefined ? '' : `payload as ${this.tsType(m.maybe_request_payload)}`;
      this.out.push(`    ${m.name}: (${param ? 'payload' : ''}) => handler.${camelCase(m.name)}(${param}),`);
    }
    this.out.push('  }, options);');
    this.out.push('}', '');
    for (const m of methods.filter((x) => x.kind === 'event')) {
      const fn = this.declare(`send${short}${m.name}`);
      const payloadType = m.maybe_response_payload === undefined ? undefined : this.tsType(m.maybe_response_payload);
      this.out.push(...docComment(m.maybe_attributes, ''));
      this.out.push(`export function ${fn}(binding: fidl.ServerBinding${payloadType ? `, payload: ${payloadType}` : ''}): void {`);
      this.out.push(`  binding.sendEvent(${methodsConst}.${m.name}, ${payloadType ? 'payload' : 'undefined'});`);
      this.out.push('}', '');
    }
  }

  // ---- whole file ----------------------------------------------------------------------------

  emit(): GeneratedFile {
    const r = this.root;
    const byName = new Map<string, () => void>();
    for (const c of r.const_declarations ?? []) byName.set(c.name, () => this.emitConst(c));
    for (const a of r.alias_declarations ?? []) byName.set(a.name, () => this.emitAlias(a));
    for (const e of r.enum_declarations ?? []) byName.set(e.name, () => this.emitEnum(e));
    for (const b of r.bits_declarations ?? []) byName.set(b.name, () => this.emitBits(b));
    for (const s of r.struct_declarations ?? []) byName.set(s.name, () => this.emitStruct(s));
    for (const t of r.table_declarations ?? []) byName.set(t.name, () => this.emitTable(t));
    for (const u of r.union_declarations ?? []) byName.set(u.name, () => this.emitUnion(u));
    for (const o of r.overlay_declarations ?? []) byName.set(o.name, () => this.emitOverlay(o));
    for (const n of r.new_type_declarations ?? []) byName.set(n.name, () => this.emitNewType(n));
    for (const sv of r.service_declarations ?? []) byName.set(sv.name, () => this.emitService(sv));
    const protocols = new Map((r.protocol_declarations ?? []).map((p) => [p.name, p]));

    // Declaration order (fidlc's, dependencies first) keeps the file readable and stable;
    // anything it omits follows in name order. Protocols go last: their descriptors use the
    // coding tables at module load.
    const order = [...(r.declaration_order ?? [])];
    for (const name of [...byName.keys()].sort()) if (!order.includes(name)) order.push(name);
    let lastWasConst = false;
    for (const name of order) {
      const emit = byName.get(name);
      if (emit === undefined) continue;
      const isConst = (r.const_declarations ?? []).some((c) => c.name === name);
      if (lastWasConst && !isConst) this.out.push('');
      emit();
      lastWasConst = isConst;
    }
    if (lastWasConst) this.out.push('');
    for (const name of [...protocols.keys()].sort((a, b) => order.indexOf(a) - order.indexOf(b))) this.emitProtocol(protocols.get(name)!);

    this.declare('LIBRARY_NAME');
    this.declare('types');
    const registry = [...this.registry].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const tail = [
      `/** The FIDL library this module was generated from. */`,
      `export const LIBRARY_NAME = '${r.name}';`,
      '',
      `/** Every type of this library by FIDL name, for tools such as \`starnix-pager fidl encode\`. */`,
      `export const types: Readonly<Record<string, fidl.FidlType>> = {`,
      ...registry.map(([k, v]) => `  ${/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? k : `'${k}'`}: ${v},`),
      '};',
      '',
    ];

    const sources = new Set<string>();
    const collect = (d: { location?: { filename: string } }): void => {
      if (d.location?.filename) sources.add(d.location.filename);
    };
    [r.const_declarations, r.alias_declarations, r.enum_declarations, r.bits_declarations, r.struct_declarations,
      r.table_declarations, r.union_declarations, r.protocol_declarations, r.experimental_resource_declarations]
      .forEach((list) => (list ?? []).forEach((d: { location?: { filename: string } }) => collect(d)));
    const sourceList = [...sources].filter((f) => f !== 'generated').sort();

    const header = [
      `// GENERATED by starnix-pager's FIDL back end (codegen/backend) from FIDL library \`${r.name}\`.`,
      `// Sources: ${sourceList.length > 0 ? sourceList.join(', ') : '(IR only)'}`,
      '// Do not edit: change the .fidl files and run `npm run codegen`.',
      '/* eslint-disable */',
      `import * as fidl from '${this.options.runtimeImport}';`,
      ...[...this.usedLibraries].sort().map((lib) => `import * as ${libraryModuleName(lib)} from '${this.options.libraryImportPrefix}${libraryModuleName(lib)}';`),
      '',
    ];
    return { path: `${libraryModuleName(r.name)}.ts`, content: [...header, ...this.out, ...tail].join('\n') };
  }
}

function describeIrType(t: IrType): string {
  switch (t.kind_v2) {
    case 'primitive': return t.subtype;
    case 'identifier': return t.identifier;
    default: return t.kind_v2;
  }
}

function hex0(n: bigint): string {
  return `0x${n.toString(16).padStart(16, '0')}`;
}

/** Generates one TypeScript module per library. */
export function generateTypeScript(roots: IrRoot[], options: GenerateOptions = {}): GeneratedFile[] {
  const index = new DeclIndex(roots);
  const opts: Required<GenerateOptions> = {
    runtimeImport: options.runtimeImport ?? '../fidl',
    libraryImportPrefix: options.libraryImportPrefix ?? './',
  };
  return roots.map((root) => new LibraryEmitter(root, index, opts).emit());
}
