// Round-trip property tests: random values of every generated type (seeded PRNG, so failures
// repeat) must encode, decode to an equal value with the same handles, and re-encode to the
// same bytes.
import * as fidl from '../../src/fidl';
import * as zx from '../../src/gen/zx';
import * as runner from '../../src/gen/fuchsia_starnix_runner';
import * as pager from '../../src/gen/starnix_pager';
import * as kitchen from './gen/test_kitchen';
import { devNullHandle, prng } from './helpers';
import type { Handle } from '../../src/transport/handle';

type Rng = () => number;
const int = (rng: Rng, lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[int(rng, 0, xs.length - 1)];
const CHARS = ['a', 'z', '0', ' ', '/', 'é', 'ß', '€', '中', '😀', '\u0000'];

function randomBig(rng: Rng, signed: boolean): bigint {
  const v = (BigInt(int(rng, 0, 0xffffffff)) << 32n) | BigInt(int(rng, 0, 0xffffffff));
  return signed ? BigInt.asIntN(64, v) : v;
}

function randomInt(rng: Rng, subtype: string): number | bigint {
  switch (subtype) {
    case 'int8': return int(rng, -128, 127);
    case 'uint8': return int(rng, 0, 255);
    case 'int16': return int(rng, -32768, 32767);
    case 'uint16': return int(rng, 0, 65535);
    case 'int32': return int(rng, -0x80000000, 0x7fffffff);
    case 'uint32': return int(rng, 0, 0xffffffff);
    case 'int64': return randomBig(rng, true);
    case 'uint64': return randomBig(rng, false);
  }
  throw new Error(subtype);
}

function randomString(rng: Rng, maxBytes: number): string {
  let s = '';
  const n = int(rng, 0, 12);
  for (let i = 0; i < n; i++) {
    const c = pick(rng, CHARS);
    if (Buffer.byteLength(s + c) > maxBytes) break;
    s += c;
  }
  return s;
}

function randomValue(type: fidl.FidlType, rng: Rng, depth: number, handles: Handle[]): unknown {
  const deep = depth > 4;
  switch (type.kind) {
    case 'primitive':
      if (type.subtype === 'bool') return rng() < 0.5;
      if (type.subtype === 'float32') return Math.fround(rng() * 100 - 50);
      if (type.subtype === 'float64') return rng() * 1e6;
      return randomInt(rng, type.subtype);
    case 'string':
      if (type.nullable && rng() < 0.3) return null;
      return randomString(rng, Math.min(type.maxLength, 64));
    case 'vector': {
      if (type.nullable && rng() < 0.3) return null;
      const n = deep ? 0 : int(rng, 0, Math.min(type.maxLength, 5));
      const el = type.element;
      if (el.kind === 'primitive' && el.subtype === 'uint8') return Uint8Array.from({ length: n }, () => int(rng, 0, 255));
      return Array.from({ length: n }, () => randomValue(el, rng, depth + 1, handles));
    }
    case 'array': {
      const el = type.element;
      if (el.kind === 'primitive' && el.subtype === 'uint8') return Uint8Array.from({ length: type.count }, () => int(rng, 0, 255));
      return Array.from({ length: type.count }, () => randomValue(el, rng, depth, handles));
    }
    case 'handle': {
      if (type.nullable && rng() < 0.3) return null;
      const h = devNullHandle();
      handles.push(h);
      return h;
    }
    case 'struct': {
      const out: Record<string, unknown> = {};
      for (const f of type.decl.fields) out[f.name] = randomValue(f.type, rng, depth, handles);
      return out;
    }
    case 'box': {
      if (deep || rng() < 0.4) return null;
      return randomValue(fidl.struct(type.decl), rng, depth + 1, handles);
    }
    case 'table': {
      const out: Record<string, unknown> = {};
      for (const m of type.decl.members) if (!deep && rng() < 0.6) out[m.name] = randomValue(m.type, rng, depth + 2, handles);
      return out;
    }
    case 'union': {
      if (type.nullable && rng() < 0.3) return null;
      const m = pick(rng, type.decl.members);
      return { tag: m.name, value: randomValue(m.type, rng, depth + 1, handles) };
    }
    case 'enum': {
      const values = Object.values(type.decl.members);
      if (!type.decl.strict && rng() < 0.3) return randomInt(rng, type.decl.subtype);
      return pick(rng, values);
    }
    case 'bits': {
      if (!type.decl.strict) return randomInt(rng, type.decl.subtype);
      let v = 0;
      for (const b of Object.values(type.decl.members) as number[]) if (rng() < 0.5) v = (v | b) >>> 0;
      return v;
    }
    case 'framework_err':
      return -2;
  }
}

const modules: Record<string, Readonly<Record<string, fidl.FidlType>>> = {
  zx: zx.types,
  'fuchsia.starnix.runner': runner.types,
  'starnix.pager': pager.types,
  'test.kitchen': kitchen.types,
};
const allTypes = Object.entries(modules).flatMap(([lib, types]) => Object.entries(types).map(([name, type]) => [`${lib}/${name}`, type] as const));

describe('round trip of random values', () => {
  test('every generated library contributes types', () => {
    expect(Object.keys(runner.types).length).toBeGreaterThanOrEqual(15);
    expect(Object.keys(pager.types).length).toBeGreaterThanOrEqual(3);
  });

  test.each(allTypes)('%s', (_name, type) => {
    const rng = prng(0x5eed ^ _name.length);
    for (let i = 0; i < 150; i++) {
      const handles: Handle[] = [];
      const value = randomValue(type, rng, 0, handles);
      const encoded = fidl.encodeValue(type, value);
      expect(encoded.handles).toEqual(handles);
      expect(encoded.bytes.length % 8).toBe(0);
      const decoded = fidl.decodeValue(type, encoded.bytes, encoded.handles);
      expect(decoded).toEqual(value);
      const again = fidl.encodeValue(type, decoded);
      expect(Buffer.from(again.bytes).equals(Buffer.from(encoded.bytes))).toBe(true);
      for (const h of handles) h.close();
    }
  });

  test('transactional round trip of a RegisterFile request with 1024 extents', () => {
    const m = runner.PagerMethods.RegisterFile;
    const extents = Array.from({ length: 1024 }, (_, i) => ({ logicalStart: i * 4, logicalEnd: i * 4 + 4, physicalBlock: BigInt(i) * 977n }));
    const req = { name: 'big', inodeNum: 7, size: 1n << 40n, extents };
    const { bytes } = fidl.encodeMessage({ txid: 9, ordinal: m.ordinal, flexible: true }, m.payload, req);
    expect(bytes.length).toBe(16 + 16 + 32 + 24 + 8 + 16 + 1024 * 16);
    expect(fidl.decodeMessageBody(m.payload, bytes, [])).toEqual(req);
  });
});
