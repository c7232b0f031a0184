// The FIDL traffic recorder behind `serve --record FILE`: every message on every connection, both
// directions, appended to FILE as one MessagePack record (format.ts), like fidlcat's capture.
//
// Each record is written with one write() as it happens (nothing is buffered in this process), so
// a server that dies leaves every record but possibly the last, which the reader reports as
// truncated. Recording must never cost a client its request: a failed write (full disk, I/O error)
// or the size bound stops the recording with one logged warning, and the server carries on.
import * as fs from 'fs';
import { Packr } from 'msgpackr';
import { logger } from '../log';
import type { ChannelTap } from '../transport/channel';
import { Handle } from '../transport/handle';
import { ZX_RIGHT_READ, ZX_RIGHT_WRITE, handleInfo } from '../transport/handle_info';
import { FidlRecord, MessageRecord, RECORD_FORMAT, RECORD_VERSION, RecordedHandle, recordPackOptions } from './format';

/** Default bound on a record file: 256 MiB (about a million small messages). */
export const DEFAULT_RECORD_MAX_BYTES = 256 * 1024 * 1024;

export interface RecorderOptions {
  /** Stop recording (with a warning and a final 'limit' record) before the file passes this size. */
  maxBytes?: number;
}

/** Who is at the other end of a connection, as SO_PEERCRED told the server. */
export interface RecordedPeer {
  pid: number;
  uid: number;
}

/** Room kept for the final 'limit' record when the size bound is reached. */
const LIMIT_RECORD_ROOM = 64;

export class FidlRecorder {
  private readonly packr = new Packr(recordPackOptions);
  private fd: number;
  private written = 0;
  private nextConnection = 1;
  private stopped = false;
  readonly maxBytes: number;

  private constructor(readonly path: string, fd: number, maxBytes: number) {
    this.fd = fd;
    this.maxBytes = maxBytes;
  }

  /**
   * Creates (or truncates) path and writes the header record. Throws an Error with a one-line
   * message when the file cannot be created or written: the caller refuses to start.
   */
  static open(path: string, opts: RecorderOptions = {}): FidlRecorder {
    const maxBytes = opts.maxBytes ?? DEFAULT_RECORD_MAX_BYTES;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1024) throw new Error(`record size bound must be at least 1024 bytes, not ${maxBytes}`);
    let fd: number;
    try {
      fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_APPEND, 0o600);
    } catch (e) {
      throw new Error(`cannot create the record file ${path}: ${(e as Error).message}`);
    }
    const recorder = new FidlRecorder(path, fd, maxBytes);
    const header: FidlRecord = { type: 'header', format: RECORD_FORMAT, version: RECORD_VERSION, pid: process.pid, startedAt: new Date().toISOString() };
    try {
      recorder.writeRecord(header);
    } catch (e) {
      fs.closeSync(fd);
      throw new Error(`cannot write the record file ${path}: ${(e as Error).message}`);
    }
    return recorder;
  }

  /** Bytes written so far. */
  get bytesWritten(): number {
    return this.written;
  }

  /** False once recording stopped (size bound, write failure, or close()). */
  get recording(): boolean {
    return !this.stopped;
  }

  /** A tap for a new connection speaking `protocol` with `peer`; channels made through it share the peer. */
  tap(protocol: string, peer: RecordedPeer): ChannelTap {
    const conn = this.nextConnection++;
    return {
      message: (dir, bytes, fds) => this.onMessage(conn, protocol, peer, dir, bytes, fds),
      derive: (childProtocol) => this.tap(childProtocol, peer),
    };
  }

  /** Stops recording and closes the file. Idempotent. */
  close(): void {
    this.stopped = true;
    if (this.fd >= 0) {
      try {
        fs.closeSync(this.fd);
      } catch (e) {
        logger.warn(`FIDL record ${this.path}: closing it failed: ${(e as Error).message}`);
      }
      this.fd = -1;
    }
  }

  private onMessage(conn: number, protocol: string, peer: RecordedPeer, dir: 'in' | 'out', bytes: Uint8Array, fds: readonly number[]): void {
    if (this.stopped) return;
    try {
      const record: MessageRecord = {
        type: 'message',
        t: performance.timeOrigin + performance.now(),
        conn,
        protocol,
        pid: peer.pid,
        uid: peer.uid,
        dir,
        bytes,
        handles: fds.map(describeFd),
      };
      this.append(record);
    } catch (e) {
      // Never let the recorder throw into the channel: the message itself goes on as usual.
      this.stop(`recording stopped: ${(e as Error).message}`);
    }
  }

  private append(record: FidlRecord): void {
    const packed = this.packr.pack(record);
    if (this.written + packed.length > this.maxBytes - LIMIT_RECORD_ROOM) {
      try {
        this.writeRecord({ type: 'limit', t: performance.timeOrigin + performance.now(), maxBytes: this.maxBytes });
      } catch {
        // The warning below says recording stopped; the reader sees the file end.
      }
      this.stop(`recording stopped at its bound of ${this.maxBytes} bytes (--record-max-bytes)`);
      return;
    }
    this.writeBytes(packed);
  }

  private writeRecord(record: FidlRecord): void {
    this.writeBytes(this.packr.pack(record));
  }

  private writeBytes(bytes: Uint8Array): void {
    let off = 0;
    // A short write (a full disk) leaves a partial record, which the reader reports as truncated;
    // the error of the next write stops the recording.
    while (off < bytes.length) off += fs.writeSync(this.fd, bytes, off, bytes.length - off);
    this.written += bytes.length;
  }

  private stop(why: string): void {
    if (this.stopped) return;
    logger.warn(`FIDL record ${this.path}: ${why}; the server carries on without recording`);
    this.close();
  }
}

/** An fd's kind and the zx rights its open mode grants, as the transport sees them. */
function describeFd(fd: number): RecordedHandle {
  try {
    const info = handleInfo(new Handle(fd)); // a view of the fd for inspection; it is not closed here
    return { kind: info.kind, rights: (info.readable ? ZX_RIGHT_READ : 0) | (info.writable ? ZX_RIGHT_WRITE : 0) };
  } catch (e) {
    return { kind: `unknown (${(e as Error).message})`, rights: 0 };
  }
}
