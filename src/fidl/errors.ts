// Typed errors of the FIDL runtime. Every failure the codec or the bindings report is one of
// these, with a stable `code` (decode/encode) or a zx `status` (peer closed, framework error),
// so callers can branch on kinds instead of parsing messages.

/** zx_status_t values the runtime itself produces or interprets (same int32 values as Zircon). */
export const Status = {
  OK: 0,
  INTERNAL: -1,
  NOT_SUPPORTED: -2,
  INVALID_ARGS: -10,
  BAD_HANDLE: -11,
  WRONG_TYPE: -12,
  OUT_OF_RANGE: -14,
  PEER_CLOSED: -24,
  ACCESS_DENIED: -30,
} as const;

/** The only framework error FIDL defines: the peer does not know the flexible method. */
export const FRAMEWORK_ERR_UNKNOWN_METHOD = -2;

export class FidlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Why a message (or value) failed to decode. One code per kind of malformation. */
export type DecodeErrorCode =
  | 'too_short' // buffer shorter than the header or the primary object
  | 'bad_magic' // header magic byte is not 0x01
  | 'unsupported_wire_format' // header at-rest flags do not announce wire format v2
  | 'nonzero_padding' // a padding byte (struct, out-of-line, envelope, header) is not zero
  | 'invalid_presence' // pointer presence marker is neither 0 nor UINT64_MAX, or absent with a count
  | 'invalid_handle_presence' // handle presence marker is neither 0 nor UINT32_MAX
  | 'out_of_bounds' // an out-of-line object would extend past the end of the buffer
  | 'extra_bytes' // bytes left over after the last out-of-line object
  | 'extra_handles' // handles left over after decoding
  | 'missing_handles' // the message refers to more handles than came with it
  | 'missing_required_handle' // an absent handle where the type is not optional
  | 'missing_required_value' // an absent string/vector/union/table that is not optional
  | 'invalid_utf8' // string bytes are not valid UTF-8
  | 'string_too_long' // string longer than its bound
  | 'vector_too_long' // vector longer than its bound
  | 'max_depth_exceeded' // more than 32 levels of out-of-line indirection
  | 'unknown_union_tag' // strict union with an ordinal it does not declare
  | 'unknown_enum_value' // strict enum with a value it does not declare
  | 'unknown_bits' // strict bits with bits outside the mask
  | 'unknown_table_field' // strict table with an ordinal it does not declare
  | 'invalid_bool' // a bool byte that is neither 0 nor 1
  | 'invalid_empty_struct' // an empty struct's single byte is not zero
  | 'invalid_envelope_flags' // envelope flags other than bit 0 (inlined)
  | 'invalid_inline_envelope' // inlined flag on a value over 4 bytes, or missing on one of 4 or less
  | 'envelope_bytes_mismatch' // envelope num_bytes does not match what its content used
  | 'envelope_handles_mismatch' // envelope num_handles does not match what its content used
  | 'empty_union_envelope' // a union with a non-zero ordinal and a zero envelope
  | 'absent_union_with_data' // a union with ordinal 0 and a non-zero envelope
  | 'size_overflow' // a 64-bit count/size beyond 2^32-1
  | 'incorrect_handle_type' // handle check: the fd cannot stand for the declared object type (status WRONG_TYPE)
  | 'missing_required_handle_rights' // handle check: the handle lacks declared rights (status ACCESS_DENIED)
  | 'handle_check_failed' // handle check: any other status
  | 'invalid_epitaph' // epitaph with a txid or a body of the wrong shape
  | 'unexpected_body'; // a body (or handles) where the method declares none

export class FidlDecodeError extends FidlError {
  readonly code: DecodeErrorCode;
  /** zx status from a failed handle check, if that is what failed. */
  readonly status?: number;
  constructor(code: DecodeErrorCode, detail: string, status?: number) {
    super(`FIDL decode error (${code}): ${detail}`);
    this.code = code;
    if (status !== undefined) this.status = status;
  }
}

export type EncodeErrorCode =
  | 'missing_required_field' // a struct field (or a required value) is undefined
  | 'missing_required_value' // null for a string/vector/union that is not optional
  | 'missing_required_handle' // null for a handle that is not optional
  | 'wrong_type' // the JavaScript value does not have the type the FIDL type needs
  | 'value_out_of_range' // an integer outside its FIDL type's range
  | 'string_too_long'
  | 'vector_too_long'
  | 'invalid_string' // a string with lone surrogates (cannot be valid UTF-8)
  | 'array_length_mismatch'
  | 'unknown_union_member' // union tag not declared (unknown members cannot be re-encoded)
  | 'unknown_enum_value' // strict enum
  | 'unknown_bits' // strict bits
  | 'invalid_handle' // handle already closed or moved
  | 'incorrect_handle_type' // handle check: the fd cannot stand for the declared object type
  | 'missing_required_handle_rights' // handle check: the handle lacks declared rights
  | 'duplicate_handle' // the same Handle object twice in one message
  | 'max_depth_exceeded';

export class FidlEncodeError extends FidlError {
  readonly code: EncodeErrorCode;
  /** zx status from a failed handle check, if that is what failed. */
  status?: number;
  /** Field path from the top-level value to the offending member, e.g. ['extents', '3', 'logicalEnd']. */
  readonly path: string[] = [];
  private readonly detail: string;
  constructor(code: EncodeErrorCode, detail: string) {
    super(`FIDL encode error (${code}): ${detail}`);
    this.code = code;
    this.detail = detail;
  }
  /** Prepends a path element while the error unwinds, and refreshes the message. */
  within(name: string): this {
    this.path.unshift(name);
    this.message = `FIDL encode error (${this.code}) at ${this.path.join('.')}: ${this.detail}`;
    return this;
  }
}

/** The channel is closed: by the peer (PEER_CLOSED), or with an epitaph carrying `status`. */
export class FidlPeerClosedError extends FidlError {
  readonly status: number;
  constructor(status: number, detail?: string) {
    super(`FIDL channel closed (status ${status})${detail ? ': ' + detail : ''}`);
    this.status = status;
  }
}

/** The server answered a flexible two-way method with a framework error (UNKNOWN_METHOD). */
export class FidlFrameworkError extends FidlError {
  readonly status: number;
  constructor(status: number, method: string) {
    super(`FIDL framework error ${status}${status === FRAMEWORK_ERR_UNKNOWN_METHOD ? ' (UNKNOWN_METHOD)' : ''} from ${method}`);
    this.status = status;
  }
}

/** The peer broke the protocol: a reply for no pending call, a wrong ordinal, an unknown strict event... */
export class FidlProtocolError extends FidlError {
  readonly code: string;
  constructor(code: string, detail: string) {
    super(`FIDL protocol error (${code}): ${detail}`);
    this.code = code;
  }
}

/** The transport refused to send (message too big, too many handles...). */
export class FidlTransportError extends FidlError {
  readonly status: number;
  constructor(status: number, detail: string) {
    super(`FIDL transport error (status ${status}): ${detail}`);
    this.status = status;
  }
}
