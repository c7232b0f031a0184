// Turns the resolved model of one library into fidlc-schema IR (codegen/ir.ts). Lists are
// sorted by fully qualified name, as fidlc sorts them; declaration_order puts every
// declaration after the ones it needs inline; object keys come out in a fixed order.
import * as ast from './ast';
import type * as ir from '../ir';
import type { SourceLocation } from './errors';
import { allMethods } from './checks';
import {
  Decl, EnumDecl, BitsDecl, LayoutDecl, Library, Method, OverlayDecl, ProtocolDecl, StructDecl, TableDecl, Type, UnionDecl, fqn,
} from './model';
import { Resolver, exprText } from './resolver';
import { stringLiteralValue } from './lexer';
import { versionText } from './availability';
import { ShapeCalculator } from './typeshape';

const DECL_KIND: Record<Decl['kind'], ir.IrDeclKind> = {
  const: 'const', alias: 'alias', struct: 'struct', table: 'table', union: 'union', enum: 'enum', bits: 'bits',
  protocol: 'protocol', resource: 'experimental_resource', overlay: 'overlay', newtype: 'new_type', service: 'service',
};

function location(loc: SourceLocation): ir.IrLocation {
  return { filename: loc.filename, line: loc.line, column: loc.column, length: loc.length };
}

function byName<T extends { name: string }>(items: T[]): T[] {
  return [...items].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function snakeCase(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

export class Emitter {
  constructor(private readonly resolver: Resolver, private readonly shapes: ShapeCalculator) {}

  // ---- attributes and constants -------------------------------------------------------------

  private attributes(attrs: ast.Attribute[]): { maybe_attributes?: ir.IrAttribute[] } {
    if (attrs.length === 0) return {};
    return {
      maybe_attributes: attrs.map((a) => ({
        name: snakeCase(a.name),
        arguments: a.args.map((arg) => this.attributeArg(arg)),
        location: location(a.loc),
      })),
    };
  }

  private attributeArg(arg: ast.AttributeArg): ir.IrAttributeArg {
    const v = arg.value;
    const name = arg.name ?? 'value';
    const literal = (kind: ir.IrLiteral['kind'], value: string, expression: string): ir.IrConstant => ({
      kind: 'literal', value, expression, literal: { kind, value, expression },
    });
    let type = 'string';
    let value: ir.IrConstant;
    if (v.kind === 'literal' && v.literalKind === 'string') {
      value = literal('string', stringLiteralValue(v.text), v.text);
    } else if (v.kind === 'literal' && v.literalKind === 'numeric') {
      type = 'uint64';
      value = literal('numeric', v.text, v.text);
    } else if (v.kind === 'literal') {
      type = 'bool';
      value = literal('bool', v.text, v.text);
    } else {
      // Identifiers in attributes (`added=HEAD`) are kept as written.
      value = literal('string', exprText(v), exprText(v));
    }
    return { name, type, value, location: location(arg.loc) };
  }

  // ---- types --------------------------------------------------------------------------------

  type(t: Type): ir.IrType {
    const type_shape_v2 = this.shapes.typeShape(t);
    if (t.newType) return { kind_v2: 'identifier', identifier: fqn(t.newType), nullable: false, type_shape_v2 };
    switch (t.kind) {
      case 'primitive':
        return { kind_v2: 'primitive', subtype: t.subtype, type_shape_v2 };
      case 'string':
        return {
          kind_v2: 'string',
          ...(t.maxSize !== undefined ? { maybe_element_count: t.maxSize } : {}),
          nullable: t.nullable, type_shape_v2,
        };
      case 'vector':
        return {
          kind_v2: 'vector', element_type: this.type(t.element),
          ...(t.maxSize !== undefined ? { maybe_element_count: t.maxSize } : {}),
          nullable: t.nullable, type_shape_v2,
        };
      case 'array':
        return { kind_v2: 'array', element_type: this.type(t.element), element_count: t.count, type_shape_v2 };
      case 'handle':
        return {
          kind_v2: 'handle', obj_type: t.objType, subtype: t.subtype as ir.IrHandleSubtype, rights: t.rights,
          resource_identifier: fqn(t.resource), nullable: t.nullable, type_shape_v2,
        };
      case 'endpoint':
        return {
          kind_v2: 'endpoint', role: t.role, protocol: fqn(t.protocol), protocol_transport: 'Channel',
          nullable: t.nullable, type_shape_v2,
        };
      case 'identifier':
        return { kind_v2: 'identifier', identifier: fqn(t.decl), nullable: t.nullable, type_shape_v2 };
      case 'internal':
        return { kind_v2: 'internal', subtype: 'framework_error', type_shape_v2 };
    }
  }

  private identifierType(d: LayoutDecl): ir.IrIdentifierType {
    return this.type({ kind: 'identifier', decl: d, nullable: false }) as ir.IrIdentifierType;
  }

  // ---- declarations --------------------------------------------------------------------------

  private common(d: Decl): { name: string; naming_context?: string[]; location: ir.IrLocation; deprecated: boolean } {
    return {
      name: fqn(d),
      ...(d.namingContext ? { naming_context: d.namingContext } : {}),
      location: location(d.loc),
      deprecated: false,
    };
  }

  private struct(d: StructDecl): ir.IrStruct {
    const fields = this.shapes.fieldShapes(d);
    return {
      ...this.common(d),
      ...this.attributes(d.attrs),
      members: d.members.map((m, i) => ({
        type: this.type(m.type),
        name: m.name,
        location: location(m.loc),
        deprecated: false,
        ...this.attributes(m.attrs),
        ...(m.defaultValue ? { maybe_default_value: m.defaultValue.ir } : {}),
        field_shape_v2: fields[i].shape,
      })),
      resource: d.resource,
      is_empty_success_struct: d.isEmptySuccessStruct,
      type_shape_v2: this.shapes.declShape(d),
    };
  }

  private envelopeMembers(d: TableDecl | UnionDecl | OverlayDecl): Array<ir.IrTableMember & ir.IrUnionMember> {
    // Reserved members are left out of the IR lists, as fidlc does.
    return d.members
      .filter((m) => m.used)
      .map((m) => ({
        ordinal: m.ordinal,
        name: m.used!.name,
        type: this.type(m.used!.type),
        location: location(m.loc),
        deprecated: false,
        ...this.attributes(m.attrs),
      }));
  }

  private table(d: TableDecl): ir.IrTable {
    return {
      ...this.common(d), ...this.attributes(d.attrs),
      members: this.envelopeMembers(d), strict: false, resource: d.resource, type_shape_v2: this.shapes.declShape(d),
    };
  }

  private union(d: UnionDecl): ir.IrUnion {
    return {
      ...this.common(d), ...this.attributes(d.attrs),
      members: this.envelopeMembers(d), strict: d.strict, resource: d.resource, is_result: d.isResult,
      type_shape_v2: this.shapes.declShape(d),
    };
  }

  private overlay(d: OverlayDecl): ir.IrOverlay {
    return {
      ...this.common(d), ...this.attributes(d.attrs),
      members: this.envelopeMembers(d), strict: true, resource: d.resource, type_shape_v2: this.shapes.declShape(d),
    };
  }

  private enumOrBitsMembers(d: EnumDecl | BitsDecl): Array<ir.IrEnumMember> {
    return d.members.map((m) => ({ name: m.name, location: location(m.loc), deprecated: false, ...this.attributes(m.attrs), value: m.constant }));
  }

  private enumDecl(d: EnumDecl): ir.IrEnum {
    const out: ir.IrEnum = {
      ...this.common(d), ...this.attributes(d.attrs),
      type: d.subtype, members: this.enumOrBitsMembers(d), strict: d.strict,
    };
    if (!d.strict) {
      // fidlc's default unknown value: the largest value of the underlying type.
      const bits = Number(d.subtype.replace(/\D/g, ''));
      const max = d.subtype.startsWith('u') ? 2n ** BigInt(bits) - 1n : 2n ** BigInt(bits - 1) - 1n;
      out.maybe_unknown_value = max <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(max) : max;
    }
    return out;
  }

  private bitsDecl(d: BitsDecl): ir.IrBits {
    const mask = d.members.reduce((acc, m) => acc | m.value, 0n);
    return {
      ...this.common(d), ...this.attributes(d.attrs),
      type: this.type({ kind: 'primitive', subtype: d.subtype }) as ir.IrPrimitiveType,
      mask: mask.toString(), members: this.enumOrBitsMembers(d), strict: d.strict,
    };
  }

  private method(m: Method, composed: boolean): ir.IrMethod {
    const kind = !m.hasRequest ? 'event' : m.hasResponse ? 'twoway' : 'oneway';
    return {
      kind,
      ordinal: m.ordinal,
      name: m.name,
      strict: m.strict,
      location: location(m.loc),
      deprecated: false,
      ...this.attributes(m.attrs),
      has_request: m.hasRequest,
      ...(m.requestPayload ? { maybe_request_payload: this.identifierType(m.requestPayload) } : {}),
      has_response: m.hasResponse,
      ...(m.responsePayload ? { maybe_response_payload: this.identifierType(m.responsePayload) } : {}),
      is_composed: composed,
      has_error: m.hasError,
      ...(m.successType ? { maybe_response_success_type: this.type(m.successType) } : {}),
      ...(m.errorType ? { maybe_response_err_type: this.type(m.errorType) } : {}),
    };
  }

  private protocol(p: ProtocolDecl): ir.IrProtocol {
    return {
      name: fqn(p),
      location: location(p.loc),
      deprecated: false,
      ...this.attributes(p.attrs),
      openness: p.openness,
      composed_protocols: p.composes.map((c) => ({
        name: fqn(c.protocol), location: location(c.loc), deprecated: false, ...this.attributes(c.attrs),
      })),
      methods: allMethods(p).map(({ method, composed }) => this.method(method, composed)),
    };
  }

  private partialTypeCtor(lib: Library, ctor: ast.TypeCtor): ir.IrPartialTypeCtor {
    let name: string;
    if (ctor.target.kind === 'layout') name = 'anonymous';
    else {
      const r = this.resolver.lookup(lib, ctor.target.name);
      name = r.kind === 'decl' ? fqn(r.decl) : r.kind === 'builtin' ? r.name : ctor.target.name.parts.join('.');
    }
    const nullable = ctor.constraints.some((c) => c.kind === 'ident' && c.name.parts.join('.') === 'optional');
    const size = ctor.constraints.find((c) => !(c.kind === 'ident' && c.name.parts.join('.') === 'optional'));
    const out: ir.IrPartialTypeCtor = {
      name,
      args: ctor.params.filter((p) => p.kind === 'type').map((p) => this.partialTypeCtor(lib, (p as { type: ast.TypeCtor }).type)),
      nullable,
    };
    if (size && (name === 'string' || name === 'vector')) {
      out.maybe_size = size.kind === 'ident' && size.name.parts.join('.') === 'MAX'
        ? { kind: 'identifier', identifier: 'fidl/MAX', value: '4294967295', expression: 'MAX' }
        : this.resolver.evalConst(lib, size, { kind: 'primitive', subtype: 'uint32' }).ir;
    }
    return out;
  }

  // ---- library ------------------------------------------------------------------------------

  private externalDecl(d: Decl): ir.IrExternalDecl {
    const kind = DECL_KIND[d.kind];
    if (d.kind === 'struct' || d.kind === 'table' || d.kind === 'union') {
      return { kind, resource: d.resource, type_shape_v2: this.shapes.declShape(d) };
    }
    if (d.kind === 'overlay') return { kind, resource: d.resource, type_shape_v2: this.shapes.declShape(d) };
    if (d.kind === 'enum' || d.kind === 'bits') return { kind, type_shape_v2: this.shapes.declShape(d) };
    if (d.kind === 'newtype') return { kind, type_shape_v2: this.shapes.typeShape(d.type!) };
    return { kind };
  }

  library(lib: Library): ir.IrRoot {
    const decls = lib.ordered;
    const of = <K extends Decl['kind']>(kind: K): Array<Extract<Decl, { kind: K }>> =>
      byName(decls.filter((d): d is Extract<Decl, { kind: K }> => d.kind === kind).map((d) => ({ d, name: fqn(d) }))).map((x) => x.d);

    const deps = [...new Set(lib.imports.values())].sort((a, b) => (a.name < b.name ? -1 : 1));
    const platform = lib.platform;
    const declarations: Record<string, ir.IrDeclKind> = {};
    for (const d of byName(decls.map((d) => ({ name: fqn(d), d })))) declarations[d.name] = DECL_KIND[d.d.kind];

    // Structs of other libraries used as method payloads (fidlc's external_struct_declarations).
    const external = new Map<string, StructDecl>();
    for (const p of of('protocol')) {
      for (const { method } of allMethods(p)) {
        for (const payload of [method.requestPayload, method.responsePayload]) {
          if (payload && payload.kind === 'struct' && payload.library !== lib) external.set(fqn(payload), payload);
        }
      }
    }

    return {
      name: lib.name,
      platform,
      available: { [platform]: [versionText(lib.target)] },
      ...this.attributes(lib.attrs),
      experiments: [],
      library_dependencies: deps.map((dep) => {
        const declarationsMap: Record<string, ir.IrExternalDecl> = {};
        for (const d of byName(dep.ordered.map((d) => ({ name: fqn(d), d })))) declarationsMap[d.name] = this.externalDecl(d.d);
        return { name: dep.name, declarations: declarationsMap };
      }),
      bits_declarations: of('bits').map((d) => this.bitsDecl(d)),
      const_declarations: of('const').map((d) => ({
        ...this.common(d), ...this.attributes(d.attrs), type: this.type(d.type!), value: d.value!.ir,
      })),
      enum_declarations: of('enum').map((d) => this.enumDecl(d)),
      experimental_resource_declarations: of('resource').map((d) => ({
        ...this.common(d), ...this.attributes(d.attrs),
        type: this.type(d.underlying!),
        properties: d.ast.properties.map((p) => ({
          name: p.name, location: location(p.loc), deprecated: false,
          type: this.type(this.resolver.resolveType(lib, p.type)),
        })),
      })),
      protocol_declarations: of('protocol').map((d) => this.protocol(d)),
      service_declarations: of('service').map((d) => ({
        ...this.common(d), ...this.attributes(d.attrs),
        members: d.members.map((m) => ({
          type: this.type(m.type), name: m.name, location: location(m.loc), deprecated: false, ...this.attributes(m.attrs),
        })),
      })),
      struct_declarations: of('struct').map((d) => this.struct(d)),
      external_struct_declarations: byName([...external.values()]).map((d) => this.struct(d)),
      table_declarations: of('table').map((d) => this.table(d)),
      union_declarations: of('union').map((d) => this.union(d)),
      overlay_declarations: of('overlay').map((d) => this.overlay(d)),
      alias_declarations: of('alias').map((d) => ({
        ...this.common(d), ...this.attributes(d.attrs),
        partial_type_ctor: this.partialTypeCtor(lib, d.ast.type),
        type: this.type(d.type!),
      })),
      new_type_declarations: of('newtype').map((d) => ({
        ...this.common(d), ...this.attributes(d.attrs), type: this.type({ ...d.type!, newType: undefined } as Type),
      })),
      declaration_order: (lib.declarationOrder ?? []).map(fqn),
      declarations,
    };
  }
}
