// Malformed inputs: each is a valid encoding with one thing broken, and must be rejected with
// its own FidlDecodeError code (never an exception from inside, never a partial value), with
// every handle of the message closed.
import * as fidl from '../../src/fidl';
import * as runner from '../../src/gen/fuchsia_starnix_runner';
import * as kitchen from './gen/test_kitchen';
import { devNullHandle, fdIsOpen } from './helpers';
import type { Handle } from '../../src/transport/handle';

const REGISTER = runner.PagerMethods.RegisterFile;
const outerType = kitchen.types.Outer;
const everythingType = kitchen.types.Everything;

function registerFileRequest(): Uint8Array {
  return Uint8Array.from(fidl.encodeMessage({ txid: 1, ordinal: REGISTER.ordinal, flexible: true }, REGISTER.payload, {
    name: 'hello', inodeNum: 12, size: 8192n,
    extents: [{ logicalStart: 0, logicalEnd: 1, physicalBlock: 100n }, { logicalStart: 1, logicalEnd: 4, physicalBlock: 200n }],
  }).bytes);
}

// Outer at rest, layout (see kitchen fixture):
//  @0 inner box | @8 choice ordinal | @16 choice envelope | @24 words count | @32 words presence
//  @40 maybe count | @48 maybe presence | @56 status | @64 Inner{flag@64 color@65 pad@66-67 rights@68 big@72 tags@80-82 pad@83-87}
//  @88 words[0] string header (count@88, presence@96) | @104 "ab" + 6 padding
function outer(): Uint8Array {
  const value: kitchen.Outer = {
    inner: { flag: true, color: kitchen.Color.RED, rights: 1, big: -5n, tags: Uint8Array.from([1, 2, 3]) },
    choice: { tag: 'small', value: 7 },
    words: ['ab'],
    maybe: null,
    status: -1,
  };
  const { bytes } = fidl.encodeValue(outerType, value);
  expect(bytes.length).toBe(112);
  return Uint8Array.from(bytes);
}

// Everything { flag: true, handles: [h] } at rest:
//  @0 table count 5, @8 presence | @16 env1 zero | @24 env2 zero | @32 env3 flag inline (01 00 00 00 | 00 00 | 01 00)
//  @40 env4 (no such field) zero | @48 env5 handles: 24 bytes, 1 handle | @56 vector header | @72 handle marker + pad
function everything(): Uint8Array {
  const h = devNullHandle();
  const { bytes } = fidl.encodeValue(everythingType, { flag: true, handles: [h] });
  h.close();
  expect(bytes.length).toBe(80);
  return Uint8Array.from(bytes);
}

function patch(bytes: Uint8Array, at: number, ...values: number[]): Uint8Array {
  values.forEach((v, i) => (bytes[at + i] = v));
  return bytes;
}

interface Case {
  name: string;
  code: fidl.DecodeErrorCode;
  run: (handles: Handle[]) => unknown;
  /** How many real handles to pass along (they must all be closed afterwards). */
  handles?: number;
}

const body = (type: fidl.FidlType | null, bytes: Uint8Array, options?: fidl.DecodeOptions) => (hs: Handle[]) => fidl.decodeMessageBody(type, bytes, hs, options);
const atRest = (type: fidl.FidlType, bytes: Uint8Array, options?: fidl.DecodeOptions) => (hs: Handle[]) => fidl.decodeValue(type, bytes, hs, 0, options);

function chain(boxes: number): Uint8Array {
  const b = new Uint8Array(8 * (boxes + 1));
  b.fill(0xff, 0, 8 * boxes);
  return b;
}

const strictTable = fidl.table(new fidl.TableDecl('test/Strict', false, true, () => [{ ordinal: 1, name: 'a', type: fidl.uint32 }]));

const cases: Case[] = [
  // header
  { name: 'message shorter than a header', code: 'too_short', run: () => fidl.decodeHeader(new Uint8Array(8)) },
  { name: 'header magic 0x02', code: 'bad_magic', run: () => fidl.decodeHeader(patch(registerFileRequest(), 7, 2)) },
  { name: 'header at-rest flags without v2', code: 'unsupported_wire_format', run: () => fidl.decodeHeader(patch(registerFileRequest(), 4, 0)) },
  { name: 'epitaph with a txid', code: 'invalid_epitaph', run: () => { const e = patch(Uint8Array.from(fidl.encodeEpitaph(-10)), 0, 5); return fidl.decodeEpitaph(fidl.decodeHeader(e), e, []); } },
  { name: 'body where the method has none', code: 'unexpected_body', run: body(null, registerFileRequest()) },
  // RegisterFile request
  { name: 'uint64 field marked inline', code: 'invalid_inline_envelope', run: body(REGISTER.payload, patch(registerFileRequest(), 54, 1)) },
  { name: 'uint32 field not inlined', code: 'invalid_inline_envelope', run: body(REGISTER.payload, patch(registerFileRequest(), 40, 8, 0, 0, 0, 0, 0, 0, 0)) },
  { name: 'envelope num_bytes larger than content', code: 'envelope_bytes_mismatch', run: body(REGISTER.payload, patch(registerFileRequest(), 32, 0x20)) },
  { name: 'envelope num_bytes not a multiple of 8', code: 'envelope_bytes_mismatch', run: body(REGISTER.payload, patch(registerFileRequest(), 32, 0x19)) },
  { name: 'invalid UTF-8 in name', code: 'invalid_utf8', run: body(REGISTER.payload, patch(registerFileRequest(), 80, 0xff)) },
  { name: '1025 extents (bound 1024)', code: 'vector_too_long', run: body(REGISTER.payload, patch(registerFileRequest(), 96, 0x01, 0x04)) },
  { name: 'table of 65535 envelopes in a short message', code: 'out_of_bounds', run: body(REGISTER.payload, patch(registerFileRequest(), 16, 0xff, 0xff)) },
  { name: 'string padding not zero', code: 'nonzero_padding', run: body(REGISTER.payload, patch(registerFileRequest(), 86, 1)) },
  { name: 'result union member with empty envelope', code: 'empty_union_envelope', run: body(REGISTER.response, Uint8Array.from(fidl.encodeMessage({ txid: 1, ordinal: REGISTER.ordinal, flexible: true }, REGISTER.response, { tag: 'err', value: -25 }).bytes).fill(0, 24, 32)) },
  { name: 'framework_err other than UNKNOWN_METHOD', code: 'unknown_enum_value', run: body(REGISTER.response, patch(Uint8Array.from(fidl.encodeMessage({ txid: 1, ordinal: REGISTER.ordinal, flexible: true }, REGISTER.response, { tag: 'frameworkErr', value: -2 }).bytes), 24, 0xfd)) },
  { name: 'empty struct byte not zero', code: 'invalid_empty_struct', run: body(runner.ManagerMethods.RegisterWakeWatcher.response, patch(Uint8Array.from(fidl.encodeMessage({ txid: 1, ordinal: 1n, flexible: true }, runner.ManagerMethods.RegisterWakeWatcher.response, { tag: 'response', value: {} }).bytes), 24, 1)) },
  // Outer (structs, boxes, unions, enums, bits, bool, bounded strings)
  { name: 'bool byte 2', code: 'invalid_bool', run: atRest(outerType, patch(outer(), 64, 2)) },
  { name: 'strict enum value 7', code: 'unknown_enum_value', run: atRest(outerType, patch(outer(), 65, 7)) },
  { name: 'struct padding not zero', code: 'nonzero_padding', run: atRest(outerType, patch(outer(), 66, 1)) },
  { name: 'struct trailing padding not zero', code: 'nonzero_padding', run: atRest(outerType, patch(outer(), 84, 1)) },
  { name: 'strict bits with an unknown bit', code: 'unknown_bits', run: atRest(outerType, patch(outer(), 71, 0x40)) } /* 0x40000000: no zx.Rights bit */,
  { name: 'strict union ordinal 9', code: 'unknown_union_tag', run: atRest(outerType, patch(outer(), 8, 9)) },
  { name: 'strict union ordinal above 2^32', code: 'unknown_union_tag', run: atRest(outerType, patch(outer(), 12, 1)) },
  { name: 'absent union with a non-zero envelope', code: 'absent_union_with_data', run: atRest(outerType, patch(outer(), 8, 0)) },
  { name: 'envelope flags 0x3', code: 'invalid_envelope_flags', run: atRest(outerType, patch(outer(), 22, 3)) },
  { name: 'box presence 0x01', code: 'invalid_presence', run: atRest(outerType, patch(outer(), 0, 1)) },
  { name: 'absent optional string with a length', code: 'invalid_presence', run: atRest(outerType, patch(outer(), 40, 3)) },
  { name: 'absent required vector', code: 'missing_required_value', run: atRest(outerType, patch(patch(outer(), 24, 0), 32, 0, 0, 0, 0, 0, 0, 0, 0)) },
  { name: 'string:8 of 9 bytes', code: 'string_too_long', run: atRest(outerType, patch(outer(), 88, 9)) },
  { name: 'vector:4 of 5 elements', code: 'vector_too_long', run: atRest(outerType, patch(outer(), 24, 5)) },
  { name: 'vector count above 2^32-1', code: 'size_overflow', run: atRest(outerType, patch(outer(), 28, 1)) },
  { name: 'invalid UTF-8 in a vector element', code: 'invalid_utf8', run: atRest(outerType, patch(outer(), 104, 0xc3)) },
  { name: 'out-of-line padding not zero', code: 'nonzero_padding', run: atRest(outerType, patch(outer(), 107, 1)) },
  { name: 'eight bytes left over', code: 'extra_bytes', run: atRest(outerType, Uint8Array.from([...outer(), 0, 0, 0, 0, 0, 0, 0, 0])) },
  { name: 'message truncated', code: 'out_of_bounds', run: atRest(outerType, outer().slice(0, 104)) },
  { name: 'shorter than the primary object', code: 'too_short', run: atRest(outerType, outer().slice(0, 32)) },
  { name: '33 nested boxes', code: 'max_depth_exceeded', run: atRest(kitchen.types.Chain, chain(33)) },
  // Everything (tables, handles, inline envelopes)
  { name: 'inline envelope padding not zero', code: 'nonzero_padding', run: atRest(everythingType, patch(everything(), 33, 1)), handles: 1 },
  { name: 'bool field not inlined', code: 'invalid_inline_envelope', run: atRest(everythingType, patch(everything(), 32, 8, 0, 0, 0, 0, 0, 0, 0)), handles: 1 },
  { name: 'absent required handle', code: 'missing_required_handle', run: atRest(everythingType, patch(everything(), 72, 0, 0, 0, 0)), handles: 1 },
  { name: 'handle marker 0x01', code: 'invalid_handle_presence', run: atRest(everythingType, patch(everything(), 72, 1, 0, 0, 0)), handles: 1 },
  { name: 'fewer handles than markers', code: 'missing_handles', run: atRest(everythingType, everything()), handles: 0 },
  { name: 'handles left over', code: 'extra_handles', run: atRest(everythingType, everything()), handles: 2 },
  { name: 'envelope num_handles 2 for 1', code: 'envelope_handles_mismatch', run: atRest(everythingType, patch(everything(), 52, 2)), handles: 1 },
  { name: 'zero envelope claiming handles', code: 'envelope_handles_mismatch', run: atRest(everythingType, patch(everything(), 20, 1)), handles: 1 },
  { name: 'handle of the wrong object type', code: 'incorrect_handle_type', run: atRest(everythingType, everything(), { handleCheck: () => fidl.Status.WRONG_TYPE }), handles: 1 },
  { name: 'handle without the declared rights', code: 'missing_required_handle_rights', run: atRest(everythingType, everything(), { handleCheck: () => fidl.Status.ACCESS_DENIED }), handles: 1 },
  { name: 'handle check failing otherwise', code: 'handle_check_failed', run: atRest(everythingType, everything(), { handleCheck: () => fidl.Status.BAD_HANDLE }), handles: 1 },
  { name: 'unknown field of a strict table', code: 'unknown_table_field', run: atRest(strictTable, Uint8Array.from([2, 0, 0, 0, 0, 0, 0, 0, ...Array(8).fill(0xff), 1, 0, 0, 0, 0, 0, 1, 0, 9, 0, 0, 0, 0, 0, 1, 0])) },
];

describe('malformed messages', () => {
  test('there are at least 30 distinct malformed inputs', () => {
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
    expect(cases.length).toBeGreaterThanOrEqual(30);
  });

  test.each(cases)('$name -> $code', ({ code, run, handles = 0 }) => {
    const hs = Array.from({ length: handles }, devNullHandle);
    const fds = hs.map((h) => h.fd);
    let thrown: unknown;
    try {
      run(hs);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(fidl.FidlDecodeError);
    expect((thrown as fidl.FidlDecodeError).code).toBe(code);
    for (const fd of fds) expect(fdIsOpen(fd)).toBe(false);
  });

  test('32 nested boxes are within the depth limit', () => {
    expect(() => fidl.decodeValue(kitchen.types.Chain, chain(32))).not.toThrow();
  });

  test('unknown table field is skipped and its handle closed', () => {
    // Everything with an envelope at ordinal 4 (not declared) carrying a handle, inlined.
    const bytes = patch(everything(), 40, 0xff, 0xff, 0xff, 0xff, 1, 0, 1, 0);
    const unknownHandle = devNullHandle();
    const known = devNullHandle();
    const unknownFd = unknownHandle.fd;
    const value = fidl.decodeValue<kitchen.Everything>(everythingType, bytes, [unknownHandle, known]);
    expect(value.flag).toBe(true);
    expect(value.handles).toEqual([known]);
    expect(fdIsOpen(unknownFd)).toBe(false);
    expect(known.valid).toBe(true);
    known.close();
  });

  test('unknown member of a flexible union is kept as $unknown, its handle closed', () => {
    // Loose (flexible): ordinal 7, envelope inlined with one handle.
    const bytes = Uint8Array.from([7, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 1, 0, 1, 0]);
    const h = devNullHandle();
    const fd = h.fd;
    expect(fidl.decodeValue(kitchen.types.Loose, bytes, [h])).toEqual({ tag: '$unknown', ordinal: 7n });
    expect(fdIsOpen(fd)).toBe(false);
  });

  test('unknown value of a flexible enum is kept', () => {
    const bytes = fidl.encodeMessage({ txid: 1, ordinal: 1n, flexible: true }, runner.ManagerMethods.SuspendContainer.response, { tag: 'err', value: 99 }).bytes;
    expect(fidl.decodeMessageBody(runner.ManagerMethods.SuspendContainer.response, bytes, [])).toEqual({ tag: 'err', value: 99 });
  });
});

describe('encode errors', () => {
  const type = REGISTER.payload;
  const encode = (v: unknown, t: fidl.FidlType = type) => () => fidl.encodeValue(t, v);
  test.each([
    ['uint32 out of range', { inodeNum: 2 ** 32 }, 'value_out_of_range'],
    ['uint32 not an integer', { inodeNum: 1.5 }, 'value_out_of_range'],
    ['uint64 as a number', { size: 5 }, 'wrong_type'],
    ['uint64 negative', { size: -1n }, 'value_out_of_range'],
    ['1025 extents', { extents: Array(1025).fill({ logicalStart: 0, logicalEnd: 1, physicalBlock: 0n }) }, 'vector_too_long'],
    ['extent missing a field', { extents: [{ logicalStart: 0, logicalEnd: 1 }] }, 'missing_required_field'],
    ['lone surrogate in name', { name: 'a\ud800' }, 'invalid_string'],
  ])('%s', (_name, value, code) => {
    expect(encode(value)).toThrow(expect.objectContaining({ code }));
  });
  test('error path names the field', () => {
    try {
      fidl.encodeValue(type, { extents: [{ logicalStart: 0, logicalEnd: 1, physicalBlock: 1n }, { logicalStart: 0, logicalEnd: -1, physicalBlock: 1n }] });
      throw new Error('no error');
    } catch (e) {
      expect((e as fidl.FidlEncodeError).path).toEqual(['extents', '1', 'logicalEnd']);
    }
  });
  test('strict enum, strict bits, strict union, bounded string, closed handle, duplicate handle', () => {
    const inner = { flag: true, color: 1, rights: 1, big: 0n, tags: Uint8Array.from([0, 0, 0]) };
    const base = { inner, choice: null, words: [], maybe: null, status: 0 };
    expect(encode({ ...base, inner: { ...inner, color: 9 } }, outerType)).toThrow(expect.objectContaining({ code: 'unknown_enum_value' }));
    expect(encode({ ...base, inner: { ...inner, rights: 0x40000000 } }, outerType)).toThrow(expect.objectContaining({ code: 'unknown_bits' }));
    expect(encode({ ...base, choice: { tag: 'nope', value: 1 } }, outerType)).toThrow(expect.objectContaining({ code: 'unknown_union_member' }));
    expect(encode({ ...base, words: ['123456789'] }, outerType)).toThrow(expect.objectContaining({ code: 'string_too_long' }));
    expect(encode({ ...base, inner: { ...inner, tags: Uint8Array.from([1]) } }, outerType)).toThrow(expect.objectContaining({ code: 'array_length_mismatch' }));
    const h = devNullHandle();
    expect(encode({ handles: [h, h] }, everythingType)).toThrow(expect.objectContaining({ code: 'duplicate_handle' }));
    h.close();
    expect(encode({ handles: [h] }, everythingType)).toThrow(expect.objectContaining({ code: 'invalid_handle' }));
    expect(encode({ handles: [null] }, everythingType)).toThrow(expect.objectContaining({ code: 'missing_required_handle' }));
  });
  test('33 nested boxes do not encode', () => {
    let v: unknown = null;
    for (let i = 0; i < 34; i++) v = { next: v }; // top-level Chain + 33 boxes
    expect(encode(v, kitchen.types.Chain)).toThrow(expect.objectContaining({ code: 'max_depth_exceeded' }));
  });
});
