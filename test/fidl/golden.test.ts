// Golden wire bytes, derived by hand from the FIDL wire format v2 spec (derivations inline).
// Ordinals: fuchsia.starnix.runner/Pager.RegisterFile = 0x4f85a2ce6cae4aed,
//           fuchsia.starnix.runner/Manager.CreatePager = 0x49d14958b736198b (protocol.md).
import * as fidl from '../../src/fidl';
import * as runner from '../../src/gen/fuchsia_starnix_runner';
import { devNullHandle, fdIsOpen, hex, toHex } from './helpers';

const REGISTER_FILE = 0x4f85a2ce6cae4aedn;
const CREATE_PAGER = 0x49d14958b736198bn;

// Header of a flexible call: txid u32 LE | at-rest flags 02 00 (v2) | dynamic flags 80 (flexible) | magic 01 | ordinal u64 LE.
const REGISTER_FILE_ORDINAL_LE = 'ed 4a ae 6c ce a2 85 4f';
const CREATE_PAGER_ORDINAL_LE = '8b 19 36 b7 58 49 d1 49';

const registerFileRequestBytes = hex(`
  01 00 00 00 | 02 00 | 80 | 01 | ${REGISTER_FILE_ORDINAL_LE}   # header: txid 1, v2, flexible
  04 00 00 00 00 00 00 00 | ff ff ff ff ff ff ff ff             # @16 table: 4 envelopes (max ordinal 4), present
  18 00 00 00 | 00 00 | 00 00    # @32 env 1 name: out of line, 24 bytes (16 string header + 5 chars padded to 8), 0 handles
  0c 00 00 00 | 00 00 | 01 00    # @40 env 2 inode_num = 12: 4 bytes, so inlined (flags bit 0)
  08 00 00 00 | 00 00 | 00 00    # @48 env 3 size: uint64 out of line, 8 bytes
  40 00 00 00 | 00 00 | 00 00    # @56 env 4 extents: 16 vector header + 3 x 16 = 64 bytes
  05 00 00 00 00 00 00 00 | ff ff ff ff ff ff ff ff             # @64 string header: 5 bytes, present
  68 65 6c 6c 6f 00 00 00                                       # @80 "hello" + 3 zero padding
  00 20 00 00 00 00 00 00                                       # @88 size = 8192
  03 00 00 00 00 00 00 00 | ff ff ff ff ff ff ff ff             # @96 vector header: 3 extents, present
  00 00 00 00 | 01 00 00 00 | 64 00 00 00 00 00 00 00           # @112 {0, 1, 100}
  01 00 00 00 | 04 00 00 00 | c8 00 00 00 00 00 00 00           # @128 {1, 4, 200}
  04 00 00 00 | 05 00 00 00 | 01 00 00 00 01 00 00 00           # @144 {4, 5, 0x1_0000_0001}
`);

const registerFileRequest: runner.PagerRegisterFileRequest = {
  name: 'hello',
  inodeNum: 12,
  size: 8192n,
  extents: [
    { logicalStart: 0, logicalEnd: 1, physicalBlock: 100n },
    { logicalStart: 1, logicalEnd: 4, physicalBlock: 200n },
    { logicalStart: 4, logicalEnd: 5, physicalBlock: 0x1_0000_0001n },
  ],
};

const method = runner.PagerMethods.RegisterFile;

describe('golden wire bytes', () => {
  test('ordinals in the generated bindings match protocol.md', () => {
    expect(runner.PagerRegisterFileOrdinal).toBe(REGISTER_FILE);
    expect(runner.ManagerCreatePagerOrdinal).toBe(CREATE_PAGER);
  });

  test('RegisterFile request with a name and three extents', () => {
    const { bytes, handles } = fidl.encodeMessage({ txid: 1, ordinal: REGISTER_FILE, flexible: true }, method.payload, registerFileRequest);
    expect(toHex(bytes)).toBe(toHex(registerFileRequestBytes));
    expect(handles).toEqual([]);
    const header = fidl.decodeHeader(registerFileRequestBytes);
    expect(header).toEqual({ txid: 1, atRestFlags: 2, dynamicFlags: 0x80, magic: 1, ordinal: REGISTER_FILE });
    expect(fidl.decodeMessageBody(method.payload, registerFileRequestBytes, [])).toEqual(registerFileRequest);
  });

  // Success: result union member 1 (response) = table { 1: vmo }, the table out of line.
  const successBytes = hex(`
    01 00 00 00 | 02 00 | 80 | 01 | ${REGISTER_FILE_ORDINAL_LE}
    01 00 00 00 00 00 00 00        # @16 union ordinal 1 = response
    18 00 00 00 | 01 00 | 00 00    # @24 envelope: 24 bytes out of line (16 table header + 1 envelope), 1 handle
    01 00 00 00 00 00 00 00 | ff ff ff ff ff ff ff ff   # @32 table: 1 envelope, present
    ff ff ff ff | 01 00 | 01 00    # @48 env 1 vmo: handle present (UINT32_MAX) inlined, 1 handle
  `);

  test('RegisterFile success response carrying a VMO handle', () => {
    const vmo = devNullHandle();
    const { bytes, handles } = fidl.encodeMessage({ txid: 1, ordinal: REGISTER_FILE, flexible: true }, method.response, { tag: 'response', value: { vmo } });
    expect(toHex(bytes)).toBe(toHex(successBytes));
    expect(handles).toEqual([vmo]);
    const decoded = fidl.decodeMessageBody<runner.PagerRegisterFileResult>(method.response, successBytes, [vmo]);
    expect(decoded).toEqual({ tag: 'response', value: { vmo } });
    expect(fidl.unwrapReply(runner.PagerProtocol, method, decoded)).toEqual({ ok: true, value: { vmo } });
    vmo.close();
  });

  // Error: result union member 2 (err) = zx.Status NOT_FOUND (-25 = 0xffffffe7), inlined.
  const errorBytes = hex(`
    01 00 00 00 | 02 00 | 80 | 01 | ${REGISTER_FILE_ORDINAL_LE}
    02 00 00 00 00 00 00 00        # @16 union ordinal 2 = err
    e7 ff ff ff | 00 00 | 01 00    # @24 envelope: int32 -25 inlined, 0 handles
  `);

  test('RegisterFile zx.Status error response', () => {
    const { bytes } = fidl.encodeMessage({ txid: 1, ordinal: REGISTER_FILE, flexible: true }, method.response, { tag: 'err', value: -25 });
    expect(toHex(bytes)).toBe(toHex(errorBytes));
    const decoded = fidl.decodeMessageBody(method.response, errorBytes, []);
    expect(fidl.unwrapReply(runner.PagerProtocol, method, decoded)).toEqual({ ok: false, error: -25 });
  });

  // CreatePager: one-way (txid 0), table { 1: backing_vmo, 2: block_size, 3: pager }; handles in order vmo, pager.
  const createPagerBytes = hex(`
    00 00 00 00 | 02 00 | 80 | 01 | ${CREATE_PAGER_ORDINAL_LE}   # txid 0: one-way
    03 00 00 00 00 00 00 00 | ff ff ff ff ff ff ff ff           # @16 table: 3 envelopes
    ff ff ff ff | 01 00 | 01 00    # @32 env 1 backing_vmo: handle inlined, 1 handle
    08 00 00 00 | 00 00 | 00 00    # @40 env 2 block_size: uint64 out of line
    ff ff ff ff | 01 00 | 01 00    # @48 env 3 pager (server_end): handle inlined, 1 handle
    00 10 00 00 00 00 00 00        # @56 block_size = 4096
  `);

  test('CreatePager request with both handles', () => {
    const backingVmo = devNullHandle();
    const pager = devNullHandle();
    const m = runner.ManagerMethods.CreatePager;
    const { bytes, handles } = fidl.encodeMessage({ txid: 0, ordinal: CREATE_PAGER, flexible: true }, m.payload, { backingVmo, blockSize: 4096n, pager });
    expect(toHex(bytes)).toBe(toHex(createPagerBytes));
    expect(handles).toEqual([backingVmo, pager]);
    const decoded = fidl.decodeMessageBody<runner.ManagerCreatePagerRequest>(m.payload, createPagerBytes, [backingVmo, pager]);
    expect(decoded.backingVmo).toBe(backingVmo);
    expect(decoded.pager).toBe(pager);
    expect(decoded.blockSize).toBe(4096n);
    backingVmo.close();
    pager.close();
  });

  test('epitaph INVALID_ARGS', () => {
    const epitaph = hex(`
      00 00 00 00 | 02 00 | 00 | 01 | ff ff ff ff ff ff ff ff   # txid 0, not flexible, ordinal 0xFFFFFFFFFFFFFFFF
      f6 ff ff ff 00 00 00 00                                   # int32 -10, then 4 bytes of padding to 8
    `);
    expect(toHex(fidl.encodeEpitaph(fidl.Status.INVALID_ARGS))).toBe(toHex(epitaph));
    expect(fidl.decodeEpitaph(fidl.decodeHeader(epitaph), epitaph, [])).toBe(-10);
  });

  test('framework error UNKNOWN_METHOD reply', () => {
    const reply = hex(`
      07 00 00 00 | 02 00 | 80 | 01 | ${REGISTER_FILE_ORDINAL_LE}   # txid 7, flexible
      03 00 00 00 00 00 00 00        # union ordinal 3 = framework_err
      fe ff ff ff | 00 00 | 01 00    # int32 -2 (UNKNOWN_METHOD) inlined
    `);
    const { bytes } = fidl.encodeMessage({ txid: 7, ordinal: REGISTER_FILE, flexible: true }, fidl.unknownMethodReply, { tag: 'frameworkErr', value: -2 });
    expect(toHex(bytes)).toBe(toHex(reply));
    const decoded = fidl.decodeMessageBody(method.response, reply, []);
    expect(() => fidl.unwrapReply(runner.PagerProtocol, method, decoded)).toThrow(fidl.FidlFrameworkError);
  });

  test('decode failure closes every handle of the message', () => {
    const vmo = devNullHandle();
    const fd = vmo.fd;
    const bad = Uint8Array.from(successBytes);
    bad[52] = 2; // envelope num_handles 2, only 1 used
    expect(() => fidl.decodeMessageBody(method.response, bad, [vmo])).toThrow(expect.objectContaining({ code: 'envelope_handles_mismatch' }));
    expect(vmo.valid).toBe(false);
    expect(fdIsOpen(fd)).toBe(false);
  });
});
