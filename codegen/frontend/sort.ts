// Declaration order and include cycles, by fidlc's rules (its SortStep): a declaration
// depends on the same-library declarations it names, except through nullable types (box<T>,
// optional unions/vectors/strings, endpoints), which is what lets recursive types be written.
// The order is Kahn's algorithm over those edges with fidlc's tie-breaking (declarations taken
// in name order, ready ones from a stack), so `declaration_order` matches fidlc's; a
// declaration left over is part of a cycle, reported as an include-cycle error.
import { fail } from './resolver';
import { ConstValue, Decl, Library, Type } from './model';

function byName(a: Decl, b: Decl): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function typeDeps(t: Type, out: Decl[]): void {
  if (t.fromAlias) {
    out.push(t.fromAlias);
    return;
  }
  if (t.newType) {
    out.push(t.newType);
    return;
  }
  switch (t.kind) {
    case 'handle':
      if (!t.nullable) out.push(t.resource);
      break;
    case 'vector':
      if (!t.nullable) typeDeps(t.element, out);
      break;
    case 'array':
      typeDeps(t.element, out);
      break;
    case 'identifier':
      if (!t.nullable) out.push(t.decl);
      break;
    default:
      break;
  }
}

function constDeps(c: ConstValue | undefined, out: Decl[]): void {
  if (c) out.push(...c.refs);
}

/** Same-library declarations `d` must follow. */
export function declarationDeps(d: Decl): Decl[] {
  const out: Decl[] = [];
  switch (d.kind) {
    case 'const':
      typeDeps(d.type!, out);
      constDeps(d.value, out);
      break;
    case 'alias':
      typeDeps(d.type!, out);
      break;
    case 'enum':
    case 'bits':
      for (const m of d.members) out.push(...m.refs);
      break;
    case 'struct':
      for (const m of d.members) {
        typeDeps(m.type, out);
        constDeps(m.defaultValue, out);
      }
      break;
    case 'table':
    case 'union':
    case 'overlay':
      for (const m of d.members) if (m.used) typeDeps(m.used.type, out);
      break;
    case 'newtype':
      typeDeps(d.type!, out);
      break;
    case 'service':
      break;
    case 'protocol':
      out.push(...d.composes.map((c) => c.protocol));
      for (const m of d.methods) {
        if (m.requestPayload) out.push(m.requestPayload);
        if (m.responsePayload) out.push(m.responsePayload);
      }
      break;
    case 'resource':
      // fidlc only follows the underlying type (uint32), not the properties.
      break;
  }
  return [...new Set(out.filter((x) => x.library === d.library))].sort(byName);
}

/** fidlc's declaration order for `lib`; throws FidlCompileError('include-cycle') on a cycle. */
export function sortDeclarations(lib: Library): Decl[] {
  const decls = [...lib.ordered].sort(byName);
  const remaining = new Map<Decl, Set<Decl>>();
  const dependents = new Map<Decl, Decl[]>();
  for (const d of decls) {
    const deps = declarationDeps(d);
    for (const dep of deps) {
      const list = dependents.get(dep) ?? [];
      list.push(d);
      dependents.set(dep, list);
    }
    remaining.set(d, new Set(deps));
  }
  const ready = decls.filter((d) => remaining.get(d)!.size === 0);
  const order: Decl[] = [];
  while (ready.length > 0) {
    const d = ready.pop()!;
    order.push(d);
    for (const dependent of dependents.get(d) ?? []) {
      const left = remaining.get(dependent)!;
      left.delete(d);
      if (left.size === 0) ready.push(dependent);
    }
  }
  if (order.length !== decls.length) {
    const start = decls.find((d) => remaining.get(d)!.size > 0)!;
    const cycle = findCycle(start, remaining);
    fail('include-cycle', cycle[0].loc,
      `include cycle: ${cycle.map((x) => x.name).join(' -> ')} (break it with box<...> or an optional type)`);
  }
  return order;
}

function findCycle(start: Decl, remaining: Map<Decl, Set<Decl>>): Decl[] {
  const path: Decl[] = [start];
  const walk = (): boolean => {
    const last = path[path.length - 1];
    for (const dep of [...remaining.get(last)!].sort(byName)) {
      const at = path.indexOf(dep);
      if (at !== -1) {
        path.splice(0, at);
        path.push(dep);
        return true;
      }
      path.push(dep);
      if (walk()) return true;
      path.pop();
    }
    return false;
  };
  walk();
  return path;
}
