// FIDL wire format v2 encoder, driven by coding tables (types.ts).
// Writes into a zero-filled buffer that grows by doubling, so padding is zero without extra work;
// out-of-line objects are appended in traversal order at 8-byte boundaries. Handles are collected,
// in order of appearance, into a list that travels beside the bytes (the transport moves them).
import { FidlEncodeError, Status } from './errors';
import { HandleCheck, describeHandleType, getDefaultHandleCheck, handleCheckFailure } from './handle_check';
import type { Handle } from '../transport/handle';
import {
  BitsDecl, EnumDecl, FidlType, IntegerSubtype, MAX_BOUND, OverlayDecl, StructDecl, TableDecl, UnionDecl, describeType,
} from './types';

/** FIDL's limit on out-of-line indirections. */
export const MAX_DEPTH = 32;

const PRESENT32 = 0xffffffff;

const INT_RANGES: Record<string, [number, number]> = {
  int8: [-0x80, 0x7f], int16: [-0x8000, 0x7fff], int32: [-0x80000000, 0x7fffffff],
  uint8: [0, 0xff], uint16: [0, 0xffff], uint32: [0, 0xffffffff],
};

const align8 = (n: number): number => (n + 7) & ~7;

export interface EncodedMessage {
  bytes: Uint8Array;
  handles: Handle[];
}

export interface EncodeOptions {
  /** Checks each handle against its declared type and rights; default: the installed one. */
  handleCheck?: HandleCheck | null;
}

export class Encoder {
  /** A Buffer (a zero-filled Uint8Array) so that strings are written into it without a view per string. */
  private buf: Buffer;
  private dv: DataView;
  /** End of the data written so far: where the next out-of-line object goes. */
  private next: number;
  readonly handles: Handle[] = [];
  private readonly check: HandleCheck | null;

  constructor(initialCapacity = 256, options?: EncodeOptions) {
    this.check = options?.handleCheck !== undefined ? options.handleCheck : getDefaultHandleCheck();
    this.buf = Buffer.alloc(initialCapacity);
    this.dv = new DataView(this.buf.buffer);
    this.next = 0;
  }

  /** Reserves `size` bytes (rounded up to 8) at the end and returns their offset. */
  claim(size: number, depth: number): number {
    if (depth > MAX_DEPTH) throw new FidlEncodeError('max_depth_exceeded', `more than ${MAX_DEPTH} levels of indirection`);
    const offset = this.next;
    const end = offset + align8(size);
    if (end > this.buf.length) this.grow(end);
    this.next = end;
    return offset;
  }

  private grow(needed: number): void {
    let capacity = this.buf.length * 2;
    while (capacity < needed) capacity *= 2;
    const bigger = Buffer.alloc(capacity);
    bigger.set(this.buf.subarray(0, this.next));
    this.buf = bigger;
    this.dv = new DataView(bigger.buffer);
  }

  get view(): DataView {
    return this.dv;
  }

  /** The bytes written so far (a view, not a copy). */
  finish(): Uint8Array {
    // A plain Uint8Array, as callers have always had (a Buffer's slice() would not copy).
    return new Uint8Array(this.buf.buffer, this.buf.byteOffset, this.next);
  }

  encode(type: FidlType, value: unknown, offset: number, depth: number): void {
    switch (type.kind) {
      case 'primitive':
        return this.encodePrimitive(type.subtype, value, offset);
      case 'string':
        return this.encodeString(type.maxLength, type.nullable, value, offset, depth);
      case 'vector':
        return this.encodeVector(type.element, type.maxLength, type.nullable, value, offset, depth);
      case 'array': {
        const el = type.element;
        if (!isSequence(value)) throw new FidlEncodeError('wrong_type', `expected an array for ${describeType(type)}`);
        if (value.length !== type.count) {
          throw new FidlEncodeError('array_length_mismatch', `array needs ${type.count} elements, got ${value.length}`);
        }
        for (let i = 0; i < type.count; i++) this.encodeElement(el, value[i], offset + i * el.size, depth, i);
        return;
      }
      case 'handle':
        return this.encodeHandle(type.objType, type.rights, type.nullable, value, offset);
      case 'struct':
        return this.encodeStruct(type.decl, value, offset, depth);
      case 'box': {
        if (value === null || value === undefined) return; // absent: 8 zero bytes already there
        this.dv.setUint32(offset, PRESENT32, true);
        this.dv.setUint32(offset + 4, PRESENT32, true);
        const at = this.claim(type.decl.size, depth + 1);
        return this.encodeStruct(type.decl, value, at, depth + 1);
      }
      case 'table':
        return this.encodeTable(type.decl, value, offset, depth);
      case 'union':
        return this.encodeUnion(type.decl, type.nullable, value, offset, depth);
      case 'overlay':
        return this.encodeOverlay(type.decl, value, offset, depth);
      case 'enum':
        return this.encodeEnum(type.decl, value, offset);
      case 'bits':
        return this.encodeBits(type.decl, value, offset);
      case 'framework_err':
        return this.encodePrimitive('int32', value, offset);
    }
  }

  private encodeElement(el: FidlType, v: unknown, offset: number, depth: number, index: number): void {
    try {
      this.encode(el, v, offset, depth);
    } catch (e) {
      throw e instanceof FidlEncodeError ? e.within(String(index)) : e;
    }
  }

  private encodePrimitive(subtype: string, v: unknown, offset: number): void {
    const dv = this.dv;
    switch (subtype) {
      case 'bool':
        if (typeof v !== 'boolean') throw wrongType('a boolean', v);
        dv.setUint8(offset, v ? 1 : 0);
        return;
      case 'uint8': dv.setUint8(offset, checkInt(subtype, v)); return;
      case 'int8': dv.setInt8(offset, checkInt(subtype, v)); return;
      case 'uint16': dv.setUint16(offset, checkInt(subtype, v), true); return;
      case 'int16': dv.setInt16(offset, checkInt(subtype, v), true); return;
      case 'uint32': dv.setUint32(offset, checkInt(subtype, v), true); return;
      case 'int32': dv.setInt32(offset, checkInt(subtype, v), true); return;
      case 'uint64': dv.setBigUint64(offset, checkBigInt(subtype, v), true); return;
      case 'int64': dv.setBigInt64(offset, checkBigInt(subtype, v), true); return;
      case 'float32':
        if (typeof v !== 'number') throw wrongType('a number', v);
        dv.setFloat32(offset, v, true);
        return;
      case 'float64':
        if (typeof v !== 'number') throw wrongType('a number', v);
        dv.setFloat64(offset, v, true);
        return;
    }
  }

  private writeVectorHeader(count: number, offset: number): void {
    this.dv.setUint32(offset, count, true); // count fits in 32 bits: bounds are at most 2^32-1
    this.dv.setUint32(offset + 8, PRESENT32, true);
    this.dv.setUint32(offset + 12, PRESENT32, true);
  }

  private encodeString(max: number, nullable: boolean, v: unknown, offset: number, depth: number): void {
    if (v === null || v === undefined) {
      if (nullable) return;
      throw new FidlEncodeError(v === undefined ? 'missing_required_field' : 'missing_required_value', 'string is required');
    }
    if (typeof v !== 'string') throw wrongType('a string', v);
    // A lone surrogate has no UTF-8 form: refuse instead of sending U+FFFD.
    if (!(v as unknown as { isWellFormed(): boolean }).isWellFormed()) {
      throw new FidlEncodeError('invalid_string', 'string has a lone surrogate (not representable in UTF-8)');
    }
    const length = Buffer.byteLength(v, 'utf8');
    if (length > max) throw new FidlEncodeError('string_too_long', `string of ${length} bytes exceeds bound ${max}`);
    this.writeVectorHeader(length, offset);
    const at = this.claim(length, depth + 1);
    this.buf.write(v, at, length, 'utf8');
  }

  private encodeVector(el: FidlType, max: number, nullable: boolean, v: unknown, offset: number, depth: number): void {
    if (v === null || v === undefined) {
      if (nullable) return;
      throw new FidlEncodeError(v === undefined ? 'missing_required_field' : 'missing_required_value', 'vector is required');
    }
    if (!isSequence(v)) throw wrongType('an array', v);
    const count = v.length;
    if (count > max) throw new FidlEncodeError('vector_too_long', `vector of ${count} elements exceeds bound ${max}`);
    this.writeVectorHeader(count, offset);
    const elSize = el.size;
    const at = this.claim(count * elSize, depth + 1);
    if (v instanceof Uint8Array && el.kind === 'primitive' && el.subtype === 'uint8') {
      this.buf.set(v, at);
      return;
    }
    for (let i = 0; i < count; i++) this.encodeElement(el, v[i], at + i * elSize, depth + 1, i);
  }

  private encodeHandle(objType: number, rights: number, nullable: boolean, v: unknown, offset: number): void {
    if (v === null || v === undefined) {
      if (nullable) return;
      throw new FidlEncodeError('missing_required_handle', 'handle is required');
    }
    const h = v as Handle;
    if (typeof h !== 'object' || typeof h.take !== 'function' || typeof h.close !== 'function') {
      throw wrongType('a Handle', v);
    }
    if (!h.valid) throw new FidlEncodeError('invalid_handle', 'handle is closed or was already moved');
    if (this.handles.includes(h)) throw new FidlEncodeError('duplicate_handle', 'the same handle appears twice');
    if (this.check !== null) {
      const status = this.check(h, objType, rights);
      if (status !== Status.OK) {
        const err = new FidlEncodeError(handleCheckFailure(status), `handle is not a ${describeHandleType(objType, rights)} (status ${status})`);
        err.status = status;
        throw err;
      }
    }
    this.handles.push(h);
    this.dv.setUint32(offset, PRESENT32, true);
  }

  encodeStruct(decl: StructDecl, v: unknown, offset: number, depth: number): void {
    if (typeof v !== 'object' || v === null) {
      throw new FidlEncodeError(v === undefined ? 'missing_required_field' : 'wrong_type', `expected an object for ${decl.name}`);
    }
    const obj = v as Record<string, unknown>;
    const fields = decl.fields;
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i];
      try {
        this.encode(f.type, obj[f.name], offset + f.offset, depth);
      } catch (e) {
        throw e instanceof FidlEncodeError ? e.within(f.name) : e;
      }
    }
  }

  private encodeTable(decl: TableDecl, v: unknown, offset: number, depth: number): void {
    if (typeof v !== 'object' || v === null) {
      throw new FidlEncodeError(v === undefined ? 'missing_required_field' : 'wrong_type', `expected an object for ${decl.name}`);
    }
    const obj = v as Record<string, unknown>;
    const members = decl.members;
    // The envelope count is the highest ordinal present; absent fields below it are zero envelopes.
    let maxOrdinal = 0;
    for (let i = members.length - 1; i >= 0; i--) {
      if (obj[members[i].name] !== undefined) {
        maxOrdinal = members[i].ordinal;
        break;
      }
    }
    this.writeVectorHeader(maxOrdinal, offset);
    const envelopes = this.claim(maxOrdinal * 8, depth + 1);
    for (const m of members) {
      if (m.ordinal > maxOrdinal) break;
      const fv = obj[m.name];
      if (fv === undefined) continue;
      try {
        this.encodeEnvelope(m.type, fv, envelopes + (m.ordinal - 1) * 8, depth + 2);
      } catch (e) {
        throw e instanceof FidlEncodeError ? e.within(m.name) : e;
      }
    }
  }

  /** Envelope v2: values of 4 bytes or less sit inline (flags bit 0), larger ones out of line. */
  private encodeEnvelope(type: FidlType, v: unknown, offset: number, depth: number): void {
    const handlesBefore = this.handles.length;
    if (type.size <= 4) {
      this.encode(type, v, offset, depth);
      this.dv.setUint16(offset + 4, this.handles.length - handlesBefore, true);
      this.dv.setUint16(offset + 6, 1, true);
    } else {
      const start = this.next;
      const at = this.claim(type.size, depth);
      this.encode(type, v, at, depth);
      this.dv.setUint32(offset, this.next - start, true);
      this.dv.setUint16(offset + 4, this.handles.length - handlesBefore, true);
    }
  }

  private encodeUnion(decl: UnionDecl, nullable: boolean, v: unknown, offset: number, depth: number): void {
    if (v === null || v === undefined) {
      if (nullable) return; // ordinal 0 and a zero envelope
      throw new FidlEncodeError(v === undefined ? 'missing_required_field' : 'missing_required_value', `union ${decl.name} is required`);
    }
    const tag = (v as { tag?: unknown }).tag;
    if (typeof tag !== 'string') throw wrongType(`a { tag, value } object for ${decl.name}`, v);
    const member = decl.memberByName(tag);
    if (member === undefined) {
      throw new FidlEncodeError('unknown_union_member', `${decl.name} has no member "${tag}"`);
    }
    this.dv.setUint32(offset, member.ordinal, true);
    try {
      this.encodeEnvelope(member.type, (v as { value?: unknown }).value, offset + 8, depth + 1);
    } catch (e) {
      throw e instanceof FidlEncodeError ? e.within(tag) : e;
    }
  }

  /** Overlay: the ordinal as a uint64, the member inline at +8; the rest stays zero (padding). */
  private encodeOverlay(decl: OverlayDecl, v: unknown, offset: number, depth: number): void {
    if (v === null || v === undefined) {
      throw new FidlEncodeError(v === undefined ? 'missing_required_field' : 'missing_required_value', `overlay ${decl.name} is required`);
    }
    const tag = (v as { tag?: unknown }).tag;
    if (typeof tag !== 'string') throw wrongType(`a { tag, value } object for ${decl.name}`, v);
    const member = decl.memberByName(tag);
    if (member === undefined) throw new FidlEncodeError('unknown_union_member', `${decl.name} has no member "${tag}"`);
    this.dv.setBigUint64(offset, BigInt(member.ordinal), true);
    try {
      this.encode(member.type, (v as { value?: unknown }).value, offset + 8, depth);
    } catch (e) {
      throw e instanceof FidlEncodeError ? e.within(tag) : e;
    }
  }

  private encodeEnum(decl: EnumDecl, v: unknown, offset: number): void {
    if (decl.strict && !decl.isKnown(v as number | bigint)) {
      throw new FidlEncodeError('unknown_enum_value', `${String(v)} is not a member of strict enum ${decl.name}`);
    }
    this.encodePrimitive(decl.subtype, v, offset);
  }

  private encodeBits(decl: BitsDecl, v: unknown, offset: number): void {
    if (decl.strict) {
      const unknown = is64(decl.subtype)
        ? typeof v === 'bigint' && (v & ~(decl.mask as bigint)) !== 0n
        : typeof v === 'number' && ((v & ~(decl.mask as number)) >>> 0) !== 0;
      if (unknown) throw new FidlEncodeError('unknown_bits', `${String(v)} has bits outside strict bits ${decl.name}`);
    }
    this.encodePrimitive(decl.subtype, v, offset);
  }
}

function is64(subtype: IntegerSubtype): boolean {
  return subtype === 'int64' || subtype === 'uint64';
}

function isSequence(v: unknown): v is ArrayLike<unknown> {
  return Array.isArray(v) || v instanceof Uint8Array;
}

function wrongType(expected: string, v: unknown): FidlEncodeError {
  if (v === undefined) return new FidlEncodeError('missing_required_field', `expected ${expected}, got undefined`);
  const got = v === null ? 'null' : typeof v;
  return new FidlEncodeError('wrong_type', `expected ${expected}, got ${got}`);
}

function checkInt(subtype: string, v: unknown): number {
  if (typeof v !== 'number') throw wrongType(`a number (${subtype})`, v);
  const [min, max] = INT_RANGES[subtype];
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new FidlEncodeError('value_out_of_range', `${v} does not fit ${subtype}`);
  }
  return v;
}

function checkBigInt(subtype: string, v: unknown): bigint {
  if (typeof v !== 'bigint') throw wrongType(`a bigint (${subtype})`, v);
  const fits = subtype === 'uint64' ? BigInt.asUintN(64, v) === v : BigInt.asIntN(64, v) === v;
  if (!fits) throw new FidlEncodeError('value_out_of_range', `${v} does not fit ${subtype}`);
  return v;
}

/**
 * Encodes a value of `type` as a standalone message (at rest, no header). The value's handles
 * move into the result; if encoding fails, every handle in the value is closed (as FIDL bindings
 * do: the caller gave them up) and the FidlEncodeError is thrown.
 */
export function encodeValue(type: FidlType, value: unknown, options?: EncodeOptions): EncodedMessage {
  const enc = new Encoder(Math.max(64, align8(type.size) * 2), options);
  try {
    const at = enc.claim(type.size, 0);
    enc.encode(type, value, at, 0);
  } catch (e) {
    closeHandlesIn(value);
    throw e;
  }
  return { bytes: enc.finish(), handles: enc.handles };
}

/**
 * Walks a value and closes every handle in it (anything with take() and close()): what happens to
 * a message's handles when it cannot be encoded or sent.
 */
export function closeHandlesIn(value: unknown, seen = new Set<unknown>()): void {
  if (typeof value !== 'object' || value === null || seen.has(value)) return;
  seen.add(value);
  const maybeHandle = value as Partial<Handle>;
  if (typeof maybeHandle.take === 'function' && typeof maybeHandle.close === 'function') {
    try {
      maybeHandle.close();
    } catch {
      // best effort
    }
    return;
  }
  if (ArrayBuffer.isView(value)) return;
  for (const v of Object.values(value as Record<string, unknown>)) closeHandlesIn(v, seen);
}

export { MAX_BOUND };
