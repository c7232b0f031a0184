// The FIDL traffic record file (`serve --record FILE`): a stream of MessagePack values, one per
// record, written one after another (no index, no length prefix: any MessagePack reader can read
// it, and a file cut short by a crash or a full disk loses only its last, incomplete record).
//
//   { type: 'header', format: RECORD_FORMAT, version: 1, pid, startedAt }   first, once
//   { type: 'message', t, conn, protocol, pid, uid, dir, bytes, handles }   one per FIDL message
//   { type: 'limit', t, maxBytes }                                          recording stopped at the size bound
//
// t: wall-clock milliseconds since the epoch (fractional). conn: the server's number for the
// connection (a Manager connection, the Pager channels created through it and Mapper
// connections each have their own). dir: 'in' (client to server) or 'out'. handles: for each fd
// in the message, in order, its kind as the transport saw it (memfd, socket-seqpacket, ...) and
// the zx rights its open mode grants (READ 1<<2, WRITE 1<<3).
import * as fs from 'fs';
import { Unpackr } from 'msgpackr';

export const RECORD_FORMAT = 'starnix-pager-fidl-record';
export const RECORD_VERSION = 1;

export interface RecordedHandle {
  kind: string;
  rights: number;
}

export interface HeaderRecord {
  type: 'header';
  format: string;
  version: number;
  pid: number;
  startedAt: string;
}

export interface MessageRecord {
  type: 'message';
  t: number;
  conn: number;
  protocol: string;
  pid: number;
  uid: number;
  dir: 'in' | 'out';
  bytes: Uint8Array;
  handles: RecordedHandle[];
}

export interface LimitRecord {
  type: 'limit';
  t: number;
  maxBytes: number;
}

export type FidlRecord = HeaderRecord | MessageRecord | LimitRecord;

/** What reading a record file found besides its records. */
export interface ReadProblem {
  /** Byte offset where the bad or incomplete record starts. */
  offset: number;
  message: string;
}

/** Plain maps, no msgpackr record extension: the file stays readable by any MessagePack reader. */
export const recordPackOptions = { useRecords: false, mapsAsObjects: true } as const;

/**
 * Reads a record file chunk by chunk (never the whole file at once) and calls onRecord for each
 * record. Returns the problem that ended the file early (a truncated last record, or bytes that
 * are not MessagePack), or null when the file ended cleanly.
 *
 * Where each record ends is found by msgpackValueEnd, not by the decoder: msgpackr decodes the
 * strings of a whole buffer ahead of time, so one cut-off record at the end made it fail on every
 * record before it.
 */
export function readRecords(path: string, onRecord: (r: FidlRecord, offset: number) => void, chunkBytes = 1 << 20): ReadProblem | null {
  const unpackr = new Unpackr(recordPackOptions);
  const fd = fs.openSync(path, 'r');
  try {
    let pending: Buffer = Buffer.alloc(0);
    let pendingAt = 0; // file offset of pending[0]
    const chunk = Buffer.alloc(chunkBytes);
    for (;;) {
      const n = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) {
        return pending.length === 0 ? null : { offset: pendingAt, message: `truncated record: the file ends ${pending.length} bytes into it` };
      }
      pending = pending.length === 0 ? Buffer.from(chunk.subarray(0, n)) : Buffer.concat([pending, chunk.subarray(0, n)]);
      let consumed = 0;
      for (;;) {
        let end: number;
        try {
          end = msgpackValueEnd(pending, consumed);
        } catch (e) {
          return { offset: pendingAt + consumed, message: `not a MessagePack record: ${(e as Error).message}` };
        }
        if (end < 0) break; // the rest of this record is in the next chunk
        let value: unknown;
        try {
          value = unpackr.unpack(pending.subarray(consumed, end));
        } catch (e) {
          return { offset: pendingAt + consumed, message: `not a MessagePack record: ${(e as Error).message}` };
        }
        onRecord(value as FidlRecord, pendingAt + consumed);
        consumed = end;
      }
      pending = pending.subarray(consumed);
      pendingAt += consumed;
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Where the MessagePack value that starts at `pos` ends, or -1 when buf ends before it does.
 * Throws for the one byte MessagePack never uses (0xc1). Walks nested maps and arrays without
 * recursion (a counter of values still to skip), so a hostile file cannot overflow the stack.
 */
export function msgpackValueEnd(buf: Uint8Array, pos: number): number {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let left = 1; // values still to skip
  let p = pos;
  const need = (n: number): boolean => p + n <= buf.length;
  while (left > 0) {
    if (!need(1)) return -1;
    const b = buf[p];
    left--;
    let head = 1; // bytes of type and length
    let body = 0; // bytes of payload after them
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) {
      // fixint, nil, bool
    } else if (b <= 0x8f) {
      left += 2 * (b & 0x0f);
    } else if (b <= 0x9f) {
      left += b & 0x0f;
    } else if (b <= 0xbf) {
      body = b & 0x1f;
    } else {
      const sized = (width: number, extra = 0): boolean => {
        if (!need(1 + width)) return false;
        const len = width === 1 ? buf[p + 1] : width === 2 ? dv.getUint16(p + 1) : dv.getUint32(p + 1);
        head = 1 + width + extra;
        body = len;
        return true;
      };
      const counted = (width: number, perItem: number): boolean => {
        if (!need(1 + width)) return false;
        left += (width === 2 ? dv.getUint16(p + 1) : dv.getUint32(p + 1)) * perItem;
        head = 1 + width;
        return true;
      };
      let ok = true;
      switch (b) {
        case 0xc4: case 0xd9: ok = sized(1); break; // bin8, str8
        case 0xc5: case 0xda: ok = sized(2); break; // bin16, str16
        case 0xc6: case 0xdb: ok = sized(4); break; // bin32, str32
        case 0xc7: ok = sized(1, 1); break; // ext8 (length, type)
        case 0xc8: ok = sized(2, 1); break;
        case 0xc9: ok = sized(4, 1); break;
        case 0xca: body = 4; break; // float32
        case 0xcb: body = 8; break; // float64
        case 0xcc: case 0xd0: body = 1; break;
        case 0xcd: case 0xd1: body = 2; break;
        case 0xce: case 0xd2: body = 4; break;
        case 0xcf: case 0xd3: body = 8; break;
        case 0xd4: body = 2; break; // fixext 1, 2, 4, 8, 16 (type byte + data)
        case 0xd5: body = 3; break;
        case 0xd6: body = 5; break;
        case 0xd7: body = 9; break;
        case 0xd8: body = 17; break;
        case 0xdc: ok = counted(2, 1); break; // array16
        case 0xdd: ok = counted(4, 1); break; // array32
        case 0xde: ok = counted(2, 2); break; // map16
        case 0xdf: ok = counted(4, 2); break; // map32
        default: throw new Error(`byte 0x${b.toString(16)} at ${p} starts no MessagePack value`);
      }
      if (!ok) return -1;
    }
    if (!need(head + body)) return -1;
    p += head + body;
  }
  return p;
}
