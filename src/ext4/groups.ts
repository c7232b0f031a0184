// Block group descriptors: where each group's inode table lives. Descriptors are 32 bytes,
// or s_desc_size (64) with the 64bit feature; with meta_bg, the descriptor blocks past
// s_first_meta_bg sit at the start of each meta group instead of after the superblock.
import { checkCorrupt } from './errors';
import { ImageReader } from './reader';
import { COMPAT, RO_COMPAT, Superblock, hasCompat, hasIncompat, hasRoCompat, INCOMPAT } from './superblock';

export interface GroupDescriptor {
  group: number;
  inodeTable: bigint;
  flags: number;
}

/** Whether group `g` holds a superblock backup (and so a descriptor-table copy). */
export function groupHasSuperblock(sb: Superblock, g: number): boolean {
  if (g === 0) return true;
  if (hasCompat(sb, COMPAT.sparse_super2)) return g === sb.backupGroups[0] || g === sb.backupGroups[1];
  if (!hasRoCompat(sb, RO_COMPAT.sparse_super)) return true;
  if (g === 1) return true;
  for (const base of [3, 5, 7]) {
    let p = base;
    while (p < g) p *= base;
    if (p === g) return true;
  }
  return false;
}

/** Block number holding descriptor block `index` (descriptors for groups index*perBlock...). */
function descriptorBlock(sb: Superblock, index: number): bigint {
  const perBlock = sb.blockSize / sb.descSize;
  if (!hasIncompat(sb, INCOMPAT.meta_bg) || index < sb.firstMetaBg) {
    return BigInt(sb.firstDataBlock) + 1n + BigInt(index);
  }
  const group = index * perBlock;
  let offset = groupHasSuperblock(sb, group) ? 1 : 0;
  // 1 KiB blocks with first data block 0 (bigalloc): group 0's superblock occupies block 1.
  if (sb.blockSize === 1024 && index === 0 && sb.firstDataBlock === 0) offset++;
  return BigInt(sb.firstDataBlock) + BigInt(group) * BigInt(sb.blocksPerGroup) + BigInt(offset);
}

export class GroupTable {
  private readonly cache = new Map<number, GroupDescriptor>();

  constructor(
    private readonly sb: Superblock,
    private readonly reader: ImageReader,
  ) {}

  get(group: number): GroupDescriptor {
    const cached = this.cache.get(group);
    if (cached) return cached;
    const sb = this.sb;
    checkCorrupt(group >= 0 && group < sb.groupCount, () => `group ${group} out of range (0..${sb.groupCount - 1})`);
    const perBlock = sb.blockSize / sb.descSize;
    const block = descriptorBlock(sb, Math.floor(group / perBlock));
    checkCorrupt(block < sb.blocksCount, () => `group descriptor block ${block} beyond the file system`);
    const pos = block * BigInt(sb.blockSize) + BigInt((group % perBlock) * sb.descSize);
    const raw = this.reader.read(pos, sb.descSize, `group descriptor ${group}`);
    let inodeTable = BigInt(raw.readUInt32LE(0x08));
    if (sb.descSize >= 64) inodeTable |= BigInt(raw.readUInt32LE(0x28)) << 32n;
    // The whole inode table of the group must lie inside the file system.
    const tableBlocks = BigInt(Math.ceil((sb.inodesPerGroup * sb.inodeSize) / sb.blockSize));
    checkCorrupt(
      inodeTable > 0n && inodeTable + tableBlocks <= sb.blocksCount,
      () => `group descriptor ${group}: inode table at block ${inodeTable} lies outside the file system (${sb.blocksCount} blocks)`,
    );
    const desc: GroupDescriptor = { group, inodeTable, flags: raw.readUInt16LE(0x12) };
    this.cache.set(group, desc);
    return desc;
  }
}
