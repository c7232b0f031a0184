// Whole-library checks that need every declaration resolved first: resourceness, include
// cycles, recursion (for type shapes), protocol composition and method ordinals.
import { fail } from './resolver';
import { Decl, LayoutDecl, Library, Method, ProtocolDecl, Type } from './model';

/** Whether values of this type may hold handles (so only resource types may contain it). */
export function isResourceType(t: Type): boolean {
  switch (t.kind) {
    case 'handle':
    case 'endpoint':
      return true;
    case 'vector':
    case 'array':
      return isResourceType(t.element);
    case 'identifier':
      return (t.decl.kind === 'struct' || t.decl.kind === 'table' || t.decl.kind === 'union' || t.decl.kind === 'overlay') && t.decl.resource;
    default:
      return false;
  }
}

export function memberTypes(d: LayoutDecl): Array<{ name: string; type: Type; loc: Decl['loc'] }> {
  switch (d.kind) {
    case 'struct':
      return d.members.map((m) => ({ name: m.name, type: m.type, loc: m.loc }));
    case 'table':
    case 'union':
    case 'overlay':
      return d.members.filter((m) => m.used).map((m) => ({ name: m.used!.name, type: m.used!.type, loc: m.loc }));
    default:
      return [];
  }
}

export function checkResourceness(lib: Library): void {
  for (const d of lib.ordered) {
    if (d.kind !== 'struct' && d.kind !== 'table' && d.kind !== 'union' && d.kind !== 'overlay') continue;
    if (d.resource) continue;
    for (const m of memberTypes(d)) {
      if (isResourceType(m.type)) {
        fail('resource-in-value-type', m.loc,
          `'${m.name}' may contain handles, so ${d.kind} ${d.name} must be declared a resource (\`resource ${d.kind}\`)`);
      }
    }
  }
}

/** Layouts a type refers to, through any indirection (for recursion; include cycles are sort.ts's). */
function referencedLayouts(t: Type): LayoutDecl[] {
  switch (t.kind) {
    case 'vector':
    case 'array':
      return referencedLayouts(t.element);
    case 'identifier':
      return [t.decl];
    default:
      return [];
  }
}

function edges(d: LayoutDecl): LayoutDecl[] {
  return memberTypes(d).flatMap((m) => referencedLayouts(m.type));
}

/** Layouts that reach themselves through any chain of references (through indirections). */
export function findRecursive(libs: Library[]): Set<LayoutDecl> {
  const result = new Set<LayoutDecl>();
  for (const lib of libs) {
    for (const d of lib.ordered) {
      if (d.kind !== 'struct' && d.kind !== 'table' && d.kind !== 'union') continue;
      const seen = new Set<LayoutDecl>();
      const stack = [...edges(d)];
      while (stack.length > 0) {
        const x = stack.pop()!;
        if (x === d) {
          result.add(d);
          break;
        }
        if (seen.has(x)) continue;
        seen.add(x);
        stack.push(...edges(x));
      }
    }
  }
  return result;
}

/** All methods of a protocol, own first then composed ones (transitively), with cycle and ordinal checks. */
export function allMethods(p: ProtocolDecl, visiting: ProtocolDecl[] = []): Array<{ method: Method; composed: boolean }> {
  if (visiting.includes(p)) {
    fail('include-cycle', p.loc, `protocol composition cycle: ${[...visiting, p].map((x) => x.name).join(' -> ')}`);
  }
  const out: Array<{ method: Method; composed: boolean }> = p.methods.map((method) => ({ method, composed: false }));
  for (const c of p.composes) {
    for (const m of allMethods(c.protocol, [...visiting, p])) out.push({ method: m.method, composed: true });
  }
  return out;
}

export function checkProtocols(lib: Library): void {
  for (const d of lib.ordered) {
    if (d.kind !== 'protocol') continue;
    const byName = new Map<string, Method>();
    const byOrdinal = new Map<bigint, Method>();
    for (const { method } of allMethods(d)) {
      const key = method.name.toLowerCase().replace(/_/g, '');
      const prior = byName.get(key);
      if (prior && prior !== method) {
        fail('duplicate-name', method.loc, `method ${method.name} is declared twice in protocol ${d.name} (also at line ${prior.loc.line})`);
      }
      byName.set(key, method);
      const same = byOrdinal.get(method.ordinal);
      if (same && same !== method) {
        fail('duplicate-ordinal', method.loc,
          `methods ${same.name} and ${method.name} of protocol ${d.name} have the same ordinal 0x${method.ordinal.toString(16)}; use @selector to change one`);
      }
      byOrdinal.set(method.ordinal, method);
    }
    // Openness also limits composition: an open protocol's flexible methods cannot go into a closed one.
    for (const { method, composed } of allMethods(d)) {
      if (!composed || method.strict) continue;
      const twoWay = method.hasRequest && method.hasResponse;
      if (d.openness === 'closed' || (d.openness === 'ajar' && twoWay)) {
        fail('bad-type', d.loc, `protocol ${d.name} (${d.openness}) cannot compose flexible method ${method.name}`);
      }
    }
  }
}
