// Extent trees (inodes with EXT4_EXTENTS_FL). The root node lives in i_block; index nodes
// and leaves are whole blocks. Every node is validated before use, the depth is bounded,
// each block may be visited once (so a corrupt tree cannot loop), and leaf extents must
// ascend without overlap. Unwritten extents read as zeros, so they are left out: the
// caller treats them as holes.
import { Ext4Error, checkCorrupt } from './errors';

/** A run of file blocks stored contiguously: logical blocks [logicalStart, logicalEnd) at physicalBlock.. */
export interface FileExtent {
  logicalStart: number;
  /** Exclusive. */
  logicalEnd: number;
  physicalBlock: bigint;
}

/** What tree walkers need from the image. */
export interface BlockSource {
  blockSize: number;
  blocksCount: bigint;
  readBlock(block: bigint, what: string): Buffer;
}

export const EXTENT_MAGIC = 0xf30a;
/** The kernel refuses deeper trees (EXT4_MAX_EXTENT_DEPTH). */
export const MAX_EXTENT_DEPTH = 5;
const HEADER_SIZE = 12;
const ENTRY_SIZE = 12;
/** ee_len above this marks an unwritten extent of (ee_len - 32768) blocks. */
const INIT_MAX_LEN = 32768;

export interface ExtentTree {
  /** Depth of the tree: 0 when the root in i_block holds the extents themselves. */
  depth: number;
  /** Initialized extents, sorted, unmerged, not clipped. */
  extents: FileExtent[];
}

interface Header {
  entries: number;
  depth: number;
}

function parseHeader(node: Buffer, where: string): Header {
  const magic = node.readUInt16LE(0);
  checkCorrupt(
    magic === EXTENT_MAGIC,
    () => `${where}: bad extent header magic 0x${magic.toString(16)} (expected 0xf30a)`,
  );
  const entries = node.readUInt16LE(2);
  const max = node.readUInt16LE(4);
  const depth = node.readUInt16LE(6);
  const capacity = Math.floor((node.length - HEADER_SIZE) / ENTRY_SIZE);
  checkCorrupt(max <= capacity, () => `${where}: extent header claims room for ${max} entries, node holds ${capacity}`);
  checkCorrupt(entries <= max, () => `${where}: extent header has ${entries} entries but room for ${max}`);
  checkCorrupt(depth <= MAX_EXTENT_DEPTH, () => `${where}: extent tree depth ${depth} exceeds the maximum of ${MAX_EXTENT_DEPTH}`);
  return { entries, depth };
}

/** Reads the extent tree whose root is `root` (the inode's i_block). */
export function readExtentTree(src: BlockSource, ino: number, root: Buffer): ExtentTree {
  const what = `inode ${ino} extent tree`;
  const rootHeader = parseHeader(root, `${what} root`);
  const extents: FileExtent[] = [];
  const visited = new Set<bigint>();
  let nextLogical = 0; // the next leaf extent must start at or after this block

  const walk = (node: Buffer, header: Header, where: string): void => {
    for (let i = 0; i < header.entries; i++) {
      const off = HEADER_SIZE + i * ENTRY_SIZE;
      const logical = node.readUInt32LE(off);
      if (header.depth === 0) {
        const rawLen = node.readUInt16LE(off + 4);
        const physical = (BigInt(node.readUInt16LE(off + 6)) << 32n) | BigInt(node.readUInt32LE(off + 8));
        const unwritten = rawLen > INIT_MAX_LEN;
        const len = unwritten ? rawLen - INIT_MAX_LEN : rawLen;
        checkCorrupt(len > 0, () => `${where}: extent ${i} has length 0`);
        checkCorrupt(
          logical >= nextLogical,
          () => `${where}: extent ${i} at logical block ${logical} overlaps or precedes the previous extent (ends at ${nextLogical})`,
        );
        checkCorrupt(logical + len <= 2 ** 32, () => `${where}: extent ${i} runs past logical block 2^32`);
        checkCorrupt(
          physical > 0n && physical + BigInt(len) <= src.blocksCount,
          () => `${where}: extent ${i} (blocks ${physical}..${physical + BigInt(len)}) lies beyond the file system (${src.blocksCount} blocks)`,
        );
        nextLogical = logical + len;
        if (!unwritten) extents.push({ logicalStart: logical, logicalEnd: logical + len, physicalBlock: physical });
      } else {
        const child = (BigInt(node.readUInt16LE(off + 8)) << 32n) | BigInt(node.readUInt32LE(off + 4));
        checkCorrupt(
          child > 0n && child < src.blocksCount,
          () => `${where}: index ${i} points to block ${child}, beyond the file system (${src.blocksCount} blocks)`,
        );
        checkCorrupt(!visited.has(child), () => `${where}: index ${i} points to block ${child} again: loop in the extent tree`);
        visited.add(child);
        const childWhere = `${what} node at block ${child}`;
        const block = src.readBlock(child, childWhere);
        const childHeader = parseHeader(block, childWhere);
        checkCorrupt(
          childHeader.depth === header.depth - 1,
          () => `${childWhere}: depth ${childHeader.depth}, expected ${header.depth - 1} below its parent (loop or corrupt index)`,
        );
        walk(block, childHeader, childWhere);
      }
    }
  };
  walk(root, rootHeader, `${what} root`);
  return { depth: rootHeader.depth, extents };
}

/** Joins extents that continue each other both logically and physically. Input sorted. */
export function mergeExtents(list: readonly FileExtent[]): FileExtent[] {
  const out: FileExtent[] = [];
  for (const e of list) {
    const last = out[out.length - 1];
    if (last && last.logicalEnd === e.logicalStart && last.physicalBlock + BigInt(last.logicalEnd - last.logicalStart) === e.physicalBlock) {
      last.logicalEnd = e.logicalEnd;
    } else {
      out.push({ ...e });
    }
  }
  return out;
}

/** Drops the parts of extents at or past `fileBlocks` (blocks beyond i_size are never file data). */
export function clipExtents(list: readonly FileExtent[], fileBlocks: number): FileExtent[] {
  const out: FileExtent[] = [];
  for (const e of list) {
    if (e.logicalStart >= fileBlocks) break;
    out.push({ ...e, logicalEnd: Math.min(e.logicalEnd, fileBlocks) });
  }
  return out;
}

/** Raises if the list is not sorted and disjoint (a guard for callers building extents by hand). */
export function assertSortedExtents(list: readonly FileExtent[], what: string): void {
  for (let i = 1; i < list.length; i++) {
    if (list[i].logicalStart < list[i - 1].logicalEnd) {
      throw new Ext4Error('ECORRUPT', `${what}: extents overlap at logical block ${list[i].logicalStart}`);
    }
  }
}
