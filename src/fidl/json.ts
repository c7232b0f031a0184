// JSON form of FIDL values, driven by the coding tables: what `starnix-pager fidl encode/decode`
// reads and prints. 64-bit integers are decimal strings (JSON numbers lose bits past 2^53),
// handles are {"handle": N}, unions {"tag": "member", "value": ...}, absent values null,
// byte vectors and arrays arrays of numbers.
//
// Field and member names: the FIDL ones (`inode_num`) are canonical and what toJson prints;
// fromJson also accepts the generated camelCase ones (`inodeNum`), as protobuf's JSON mapping
// accepts both. The coding tables hold the camelCase names; FIDL member names are
// lower_snake_case by the language's style rules, so each FIDL name is the camelCase one with an
// underscore before every capital (a member whose FIDL name has an underscore before a digit,
// `value_2`, prints as `value2`; both spellings of such a name are still accepted).
// 64-bit integers: strings on output; on input a string (decimal, or 0x hex) or a JSON number
// that is a safe integer (|n| < 2^53; larger ones have already lost bits in JSON).
import { FidlEncodeError } from './errors';
import type { Handle } from '../transport/handle';
import { FidlType, describeType } from './types';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const is64 = (subtype: string): boolean => subtype === 'int64' || subtype === 'uint64';

/** "inodeNum" -> "inode_num": the FIDL name of a generated member name. */
export function fidlMemberName(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** "inode_num" or "inodeNum" -> "inodeNum" (what the coding tables call it). */
function camelMemberName(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/**
 * Which member each key of `o` names, by either spelling; unknown keys and a member given
 * twice are errors that list the valid names.
 */
function matchKeys<M extends { name: string }>(o: { [k: string]: Json }, members: readonly M[], declName: string, path: string[]): Map<M, Json> {
  const byName = new Map<string, M>();
  for (const m of members) {
    byName.set(m.name, m);
    byName.set(fidlMemberName(m.name), m);
  }
  const out = new Map<M, Json>();
  for (const [k, v] of Object.entries(o)) {
    const m = byName.get(k) ?? byName.get(camelMemberName(k));
    if (m === undefined) {
      const valid = members.map((x) => fidlMemberName(x.name)).join(', ');
      fail(path, `${declName} has no field "${k}" (its fields: ${valid === '' ? 'none' : valid}; camelCase spellings are accepted too)`);
    }
    if (out.has(m)) fail(path, `${declName}: field "${fidlMemberName(m.name)}" is given twice (as "${k}" and in its other spelling)`);
    out.set(m, v);
  }
  return out;
}

/** Turns a decoded value into JSON; `handleId` names each handle (e.g. its index in the message). */
export function toJson(type: FidlType, value: unknown, handleId: (h: Handle) => number): Json {
  if (value === null || value === undefined) return null;
  switch (type.kind) {
    case 'primitive':
      return typeof value === 'bigint' ? value.toString() : (value as number | boolean);
    case 'enum':
    case 'bits':
    case 'framework_err':
      return typeof value === 'bigint' ? value.toString() : (value as number);
    case 'string':
      return value as string;
    case 'vector':
    case 'array':
      return Array.from(value as ArrayLike<unknown>, (v) => toJson(type.element, v, handleId));
    case 'handle':
      return { handle: handleId(value as Handle) };
    case 'struct':
    case 'box': {
      const out: { [k: string]: Json } = {};
      for (const f of type.decl.fields) out[fidlMemberName(f.name)] = toJson(f.type, (value as Record<string, unknown>)[f.name], handleId);
      return out;
    }
    case 'table': {
      const out: { [k: string]: Json } = {};
      for (const m of type.decl.members) {
        const v = (value as Record<string, unknown>)[m.name];
        if (v !== undefined) out[fidlMemberName(m.name)] = toJson(m.type, v, handleId);
      }
      return out;
    }
    case 'union':
    case 'overlay': {
      const u = value as { tag: string; value?: unknown; ordinal?: bigint };
      if (u.tag === '$unknown') return { tag: '$unknown', ordinal: String(u.ordinal) };
      const member = type.decl.memberByName(u.tag)!;
      return { tag: fidlMemberName(u.tag), value: toJson(member.type, u.value, handleId) };
    }
  }
}

function fail(path: string[], detail: string): never {
  const e = new FidlEncodeError('wrong_type', detail);
  for (const p of [...path].reverse()) e.within(p);
  throw e;
}

function parseBig(j: Json, path: string[], what: string): bigint {
  if (typeof j === 'string' && /^-?(0x[0-9a-fA-F]+|\d+)$/.test(j)) {
    return j.startsWith('-') ? -BigInt(j.slice(1)) : BigInt(j);
  }
  if (typeof j === 'number' && Number.isSafeInteger(j)) return BigInt(j);
  if (typeof j === 'number' && Number.isInteger(j)) {
    return fail(path, `${JSON.stringify(j)} is past 2^53, where JSON numbers lose bits: give this ${what} as a string`);
  }
  return fail(path, `expected a 64-bit integer (${what}) as a string (or a JSON number under 2^53), got ${JSON.stringify(j)}`);
}

/**
 * Builds a value of `type` from JSON, checking names and shapes (ranges and bounds are the
 * encoder's job). `makeHandle` turns {"handle": N} into a Handle.
 */
export function fromJson(type: FidlType, j: Json | undefined, makeHandle: (n: number) => Handle, path: string[] = []): unknown {
  if (j === null || j === undefined) return j === null ? null : undefined;
  const objectOf = (): { [k: string]: Json } => {
    if (typeof j !== 'object' || Array.isArray(j)) fail(path, `expected an object for ${describeType(type)}`);
    return j as { [k: string]: Json };
  };
  switch (type.kind) {
    case 'primitive':
      if (is64(type.subtype)) return parseBig(j, path, type.subtype);
      if (type.subtype === 'bool' ? typeof j !== 'boolean' : typeof j !== 'number') fail(path, `expected a ${type.subtype}, got ${JSON.stringify(j)}`);
      return j;
    case 'enum':
    case 'bits':
      if (is64(type.decl.subtype)) return parseBig(j, path, type.decl.name);
      if (typeof j === 'string' && j in type.decl.members) return type.decl.members[j];
      if (typeof j !== 'number') fail(path, `expected a number or member name of ${type.decl.name}`);
      return j;
    case 'framework_err':
      return j;
    case 'string':
      if (typeof j !== 'string') fail(path, `expected a string, got ${JSON.stringify(j)}`);
      return j;
    case 'vector':
    case 'array': {
      if (!Array.isArray(j)) fail(path, `expected an array for ${describeType(type)}`);
      const el = type.element;
      const items = (j as Json[]).map((v, i) => fromJson(el, v, makeHandle, [...path, String(i)]));
      return el.kind === 'primitive' && el.subtype === 'uint8' ? Uint8Array.from(items as number[]) : items;
    }
    case 'handle': {
      const o = objectOf();
      if (typeof o.handle !== 'number' || !Number.isInteger(o.handle) || o.handle < 0) fail(path, 'expected {"handle": N}');
      return makeHandle(o.handle as number);
    }
    case 'struct':
    case 'box': {
      const given = matchKeys(objectOf(), type.decl.fields, type.decl.name, path);
      const out: Record<string, unknown> = {};
      for (const f of type.decl.fields) out[f.name] = fromJson(f.type, given.get(f), makeHandle, [...path, fidlMemberName(f.name)]);
      return out;
    }
    case 'table': {
      const out: Record<string, unknown> = {};
      for (const [m, v] of matchKeys(objectOf(), type.decl.members, type.decl.name, path)) {
        if (v !== null) out[m.name] = fromJson(m.type, v, makeHandle, [...path, fidlMemberName(m.name)]);
      }
      return out;
    }
    case 'union':
    case 'overlay': {
      const o = objectOf();
      if (typeof o.tag !== 'string') fail(path, `expected {"tag": ..., "value": ...} for ${type.decl.name}`);
      const m = type.decl.memberByName(o.tag as string) ?? type.decl.memberByName(camelMemberName(o.tag as string));
      if (m === undefined) {
        fail(path, `${type.decl.name} has no member "${o.tag}" (its members: ${type.decl.members.map((x) => fidlMemberName(x.name)).join(', ')})`);
      }
      return { tag: m.name, value: fromJson(m.type, o.value, makeHandle, [...path, fidlMemberName(m.name)]) };
    }
  }
}
