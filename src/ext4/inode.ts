// On-disk inodes: the fixed 128-byte part plus the "extra" fields that follow when
// s_inode_size > 128 (high timestamp bits, in-inode extended attributes).
import { Ext4Error, checkCorrupt } from './errors';

export type FileType = 'file' | 'dir' | 'symlink' | 'chardev' | 'blockdev' | 'fifo' | 'socket';

export const S_IFMT = 0xf000;
const MODE_TYPES: Record<number, FileType> = {
  0x8000: 'file', 0x4000: 'dir', 0xa000: 'symlink', 0x2000: 'chardev',
  0x6000: 'blockdev', 0x1000: 'fifo', 0xc000: 'socket',
};

/** Directory entry file_type values (with the filetype feature). 0 means unknown. */
export const DIRENT_TYPES: Record<number, FileType> = {
  1: 'file', 2: 'dir', 3: 'chardev', 4: 'blockdev', 5: 'fifo', 6: 'socket', 7: 'symlink',
};

export const INODE_FLAGS = {
  encrypt: 0x800,
  index: 0x1000,
  hugeFile: 0x40000,
  extents: 0x80000,
  eaInode: 0x200000,
  inlineData: 0x10000000,
  casefold: 0x40000000,
} as const;

/** Length of i_block: 15 32-bit words, holding block pointers, the extent root or inline data. */
export const I_BLOCK_SIZE = 60;
const I_BLOCK_OFFSET = 40;
const GOOD_OLD_INODE_SIZE = 128;

export interface Inode {
  ino: number;
  mode: number;
  type: FileType;
  uid: number;
  gid: number;
  size: bigint;
  links: number;
  flags: number;
  /** Seconds since the epoch, with the extra epoch bits when the inode has them. */
  mtime: number;
  mtimeNs: number;
  /** The 60 bytes of i_block, copied. */
  iBlock: Buffer;
  fileAcl: bigint;
  /** 512-byte sectors (or blocks with HUGE_FILE_FL) charged to the inode. */
  blocks: bigint;
  /** In-inode extended attribute area (after i_extra_isize), possibly empty. */
  xattrArea: Buffer;
}

export function fileTypeOfMode(mode: number, ino: number): FileType {
  const type = MODE_TYPES[mode & S_IFMT];
  if (!type) throw new Ext4Error('ECORRUPT', `inode ${ino}: mode 0o${mode.toString(8)} has no valid file type`);
  return type;
}

/** Parses one raw inode of `raw.length` (= s_inode_size) bytes. */
export function parseInode(ino: number, raw: Buffer): Inode {
  const mode = raw.readUInt16LE(0x00);
  const links = raw.readUInt16LE(0x1a);
  const dtime = raw.readUInt32LE(0x14);
  // mode 0 (never used) or a deletion time with no links: the inode is free.
  if (mode === 0 || (links === 0 && dtime !== 0)) {
    throw new Ext4Error('ECORRUPT', `inode ${ino} is not in use (free or deleted) but is referenced`);
  }
  const type = fileTypeOfMode(mode, ino);
  const flags = raw.readUInt32LE(0x20);

  let extra = 0;
  if (raw.length > GOOD_OLD_INODE_SIZE) {
    extra = raw.readUInt16LE(0x80);
    checkCorrupt(
      GOOD_OLD_INODE_SIZE + extra <= raw.length && extra % 4 === 0,
      () => `inode ${ino}: i_extra_isize ${extra} does not fit an inode of ${raw.length} bytes`,
    );
  }
  const mtimeLo = raw.readInt32LE(0x10);
  let mtime = mtimeLo;
  let mtimeNs = 0;
  // i_mtime_extra (at 0x88) exists when the extra area reaches it: 2 epoch bits + nanoseconds.
  if (extra >= 0x8c - GOOD_OLD_INODE_SIZE) {
    const mtimeExtra = raw.readUInt32LE(0x88);
    mtime = mtimeLo + (mtimeExtra & 3) * 2 ** 32;
    mtimeNs = mtimeExtra >>> 2;
  }
  const xattrStart = raw.length > GOOD_OLD_INODE_SIZE ? GOOD_OLD_INODE_SIZE + extra : raw.length;
  return {
    ino,
    mode,
    type,
    uid: raw.readUInt16LE(0x02) | (raw.readUInt16LE(0x78) << 16),
    gid: raw.readUInt16LE(0x18) | (raw.readUInt16LE(0x7a) << 16),
    size: BigInt(raw.readUInt32LE(0x04)) | (BigInt(raw.readUInt32LE(0x6c)) << 32n),
    links,
    flags,
    mtime,
    mtimeNs,
    iBlock: Buffer.from(raw.subarray(I_BLOCK_OFFSET, I_BLOCK_OFFSET + I_BLOCK_SIZE)),
    fileAcl: BigInt(raw.readUInt32LE(0x68)) | (BigInt(raw.readUInt16LE(0x76)) << 32n),
    blocks: BigInt(raw.readUInt32LE(0x1c)) | (BigInt(raw.readUInt16LE(0x74)) << 32n),
    xattrArea: Buffer.from(raw.subarray(xattrStart)),
  };
}
