// Transactional messages: the 16-byte header, bodies after it, epitaphs.
//
//   bytes 0..3   txid (u32 LE; 0 for one-way calls, events and epitaphs)
//   bytes 4..5   at-rest flags: byte 4 bit 1 (0x02) = wire format v2
//   byte  6      dynamic flags: bit 7 (0x80) = the method is flexible
//   byte  7      magic number 0x01
//   bytes 8..15  method ordinal (u64 LE)
import { FidlDecodeError, Status } from './errors';
import { Decoder, DecodeOptions, closeAll, decodeValue } from './decoder';
import { EncodeOptions, EncodedMessage, Encoder, closeHandlesIn } from './encoder';
import type { Handle } from '../transport/handle';
import { FidlType, int32 } from './types';

export const HEADER_SIZE = 16;
export const MAGIC_NUMBER = 0x01;
export const AT_REST_FLAG_V2 = 0x02;
export const DYNAMIC_FLAG_FLEXIBLE = 0x80;
export const EPITAPH_ORDINAL = 0xffffffffffffffffn;
/** Channel limits (zx_channel_write), enforced by the transport as well. */
export const MAX_MESSAGE_BYTES = 65536;
export const MAX_MESSAGE_HANDLES = 64;

export interface MessageHeader {
  txid: number;
  /** The two at-rest flag bytes as a u16 (little-endian: 0x0002 for v2). */
  atRestFlags: number;
  dynamicFlags: number;
  magic: number;
  ordinal: bigint;
}

export function isFlexible(header: MessageHeader): boolean {
  return (header.dynamicFlags & DYNAMIC_FLAG_FLEXIBLE) !== 0;
}

/** Parses and checks a header: enough bytes, magic 0x01, wire format v2. */
export function decodeHeader(bytes: Uint8Array): MessageHeader {
  if (bytes.length < HEADER_SIZE) throw new FidlDecodeError('too_short', `message of ${bytes.length} bytes has no 16-byte header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, HEADER_SIZE);
  const header: MessageHeader = {
    txid: dv.getUint32(0, true),
    atRestFlags: dv.getUint16(4, true),
    dynamicFlags: dv.getUint8(6),
    magic: dv.getUint8(7),
    ordinal: dv.getBigUint64(8, true),
  };
  if (header.magic !== MAGIC_NUMBER) throw new FidlDecodeError('bad_magic', `magic number 0x${header.magic.toString(16)} (expected 0x01)`);
  if ((header.atRestFlags & AT_REST_FLAG_V2) === 0) {
    throw new FidlDecodeError('unsupported_wire_format', `at-rest flags 0x${header.atRestFlags.toString(16)} do not announce wire format v2`);
  }
  return header;
}

export interface OutgoingHeader {
  txid: number;
  ordinal: bigint;
  flexible: boolean;
}

/**
 * Encodes header + body (bodyType null: a header-only message). If the body cannot be encoded,
 * every handle in it is closed (the caller gave them up, as with FIDL bindings) and the
 * FidlEncodeError is thrown.
 */
export function encodeMessage(header: OutgoingHeader, bodyType: FidlType | null, body: unknown, options?: EncodeOptions): EncodedMessage {
  const enc = new Encoder(bodyType === null ? HEADER_SIZE : 512, options);
  enc.claim(HEADER_SIZE, 0);
  const dv = enc.view;
  dv.setUint32(0, header.txid, true);
  dv.setUint8(4, AT_REST_FLAG_V2);
  dv.setUint8(6, header.flexible ? DYNAMIC_FLAG_FLEXIBLE : 0);
  dv.setUint8(7, MAGIC_NUMBER);
  dv.setBigUint64(8, header.ordinal, true);
  if (bodyType !== null) {
    try {
      const at = enc.claim(bodyType.size, 0);
      enc.encode(bodyType, body, at, 0);
    } catch (e) {
      closeHandlesIn(body);
      throw e;
    }
  }
  // The encoder may have grown (and replaced its buffer) while writing the body: the header
  // was written through the first view, so write it again if the buffer changed.
  const bytes = enc.finish();
  if (bytes.buffer !== dv.buffer) {
    const out = new DataView(bytes.buffer, bytes.byteOffset, HEADER_SIZE);
    out.setUint32(0, header.txid, true);
    out.setUint8(4, AT_REST_FLAG_V2);
    out.setUint8(6, header.flexible ? DYNAMIC_FLAG_FLEXIBLE : 0);
    out.setUint8(7, MAGIC_NUMBER);
    out.setBigUint64(8, header.ordinal, true);
  }
  return { bytes, handles: enc.handles };
}

/**
 * Decodes the body that follows a header (bodyType null: the message must be header-only).
 * On failure all handles are closed and a FidlDecodeError is thrown.
 */
export function decodeMessageBody<T = unknown>(bodyType: FidlType | null, bytes: Uint8Array, handles: readonly Handle[], options?: DecodeOptions): T {
  if (bodyType === null) {
    if (bytes.length !== HEADER_SIZE || handles.length !== 0) {
      closeAll(handles);
      throw new FidlDecodeError('unexpected_body', `message has ${bytes.length - HEADER_SIZE} body bytes and ${handles.length} handles where none are declared`);
    }
    return undefined as T;
  }
  return decodeValue<T>(bodyType, bytes, handles, HEADER_SIZE, options);
}

/** An epitaph: txid 0, ordinal 0xFFFFFFFFFFFFFFFF, body { status int32 } padded to 8. */
export function encodeEpitaph(status: number): Uint8Array {
  return encodeMessage({ txid: 0, ordinal: EPITAPH_ORDINAL, flexible: false }, int32, status).bytes;
}

/** Reads an epitaph's status; the header must already have been checked by decodeHeader. */
export function decodeEpitaph(header: MessageHeader, bytes: Uint8Array, handles: readonly Handle[]): number {
  if (header.txid !== 0) {
    closeAll(handles);
    throw new FidlDecodeError('invalid_epitaph', `epitaph with txid ${header.txid}`);
  }
  return decodeMessageBody<number>(int32, bytes, handles);
}

export { Decoder, Status };
