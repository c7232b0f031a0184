// Shared helpers of the FIDL tests: real handles (fds on /dev/null) and hex dumps.
import * as fs from 'fs';
import { Handle } from '../../src/transport/handle';

/** A real handle: a fresh fd on /dev/null. */
export function devNullHandle(): Handle {
  return new Handle(fs.openSync('/dev/null', 'r'));
}

/** Bytes from a hex string written in groups ("01 00 00 00 | 02 00 ..."): spaces and '|' are ignored. */
export function hex(s: string): Uint8Array {
  const clean = s.replace(/#[^\n]*/g, '').replace(/[\s|]/g, '');
  if (clean.length % 2 !== 0) throw new Error(`odd hex length in ${s}`);
  return Uint8Array.from(Buffer.from(clean, 'hex'));
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** Whether the fd of a handle is still open in this process. */
export function fdIsOpen(fd: number): boolean {
  try {
    fs.fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

/** A small deterministic PRNG (mulberry32), so property tests repeat exactly. */
export { prng } from '../support/random_values';
