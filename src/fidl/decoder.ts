// FIDL wire format v2 decoder, driven by coding tables (types.ts).
// It validates as it goes (single pass, depth-first, like the spec's validation rules) and fails
// with a FidlDecodeError carrying one code per kind of malformation. It never hands out a partly
// built value: on any error every handle that came with the message is closed.
import { isUtf8 } from 'buffer';
import { FidlDecodeError, Status } from './errors';
import type { Handle } from '../transport/handle';
import { BitsDecl, EnumDecl, FidlType, HandleType, OverlayDecl, StructDecl, TableDecl, UnionDecl } from './types';
import { MAX_DEPTH } from './encoder';
import { HandleCheck, describeHandleType, getDefaultHandleCheck, handleCheckFailure } from './handle_check';

const PRESENT32 = 0xffffffff;

export interface DecodeOptions {
  handleCheck?: HandleCheck | null;
}

const align8 = (n: number): number => (n + 7) & ~7;

/** Marks an envelope the decoder skipped (unknown member) as opposed to an absent one. */
const SKIPPED: unique symbol = Symbol('skipped');

export class Decoder {
  private readonly bytes: Uint8Array;
  private readonly dv: DataView;
  private readonly buffer: Buffer;
  private readonly handles: readonly Handle[];
  private readonly check: HandleCheck | null;
  /** Start of the next out-of-line object. */
  next = 0;
  handleIndex = 0;

  constructor(bytes: Uint8Array, handles: readonly Handle[], options?: DecodeOptions) {
    this.bytes = bytes;
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // Messages from the transport are Buffers already; only a bare Uint8Array needs a Buffer view.
    this.buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.handles = handles;
    this.check = options?.handleCheck !== undefined ? options.handleCheck : getDefaultHandleCheck();
  }

  /** Decodes the primary object of `type` at `offset` and checks that all bytes and handles were used. */
  decodeTopLevel(type: FidlType, offset: number): unknown {
    this.next = offset;
    const at = this.claim(type.size, 0);
    const value = this.decode(type, at, 0);
    if (this.next !== this.bytes.length) {
      throw new FidlDecodeError('extra_bytes', `${this.bytes.length - this.next} bytes left over after the message`);
    }
    if (this.handleIndex !== this.handles.length) {
      throw new FidlDecodeError('extra_handles', `${this.handles.length - this.handleIndex} handles left over after the message`);
    }
    return value;
  }

  /** Claims the next out-of-line object of `size` bytes; checks bounds, depth and its trailing padding. */
  claim(size: number, depth: number): number {
    if (depth > MAX_DEPTH) throw new FidlDecodeError('max_depth_exceeded', `more than ${MAX_DEPTH} levels of indirection`);
    const offset = this.next;
    const end = offset + align8(size);
    if (end > this.bytes.length) {
      throw new FidlDecodeError('out_of_bounds', `object of ${size} bytes at ${offset} runs past the ${this.bytes.length}-byte message`);
    }
    for (let i = offset + size; i < end; i++) {
      if (this.bytes[i] !== 0) throw new FidlDecodeError('nonzero_padding', `out-of-line padding at byte ${i}`);
    }
    this.next = end;
    return offset;
  }

  decode(type: FidlType, offset: number, depth: number): unknown {
    switch (type.kind) {
      case 'primitive':
        return this.decodePrimitive(type.subtype, offset);
      case 'string':
        return this.decodeString(type.maxLength, type.nullable, offset, depth);
      case 'vector':
        return this.decodeVector(type.element, type.maxLength, type.nullable, offset, depth);
      case 'array': {
        const el = type.element;
        if (el.kind === 'primitive' && el.subtype === 'uint8') return this.bytes.slice(offset, offset + type.count);
        const out = new Array(type.count);
        for (let i = 0; i < type.count; i++) out[i] = this.decode(el, offset + i * el.size, depth);
        return out;
      }
      case 'handle':
        return this.decodeHandle(type, offset);
      case 'struct':
        return this.decodeStruct(type.decl, offset, depth);
      case 'box': {
        if (!this.readPresence(offset)) return null;
        const at = this.claim(type.decl.size, depth + 1);
        return this.decodeStruct(type.decl, at, depth + 1);
      }
      case 'table':
        return this.decodeTable(type.decl, offset, depth);
      case 'union':
        return this.decodeUnion(type.decl, type.nullable, offset, depth);
      case 'overlay':
        return this.decodeOverlay(type.decl, offset, depth);
      case 'enum':
        return this.decodeEnum(type.decl, offset);
      case 'bits':
        return this.decodeBits(type.decl, offset);
      case 'framework_err': {
        const v = this.dv.getInt32(offset, true);
        if (v !== -2) throw new FidlDecodeError('unknown_enum_value', `framework_err ${v} is not UNKNOWN_METHOD (-2)`);
        return v;
      }
    }
  }

  private decodePrimitive(subtype: string, offset: number): unknown {
    const dv = this.dv;
    switch (subtype) {
      case 'bool': {
        const b = dv.getUint8(offset);
        if (b > 1) throw new FidlDecodeError('invalid_bool', `bool byte ${b} at ${offset}`);
        return b === 1;
      }
      case 'uint8': return dv.getUint8(offset);
      case 'int8': return dv.getInt8(offset);
      case 'uint16': return dv.getUint16(offset, true);
      case 'int16': return dv.getInt16(offset, true);
      case 'uint32': return dv.getUint32(offset, true);
      case 'int32': return dv.getInt32(offset, true);
      case 'uint64': return dv.getBigUint64(offset, true);
      case 'int64': return dv.getBigInt64(offset, true);
      case 'float32': return dv.getFloat32(offset, true);
      case 'float64': return dv.getFloat64(offset, true);
    }
    throw new Error(`unreachable: primitive ${subtype}`);
  }

  /** Reads an 8-byte presence marker: false for 0, true for UINT64_MAX, error otherwise. */
  private readPresence(offset: number): boolean {
    const lo = this.dv.getUint32(offset, true);
    const hi = this.dv.getUint32(offset + 4, true);
    if (lo === 0 && hi === 0) return false;
    if (lo === PRESENT32 && hi === PRESENT32) return true;
    throw new FidlDecodeError('invalid_presence', `presence marker at ${offset} is neither 0 nor UINT64_MAX`);
  }

  /** Reads a 64-bit count that must fit in 32 bits (RFC-0059). */
  private readCount(offset: number): number {
    if (this.dv.getUint32(offset + 4, true) !== 0) {
      throw new FidlDecodeError('size_overflow', `count at ${offset} exceeds 2^32-1`);
    }
    return this.dv.getUint32(offset, true);
  }

  private decodeString(max: number, nullable: boolean, offset: number, depth: number): string | null {
    const length = this.readCount(offset);
    if (!this.readPresence(offset + 8)) {
      if (length !== 0) throw new FidlDecodeError('invalid_presence', `absent string with length ${length}`);
      if (!nullable) throw new FidlDecodeError('missing_required_value', `absent string at ${offset} is not optional`);
      return null;
    }
    if (length > max) throw new FidlDecodeError('string_too_long', `string of ${length} bytes exceeds bound ${max}`);
    const at = this.claim(length, depth + 1);
    const bytes = this.bytes.subarray(at, at + length);
    if (!isUtf8(bytes)) throw new FidlDecodeError('invalid_utf8', `string at ${at} is not valid UTF-8`);
    return this.buffer.toString('utf8', at, at + length);
  }

  private decodeVector(el: FidlType, max: number, nullable: boolean, offset: number, depth: number): unknown {
    const count = this.readCount(offset);
    if (!this.readPresence(offset + 8)) {
      if (count !== 0) throw new FidlDecodeError('invalid_presence', `absent vector with count ${count}`);
      if (!nullable) throw new FidlDecodeError('missing_required_value', `absent vector at ${offset} is not optional`);
      return null;
    }
    if (count > max) throw new FidlDecodeError('vector_too_long', `vector of ${count} elements exceeds bound ${max}`);
    const elSize = el.size;
    // Checked before anything is allocated: a huge count fails here, not in `new Array`.
    if (count * elSize > this.bytes.length - this.next) {
      throw new FidlDecodeError('out_of_bounds', `vector of ${count} x ${elSize} bytes runs past the message`);
    }
    const at = this.claim(count * elSize, depth + 1);
    if (el.kind === 'primitive' && el.subtype === 'uint8') return this.bytes.slice(at, at + count);
    const out = new Array(count);
    if (el.kind === 'struct') {
      const decl = el.decl;
      for (let i = 0; i < count; i++) out[i] = this.decodeStruct(decl, at + i * elSize, depth + 1);
    } else {
      for (let i = 0; i < count; i++) out[i] = this.decode(el, at + i * elSize, depth + 1);
    }
    return out;
  }

  private takeHandle(): Handle {
    if (this.handleIndex >= this.handles.length) {
      throw new FidlDecodeError('missing_handles', `message refers to handle #${this.handleIndex + 1} but carries ${this.handles.length}`);
    }
    return this.handles[this.handleIndex++];
  }

  private decodeHandle(type: HandleType, offset: number): Handle | null {
    const marker = this.dv.getUint32(offset, true);
    if (marker === 0) {
      if (!type.nullable) throw new FidlDecodeError('missing_required_handle', `absent handle at ${offset} is not optional`);
      return null;
    }
    if (marker !== PRESENT32) {
      throw new FidlDecodeError('invalid_handle_presence', `handle marker 0x${marker.toString(16)} at ${offset}`);
    }
    const h = this.takeHandle();
    if (this.check !== null) {
      const status = this.check(h, type.objType, type.rights);
      if (status !== Status.OK) {
        const failure = handleCheckFailure(status);
        const code = failure === 'invalid_handle' ? 'handle_check_failed' : failure;
        throw new FidlDecodeError(code, `handle #${this.handleIndex} is not a ${describeHandleType(type.objType, type.rights)} (status ${status})`, status);
      }
    }
    return h;
  }

  decodeStruct(decl: StructDecl, offset: number, depth: number): Record<string, unknown> {
    const bytes = this.bytes;
    const fields = decl.fields;
    if (fields.length === 0) {
      if (bytes[offset] !== 0) throw new FidlDecodeError('invalid_empty_struct', `empty struct ${decl.name} byte is not 0`);
      return {};
    }
    const padding = decl.padding;
    for (let p = 0; p < padding.length; p++) {
      const start = offset + padding[p].offset;
      const end = start + padding[p].length;
      for (let i = start; i < end; i++) {
        if (bytes[i] !== 0) throw new FidlDecodeError('nonzero_padding', `padding byte ${i} of ${decl.name}`);
      }
    }
    const out: Record<string, unknown> = {};
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i];
      out[f.name] = this.decode(f.type, offset + f.offset, depth);
    }
    return out;
  }

  private decodeTable(decl: TableDecl, offset: number, depth: number): Record<string, unknown> {
    const count = this.readCount(offset);
    if (!this.readPresence(offset + 8)) {
      throw new FidlDecodeError(count === 0 ? 'missing_required_value' : 'invalid_presence', `absent table ${decl.name}`);
    }
    if (count * 8 > this.bytes.length - this.next) {
      throw new FidlDecodeError('out_of_bounds', `table of ${count} envelopes runs past the message`);
    }
    const envelopes = this.claim(count * 8, depth + 1);
    const byOrdinal = decl.byOrdinal;
    const out: Record<string, unknown> = {};
    for (let ordinal = 1; ordinal <= count; ordinal++) {
      const member = byOrdinal[ordinal];
      if (member === undefined && decl.strict && !this.isZeroEnvelope(envelopes + (ordinal - 1) * 8)) {
        throw new FidlDecodeError('unknown_table_field', `strict table ${decl.name} has no field ${ordinal}`);
      }
      // Envelopes sit at depth+1; their out-of-line content one level further.
      const v = this.decodeEnvelope(member === undefined ? null : member.type, envelopes + (ordinal - 1) * 8, depth + 2);
      if (v !== undefined && v !== SKIPPED) out[member!.name] = v;
    }
    return out;
  }

  private isZeroEnvelope(offset: number): boolean {
    return this.dv.getUint32(offset, true) === 0 && this.dv.getUint32(offset + 4, true) === 0;
  }

  /**
   * Decodes the envelope at `offset`. Returns undefined for the zero envelope, SKIPPED for an
   * envelope of unknown type (its bytes are stepped over and its handles closed, as the spec says).
   */
  private decodeEnvelope(type: FidlType | null, offset: number, depth: number): unknown {
    const dv = this.dv;
    const numBytes = dv.getUint32(offset, true);
    const numHandles = dv.getUint16(offset + 4, true);
    const flags = dv.getUint16(offset + 6, true);
    if ((flags & ~1) !== 0) throw new FidlDecodeError('invalid_envelope_flags', `envelope flags 0x${flags.toString(16)} at ${offset}`);
    const inlined = flags === 1;
    if (!inlined && numBytes === 0) {
      if (numHandles !== 0) throw new FidlDecodeError('envelope_handles_mismatch', `empty envelope at ${offset} claims ${numHandles} handles`);
      return undefined;
    }
    if (!inlined && numBytes % 8 !== 0) {
      throw new FidlDecodeError('envelope_bytes_mismatch', `envelope num_bytes ${numBytes} is not a multiple of 8`);
    }
    if (type === null) {
      if (!inlined) {
        if (numBytes > this.bytes.length - this.next) throw new FidlDecodeError('out_of_bounds', `unknown envelope of ${numBytes} bytes runs past the message`);
        if (depth > MAX_DEPTH) throw new FidlDecodeError('max_depth_exceeded', `more than ${MAX_DEPTH} levels of indirection`);
        this.next += numBytes;
      }
      for (let i = 0; i < numHandles; i++) this.takeHandle().close();
      return SKIPPED;
    }
    const handlesBefore = this.handleIndex;
    let value: unknown;
    if (inlined) {
      if (type.size > 4) throw new FidlDecodeError('invalid_inline_envelope', `value of ${type.size} bytes marked inline at ${offset}`);
      value = this.decode(type, offset, depth);
      for (let i = offset + type.size; i < offset + 4; i++) {
        if (this.bytes[i] !== 0) throw new FidlDecodeError('nonzero_padding', `inline envelope padding at byte ${i}`);
      }
    } else {
      if (type.size <= 4) throw new FidlDecodeError('invalid_inline_envelope', `value of ${type.size} bytes must be inlined at ${offset}`);
      const start = this.next;
      const at = this.claim(type.size, depth);
      value = this.decode(type, at, depth);
      if (this.next - start !== numBytes) {
        throw new FidlDecodeError('envelope_bytes_mismatch', `envelope says ${numBytes} bytes, content used ${this.next - start}`);
      }
    }
    if (this.handleIndex - handlesBefore !== numHandles) {
      throw new FidlDecodeError('envelope_handles_mismatch', `envelope says ${numHandles} handles, content used ${this.handleIndex - handlesBefore}`);
    }
    return value;
  }

  private decodeUnion(decl: UnionDecl, nullable: boolean, offset: number, depth: number): unknown {
    const lo = this.dv.getUint32(offset, true);
    const hi = this.dv.getUint32(offset + 4, true);
    if (lo === 0 && hi === 0) {
      if (!this.isZeroEnvelope(offset + 8)) throw new FidlDecodeError('absent_union_with_data', `union ${decl.name} with ordinal 0 has a non-zero envelope`);
      if (!nullable) throw new FidlDecodeError('missing_required_value', `absent union ${decl.name} is not optional`);
      return null;
    }
    const member = hi === 0 ? decl.memberByOrdinal(lo) : undefined;
    if (member === undefined && decl.strict) {
      throw new FidlDecodeError('unknown_union_tag', `strict union ${decl.name} has no member ${(BigInt(hi) << 32n) | BigInt(lo)}`);
    }
    if (this.isZeroEnvelope(offset + 8)) {
      throw new FidlDecodeError('empty_union_envelope', `union ${decl.name} member ${lo} has an empty envelope`);
    }
    const value = this.decodeEnvelope(member === undefined ? null : member.type, offset + 8, depth + 1);
    if (member === undefined) return { tag: '$unknown', ordinal: (BigInt(hi) << 32n) | BigInt(lo) };
    return { tag: member.name, value };
  }

  /** Overlay: a uint64 ordinal the overlay declares, the member inline at +8, zero after it. */
  private decodeOverlay(decl: OverlayDecl, offset: number, depth: number): unknown {
    const ordinal = this.dv.getBigUint64(offset, true);
    const member = ordinal <= 0xffffffffn ? decl.memberByOrdinal(Number(ordinal)) : undefined;
    if (member === undefined) throw new FidlDecodeError('unknown_union_tag', `overlay ${decl.name} has no member ${ordinal}`);
    const value = this.decode(member.type, offset + 8, depth);
    for (let i = offset + 8 + member.type.size; i < offset + decl.size; i++) {
      if (this.bytes[i] !== 0) throw new FidlDecodeError('nonzero_padding', `padding byte ${i} after member ${member.name} of overlay ${decl.name}`);
    }
    return { tag: member.name, value };
  }

  private decodeEnum(decl: EnumDecl, offset: number): unknown {
    const v = this.decodePrimitive(decl.subtype, offset) as number | bigint;
    if (decl.strict && !decl.isKnown(v)) throw new FidlDecodeError('unknown_enum_value', `${v} is not a member of strict enum ${decl.name}`);
    return v;
  }

  private decodeBits(decl: BitsDecl, offset: number): unknown {
    const v = this.decodePrimitive(decl.subtype, offset) as number | bigint;
    if (decl.strict) {
      const unknown = typeof v === 'bigint' ? (v & ~(decl.mask as bigint)) !== 0n : ((v & ~(decl.mask as number)) >>> 0) !== 0;
      if (unknown) throw new FidlDecodeError('unknown_bits', `${v} has bits outside strict bits ${decl.name}`);
    }
    return v;
  }
}

/** Closes every handle of a message that failed to decode (or could not be delivered). */
export function closeAll(handles: readonly Handle[]): void {
  for (const h of handles) {
    try {
      h.close();
    } catch {
      // Closing is best effort: the fd may already be gone; nothing else can be done.
    }
  }
}

/**
 * Decodes a standalone value of `type` from `bytes` starting at `offset` (0 at rest, 16 after a
 * transactional header). All bytes from `offset` and all handles must be used.
 * On failure every handle is closed and a FidlDecodeError is thrown.
 */
export function decodeValue<T = unknown>(type: FidlType, bytes: Uint8Array, handles: readonly Handle[] = [], offset = 0, options?: DecodeOptions): T {
  try {
    if (bytes.length < offset + type.size) {
      throw new FidlDecodeError('too_short', `${bytes.length - offset} bytes cannot hold ${type.size}-byte inline object`);
    }
    if (offset % 8 !== 0) throw new Error(`decodeValue: offset ${offset} is not 8-aligned`);
    return new Decoder(bytes, handles, options).decodeTopLevel(type, offset) as T;
  } catch (e) {
    closeAll(handles);
    if (e instanceof FidlDecodeError) throw e;
    // A bug or a RangeError from deep inside must not escape as something else: report it typed.
    throw new FidlDecodeError('out_of_bounds', `internal decode failure: ${(e as Error).message}`);
  }
}
