// memfd: the Linux stand-in for a VMO. Always close-on-exec; sealable when asked.
import { native } from '../native';
import { Handle } from './handle';

/** File seals (fcntl F_ADD_SEALS), from <linux/fcntl.h>. */
export const F_SEAL_SEAL = 0x0001; // no more seals may be added
export const F_SEAL_SHRINK = 0x0002;
export const F_SEAL_GROW = 0x0004;
export const F_SEAL_WRITE = 0x0008; // no writes, no new writable shared mappings
export const F_SEAL_FUTURE_WRITE = 0x0010; // like WRITE, but existing writable mappings stay

export interface MemfdOptions {
  /** Create with MFD_ALLOW_SEALING so that seals can be added later (default true). */
  allowSealing?: boolean;
}

/**
 * A new memfd of `size` bytes (zero-filled, default 0) named `name` (shows as "/memfd:NAME" in
 * /proc; at most 249 bytes). Throws the errno error of memfd_create/ftruncate.
 */
export function createMemfd(name: string, size: number | bigint = 0, opts: MemfdOptions = {}): Handle {
  return new Handle(native.memfdCreate(name, size, opts.allowSealing ?? true) as number);
}

/** Adds seals (F_SEAL_*): EPERM once F_SEAL_SEAL is set or on a memfd made without sealing. */
export function addSeals(h: Handle, seals: number): void {
  native.addSeals(h.fd, seals);
}

/** The seals in place (F_SEAL_* bits); F_SEAL_SEAL alone on a memfd made without sealing. */
export function getSeals(h: Handle): number {
  return native.getSeals(h.fd) as number;
}
