// Positional reads of the image file or block device. All metadata access goes through
// here, so a short read (an image cut short) is reported once, in one place, as ECORRUPT.
import * as fs from 'fs';
import { Ext4Error } from './errors';

export class ImageReader {
  constructor(
    readonly fd: number,
    /** Size of the image in bytes when known (regular files); null for devices. */
    readonly sizeBytes: bigint | null,
  ) {}

  /** Reads exactly `length` bytes at byte `position`; `what` names the data for error messages. */
  read(position: bigint, length: number, what: string): Buffer {
    const buf = Buffer.alloc(length);
    this.readInto(buf, 0, position, length, what);
    return buf;
  }

  /** Reads exactly `length` bytes at `position` into `buf` at `offset`. */
  readInto(buf: Buffer, offset: number, position: bigint, length: number, what: string): void {
    if (position < 0n) throw new Ext4Error('ECORRUPT', `${what}: negative image offset ${position}`);
    if (this.sizeBytes !== null && position + BigInt(length) > this.sizeBytes) {
      throw new Ext4Error(
        'ECORRUPT',
        `${what}: bytes ${position}..${position + BigInt(length)} lie beyond the end of the image ` +
          `(${this.sizeBytes} bytes): truncated image`,
      );
    }
    let done = 0;
    // Each pass either makes progress or stops at end of file, so this loop is bounded.
    while (done < length) {
      let n: number;
      try {
        n = fs.readSync(this.fd, buf, offset + done, length - done, position + BigInt(done));
      } catch (err) {
        throw new Ext4Error('EIO', `${what}: read of the image failed: ${(err as Error).message}`, { cause: err });
      }
      if (n === 0) {
        throw new Ext4Error('ECORRUPT', `${what}: image ended after ${position + BigInt(done)} bytes: truncated image`);
      }
      done += n;
    }
  }
}
