// Round-trip property tests: random values of every generated type (seeded PRNG, so failures
// repeat) must encode, decode to an equal value with the same handles, and re-encode to the
// same bytes.
import * as fidl from '../../src/fidl';
import * as zx from '../../src/gen/zx';
import * as runner from '../../src/gen/fuchsia_starnix_runner';
import * as pager from '../../src/gen/starnix_pager';
import * as kitchen from './gen/test_kitchen';
import { devNullHandle } from './helpers';
import { prng, randomValue } from '../support/random_values';
import type { Handle } from '../../src/transport/handle';

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
      const value = randomValue(type, rng, () => {
        const h = devNullHandle();
        handles.push(h);
        return h;
      });
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
