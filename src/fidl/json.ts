// JSON form of FIDL values, driven by the coding tables: what `starnix-pager fidl encode/decode`
// reads and prints. 64-bit integers are decimal strings (JSON numbers lose bits past 2^53),
// handles are {"handle": N}, unions {"tag": "member", "value": ...}, absent values null,
// byte vectors and arrays arrays of numbers. Field names are the generated camelCase ones.
import { FidlEncodeError } from './errors';
import type { Handle } from '../transport/handle';
import { FidlType, describeType } from './types';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const is64 = (subtype: string): boolean => subtype === 'int64' || subtype === 'uint64';

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
      for (const f of type.decl.fields) out[f.name] = toJson(f.type, (value as Record<string, unknown>)[f.name], handleId);
      return out;
    }
    case 'table': {
      const out: { [k: string]: Json } = {};
      for (const m of type.decl.members) {
        const v = (value as Record<string, unknown>)[m.name];
        if (v !== undefined) out[m.name] = toJson(m.type, v, handleId);
      }
      return out;
    }
    case 'union': {
      const u = value as { tag: string; value?: unknown; ordinal?: bigint };
      if (u.tag === '$unknown') return { tag: '$unknown', ordinal: String(u.ordinal) };
      const member = type.decl.memberByName(u.tag)!;
      return { tag: u.tag, value: toJson(member.type, u.value, handleId) };
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
  return fail(path, `expected a 64-bit integer (${what}) as a decimal string, got ${JSON.stringify(j)}`);
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
      const o = objectOf();
      const known = new Set(type.decl.fields.map((f) => f.name));
      for (const k of Object.keys(o)) if (!known.has(k)) fail(path, `${type.decl.name} has no field "${k}"`);
      const out: Record<string, unknown> = {};
      for (const f of type.decl.fields) out[f.name] = fromJson(f.type, o[f.name], makeHandle, [...path, f.name]);
      return out;
    }
    case 'table': {
      const o = objectOf();
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(o)) {
        const m = type.decl.members.find((x) => x.name === k);
        if (m === undefined) fail(path, `${type.decl.name} has no field "${k}"`);
        if (o[k] !== null) out[k] = fromJson(m.type, o[k], makeHandle, [...path, k]);
      }
      return out;
    }
    case 'union': {
      const o = objectOf();
      if (typeof o.tag !== 'string') fail(path, `expected {"tag": ..., "value": ...} for ${type.decl.name}`);
      const m = type.decl.memberByName(o.tag as string);
      if (m === undefined) fail(path, `${type.decl.name} has no member "${o.tag}"`);
      return { tag: o.tag, value: fromJson(m.type, o.value, makeHandle, [...path, o.tag as string]) };
    }
  }
}
