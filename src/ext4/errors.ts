// Typed errors of the ext4 reader. Every failure the reader can detect surfaces as an
// Ext4Error with a `code` a caller can switch on and a message that names what is wrong,
// so that a corrupt image never turns into a crash, a hang, or wrong bytes.

export type Ext4ErrorCode =
  /** A path component does not exist. */
  | 'ENOENT'
  /** A path component that must be a directory is not one. */
  | 'ENOTDIR'
  /** Too many symbolic links were followed while resolving a path. */
  | 'ELOOP'
  /** The image's metadata is inconsistent (bad magic, broken extent tree, loop, ...). */
  | 'ECORRUPT'
  /** The image uses a feature this reader does not implement. */
  | 'EUNSUPPORTED'
  /** The caller passed something invalid (inode number out of range, wrong file type, ...). */
  | 'EINVAL'
  /** The operating system failed to open or read the image. */
  | 'EIO';

export class Ext4Error extends Error {
  override readonly name = 'Ext4Error';
  constructor(
    readonly code: Ext4ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${code}: ${message}`, options);
  }
}

/** Throws ECORRUPT with `message` unless `condition` holds. */
export function checkCorrupt(condition: boolean, message: string | (() => string)): asserts condition {
  if (!condition) throw new Ext4Error('ECORRUPT', typeof message === 'string' ? message : message());
}
