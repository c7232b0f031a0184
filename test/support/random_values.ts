// Random values of any FIDL type, driven by the coding tables (seeded, so a failure repeats).
// The round-trip tests encode and decode them; the fuzzer encodes them to get valid messages,
// then mutates the bytes.
import * as fidl from '../../src/fidl';
import type { Handle } from '../../src/transport/handle';

export type Rng = () => number;

/** mulberry32: small, fast, deterministic. */
export function prng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const randInt = (rng: Rng, lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));
export const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[randInt(rng, 0, xs.length - 1)];

const CHARS = ['a', 'Z', '0', ' ', '/', '\u00e9', '\u00df', '\u20ac', '\u4e2d', '\u{1f600}', '\u0000'];

function big(rng: Rng, signed: boolean): bigint {
  const v = (BigInt(randInt(rng, 0, 0xffffffff)) << 32n) | BigInt(randInt(rng, 0, 0xffffffff));
  return signed ? BigInt.asIntN(64, v) : v;
}

function integer(rng: Rng, subtype: string): number | bigint {
  switch (subtype) {
    case 'int8': return randInt(rng, -128, 127);
    case 'uint8': return randInt(rng, 0, 255);
    case 'int16': return randInt(rng, -32768, 32767);
    case 'uint16': return randInt(rng, 0, 65535);
    case 'int32': return randInt(rng, -0x80000000, 0x7fffffff);
    case 'uint32': return randInt(rng, 0, 0xffffffff);
    case 'int64': return big(rng, true);
    case 'uint64': return big(rng, false);
  }
  throw new Error(`not an integer subtype: ${subtype}`);
}

function str(rng: Rng, maxBytes: number): string {
  let s = '';
  const n = randInt(rng, 0, 12);
  for (let i = 0; i < n; i++) {
    const c = pick(rng, CHARS);
    if (Buffer.byteLength(s + c) > maxBytes) break;
    s += c;
  }
  return s;
}

/**
 * A random value of `type`. `makeHandle` supplies a fresh real handle for every handle slot
 * (it is told the slot's declared type, to give a fitting kind).
 * Vectors stay short (at most `maxElements`), nesting is cut off past depth 4.
 */
export function randomValue(type: fidl.FidlType, rng: Rng, makeHandle: (type: fidl.HandleType) => Handle, depth = 0, maxElements = 5): unknown {
  const deep = depth > 4;
  switch (type.kind) {
    case 'primitive':
      if (type.subtype === 'bool') return rng() < 0.5;
      if (type.subtype === 'float32') return Math.fround(rng() * 100 - 50);
      if (type.subtype === 'float64') return rng() * 1e6;
      return integer(rng, type.subtype);
    case 'string':
      if (type.nullable && rng() < 0.3) return null;
      return str(rng, Math.min(type.maxLength, 64));
    case 'vector': {
      if (type.nullable && rng() < 0.3) return null;
      const n = deep ? 0 : randInt(rng, 0, Math.min(type.maxLength, maxElements));
      const el = type.element;
      if (el.kind === 'primitive' && el.subtype === 'uint8') return Uint8Array.from({ length: n }, () => randInt(rng, 0, 255));
      return Array.from({ length: n }, () => randomValue(el, rng, makeHandle, depth + 1, maxElements));
    }
    case 'array': {
      const el = type.element;
      if (el.kind === 'primitive' && el.subtype === 'uint8') return Uint8Array.from({ length: type.count }, () => randInt(rng, 0, 255));
      return Array.from({ length: type.count }, () => randomValue(el, rng, makeHandle, depth, maxElements));
    }
    case 'handle':
      if (type.nullable && rng() < 0.3) return null;
      return makeHandle(type);
    case 'struct': {
      const out: Record<string, unknown> = {};
      for (const f of type.decl.fields) out[f.name] = randomValue(f.type, rng, makeHandle, depth, maxElements);
      return out;
    }
    case 'box':
      if (deep || rng() < 0.4) return null;
      return randomValue(fidl.struct(type.decl), rng, makeHandle, depth + 1, maxElements);
    case 'table': {
      const out: Record<string, unknown> = {};
      for (const m of type.decl.members) {
        if (!deep && rng() < 0.7) out[m.name] = randomValue(m.type, rng, makeHandle, depth + 2, maxElements);
      }
      return out;
    }
    case 'overlay': {
      const m = pick(rng, type.decl.members);
      return { tag: m.name, value: randomValue(m.type, rng, makeHandle, depth, maxElements) };
    }
    case 'union': {
      if (type.nullable && rng() < 0.3) return null;
      const m = pick(rng, type.decl.members);
      return { tag: m.name, value: randomValue(m.type, rng, makeHandle, depth + 1, maxElements) };
    }
    case 'enum':
      if (!type.decl.strict && rng() < 0.3) return integer(rng, type.decl.subtype);
      return pick(rng, Object.values(type.decl.members));
    case 'bits': {
      if (!type.decl.strict) return integer(rng, type.decl.subtype);
      let v = 0;
      for (const b of Object.values(type.decl.members) as number[]) if (rng() < 0.5) v = (v | b) >>> 0;
      return v;
    }
    case 'framework_err':
      return -2;
  }
}

/** Every Handle object inside a decoded value (tables, unions, vectors, structs). */
export function handlesIn(value: unknown, out: Handle[] = []): Handle[] {
  if (value === null || typeof value !== 'object') return out;
  if (value instanceof fidl.Handle) {
    out.push(value);
    return out;
  }
  if (value instanceof Uint8Array) return out;
  for (const v of Object.values(value as Record<string, unknown>)) handlesIn(v, out);
  return out;
}
