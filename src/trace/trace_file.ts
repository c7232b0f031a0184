// A Perfetto trace file being written: a protobuf `Trace` whose packets are appended one batch at
// a time. A Trace is `repeated TracePacket packet = 1`, so each packet on disk is the tag 0x0a,
// its length as a varint, then the packet: a file that ends after any whole packet is a valid
// trace, and one cut mid-packet (the process died mid-write) is valid up to the last whole one.
//
// Tracing must never cost a client its request: a write that fails (full disk, I/O error) stops
// the trace with one logged warning; only a file that cannot be created is an error, at start-up.
import * as fs from 'fs';
import { create, toBinary } from '@bufbuild/protobuf';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { logger } from '../log';
import { TracePacketSchema } from '../gen/perfetto/perfetto_trace_pb';

export type PacketInit = MessageInitShape<typeof TracePacketSchema>;

/** Every packet of this writer is on one sequence (one writer, in order). */
export const SEQUENCE_ID = 1;

export class PerfettoTraceFile {
  private fd: number;
  private failed = false;
  private bytes = 0;

  private constructor(readonly path: string, fd: number) {
    this.fd = fd;
  }

  /** Creates (or truncates) path. Throws an Error with a one-line message when it cannot. */
  static create(path: string): PerfettoTraceFile {
    try {
      return new PerfettoTraceFile(path, fs.openSync(path, 'w', 0o644));
    } catch (e) {
      throw new Error(`cannot create the trace file ${path}: ${(e as Error).message}`);
    }
  }

  get writing(): boolean {
    return this.fd >= 0 && !this.failed;
  }

  get bytesWritten(): number {
    return this.bytes;
  }

  /** Encodes and appends packets (each on SEQUENCE_ID) with one write. Never throws. */
  write(packets: PacketInit[]): void {
    if (!this.writing || packets.length === 0) return;
    const parts: Uint8Array[] = [];
    for (const init of packets) {
      const body = toBinary(TracePacketSchema, create(TracePacketSchema, { optionalTrustedPacketSequenceId: { case: 'trustedPacketSequenceId', value: SEQUENCE_ID }, ...init }));
      parts.push(Uint8Array.of(0x0a), varint(body.length), body);
    }
    const batch = Buffer.concat(parts);
    try {
      let off = 0;
      while (off < batch.length) off += fs.writeSync(this.fd, batch, off, batch.length - off);
      this.bytes += batch.length;
    } catch (e) {
      this.failed = true;
      logger.warn(`trace ${this.path}: writing failed (${(e as Error).message}); tracing stopped, the trace is valid up to its last whole packet`);
    }
  }

  close(): void {
    if (this.fd < 0) return;
    try {
      fs.closeSync(this.fd);
    } catch (e) {
      logger.warn(`trace ${this.path}: closing failed: ${(e as Error).message}`);
    }
    this.fd = -1;
  }
}

function varint(n: number): Uint8Array {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Uint8Array.from(out);
}
