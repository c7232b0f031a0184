// The ext4 superblock: geometry of the file system and its feature flags. Layout per the
// kernel's Documentation/filesystems/ext4/super.rst; the superblock always sits at byte 1024.
import { Ext4Error, checkCorrupt } from './errors';

export const SUPERBLOCK_OFFSET = 1024n;
export const SUPERBLOCK_SIZE = 1024;
export const EXT4_MAGIC = 0xef53;

// Feature bits. Names follow e2fsprogs (`dumpe2fs`, `mkfs -O`) so messages match what users type.
export const COMPAT = {
  dir_prealloc: 0x1, imagic_inodes: 0x2, has_journal: 0x4, ext_attr: 0x8, resize_inode: 0x10,
  dir_index: 0x20, lazy_bg: 0x40, snapshot_bitmap: 0x100, sparse_super2: 0x200,
  fast_commit: 0x400, stable_inodes: 0x800, orphan_file: 0x1000,
} as const;

export const INCOMPAT = {
  compression: 0x1, filetype: 0x2, needs_recovery: 0x4, journal_dev: 0x8, meta_bg: 0x10,
  extent: 0x40, '64bit': 0x80, mmp: 0x100, flex_bg: 0x200, ea_inode: 0x400, dirdata: 0x1000,
  metadata_csum_seed: 0x2000, large_dir: 0x4000, inline_data: 0x8000, encrypt: 0x10000,
  casefold: 0x20000,
} as const;

export const RO_COMPAT = {
  sparse_super: 0x1, large_file: 0x2, btree_dir: 0x4, huge_file: 0x8, uninit_bg: 0x10,
  dir_nlink: 0x20, extra_isize: 0x40, has_snapshot: 0x80, quota: 0x100, bigalloc: 0x200,
  metadata_csum: 0x400, replica: 0x800, read_only: 0x1000, project: 0x2000,
  shared_blocks: 0x4000, verity: 0x8000, orphan_present: 0x10000,
} as const;

/**
 * Incompatible features this reader handles. Anything else in s_feature_incompat changes
 * the on-disk format in ways we would misread, so open() refuses it.
 * - needs_recovery: the journal holds unreplayed transactions; we read the main area anyway (warned).
 * - encrypt: allowed on the file system; encrypted inodes are refused one by one.
 * - casefold: exact-name lookups work; a miss in a case-folded directory is refused, not guessed.
 * - mmp, metadata_csum_seed, ea_inode: do not change how file data and directories are read.
 */
const SUPPORTED_INCOMPAT =
  INCOMPAT.filetype | INCOMPAT.needs_recovery | INCOMPAT.meta_bg | INCOMPAT.extent | INCOMPAT['64bit'] |
  INCOMPAT.mmp | INCOMPAT.flex_bg | INCOMPAT.ea_inode | INCOMPAT.metadata_csum_seed | INCOMPAT.large_dir |
  INCOMPAT.inline_data | INCOMPAT.encrypt | INCOMPAT.casefold;

/** Names of the bits set in `flags`, unknown bits as `unknown(0x...)`. */
export function featureNames(flags: number, table: Record<string, number>): string[] {
  const names: string[] = [];
  for (let bit = 0; bit < 32; bit++) {
    const mask = (1 << bit) >>> 0;
    if (((flags >>> 0) & mask) === 0) continue;
    const name = Object.keys(table).find((k) => table[k] === mask);
    names.push(name ?? `unknown(0x${mask.toString(16)})`);
  }
  return names;
}

export interface Superblock {
  inodesCount: number;
  blocksCount: bigint;
  firstDataBlock: number;
  blockSize: number;
  blocksPerGroup: number;
  inodesPerGroup: number;
  groupCount: number;
  magic: number;
  state: number;
  revLevel: number;
  firstIno: number;
  inodeSize: number;
  featureCompat: number;
  featureIncompat: number;
  featureRoCompat: number;
  /** Size of one group descriptor: 32, or s_desc_size with the 64bit feature. */
  descSize: number;
  firstMetaBg: number;
  /** Groups holding superblock backups under sparse_super2. */
  backupGroups: [number, number];
  volumeName: string;
  uuid: string;
}

export function hasIncompat(sb: Superblock, bit: number): boolean {
  return (sb.featureIncompat & bit) !== 0;
}
export function hasCompat(sb: Superblock, bit: number): boolean {
  return (sb.featureCompat & bit) !== 0;
}
export function hasRoCompat(sb: Superblock, bit: number): boolean {
  return (sb.featureRoCompat & bit) !== 0;
}

/** Parses and validates the 1024-byte superblock. Throws ECORRUPT or EUNSUPPORTED. */
export function parseSuperblock(buf: Buffer): Superblock {
  checkCorrupt(buf.length >= SUPERBLOCK_SIZE, 'superblock: short buffer');
  const magic = buf.readUInt16LE(0x38);
  checkCorrupt(
    magic === EXT4_MAGIC,
    () => `superblock: bad magic 0x${magic.toString(16)} (expected 0xef53): not an ext2/3/4 image`,
  );
  const logBlockSize = buf.readUInt32LE(0x18);
  // 1 KiB to 64 KiB are the block sizes ext4 defines.
  checkCorrupt(logBlockSize <= 6, () => `superblock: s_log_block_size ${logBlockSize} out of range (0..6)`);
  const blockSize = 1024 << logBlockSize;

  const featureCompat = buf.readUInt32LE(0x5c);
  const featureIncompat = buf.readUInt32LE(0x60);
  const featureRoCompat = buf.readUInt32LE(0x64);
  const unsupported = (featureIncompat & ~SUPPORTED_INCOMPAT) >>> 0;
  if (unsupported !== 0) {
    throw new Ext4Error(
      'EUNSUPPORTED',
      `superblock: unsupported incompatible feature(s): ${featureNames(unsupported, INCOMPAT).join(', ')}`,
    );
  }

  const revLevel = buf.readUInt32LE(0x4c);
  // Revision 0 ("good old") file systems have fixed inode size and first inode.
  const inodeSize = revLevel === 0 ? 128 : buf.readUInt16LE(0x58);
  const firstIno = revLevel === 0 ? 11 : buf.readUInt32LE(0x54);
  checkCorrupt(
    inodeSize >= 128 && inodeSize <= blockSize && (inodeSize & (inodeSize - 1)) === 0,
    () => `superblock: inode size ${inodeSize} is not a power of two in 128..${blockSize}`,
  );

  const is64 = (featureIncompat & INCOMPAT['64bit']) !== 0;
  const blocksCount =
    BigInt(buf.readUInt32LE(0x04)) | (is64 ? BigInt(buf.readUInt32LE(0x150)) << 32n : 0n);
  const firstDataBlock = buf.readUInt32LE(0x14);
  const blocksPerGroup = buf.readUInt32LE(0x20);
  const inodesPerGroup = buf.readUInt32LE(0x28);
  const inodesCount = buf.readUInt32LE(0x00);
  checkCorrupt(blocksCount > 0n, 'superblock: block count is zero');
  checkCorrupt(
    BigInt(firstDataBlock) < blocksCount,
    () => `superblock: first data block ${firstDataBlock} beyond block count ${blocksCount}`,
  );
  // Bitmaps are one block each, so a group holds at most 8 * blockSize blocks or inodes.
  checkCorrupt(
    blocksPerGroup > 0 && blocksPerGroup <= 8 * blockSize,
    () => `superblock: blocks per group ${blocksPerGroup} out of range 1..${8 * blockSize}`,
  );
  checkCorrupt(
    inodesPerGroup > 0 && inodesPerGroup <= 8 * blockSize,
    () => `superblock: inodes per group ${inodesPerGroup} out of range 1..${8 * blockSize}`,
  );
  const groupCount = Number((blocksCount - BigInt(firstDataBlock) + BigInt(blocksPerGroup) - 1n) / BigInt(blocksPerGroup));
  checkCorrupt(
    inodesCount > 0 && inodesCount <= groupCount * inodesPerGroup,
    () => `superblock: inode count ${inodesCount} exceeds ${groupCount} groups x ${inodesPerGroup} inodes`,
  );
  checkCorrupt(firstIno >= 3 && firstIno <= inodesCount, () => `superblock: first inode ${firstIno} out of range`);

  let descSize = 32;
  if (is64) {
    descSize = buf.readUInt16LE(0xfe);
    checkCorrupt(
      descSize >= 32 && descSize <= blockSize && (descSize & (descSize - 1)) === 0,
      () => `superblock: group descriptor size ${descSize} invalid for a 64bit file system`,
    );
  }

  const uuidHex = buf.subarray(0x68, 0x78).toString('hex');
  const uuid = `${uuidHex.slice(0, 8)}-${uuidHex.slice(8, 12)}-${uuidHex.slice(12, 16)}-${uuidHex.slice(16, 20)}-${uuidHex.slice(20)}`;
  const nameBytes = buf.subarray(0x78, 0x88);
  const nul = nameBytes.indexOf(0);
  return {
    inodesCount,
    blocksCount,
    firstDataBlock,
    blockSize,
    blocksPerGroup,
    inodesPerGroup,
    groupCount,
    magic,
    state: buf.readUInt16LE(0x3a),
    revLevel,
    firstIno,
    inodeSize,
    featureCompat,
    featureIncompat,
    featureRoCompat,
    descSize,
    firstMetaBg: buf.readUInt32LE(0x104),
    backupGroups: [buf.readUInt32LE(0x24c), buf.readUInt32LE(0x250)],
    volumeName: nameBytes.subarray(0, nul < 0 ? nameBytes.length : nul).toString('utf8'),
    uuid,
  };
}
