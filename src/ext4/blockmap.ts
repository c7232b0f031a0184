// Block maps of ext2/ext3 inodes (no EXTENTS flag): 12 direct pointers, then one single,
// one double and one triple indirect block. Zero pointers are holes. The mapping is turned
// into merged extents so callers see one representation for both kinds of file.
import { checkCorrupt } from './errors';
import { BlockSource, FileExtent } from './extents';

const DIRECT_BLOCKS = 12;

/** Extents of a block-mapped file covering logical blocks [0, fileBlocks). */
export function readBlockMap(src: BlockSource, ino: number, iBlock: Buffer, fileBlocks: number): FileExtent[] {
  const perBlock = src.blockSize / 4;
  const out: FileExtent[] = [];
  const what = `inode ${ino} block map`;

  const add = (logical: number, physical: bigint): void => {
    checkCorrupt(
      physical < src.blocksCount,
      () => `${what}: logical block ${logical} maps to block ${physical}, beyond the file system (${src.blocksCount} blocks)`,
    );
    const last = out[out.length - 1];
    if (last && last.logicalEnd === logical && last.physicalBlock + BigInt(last.logicalEnd - last.logicalStart) === physical) {
      last.logicalEnd++;
    } else {
      out.push({ logicalStart: logical, logicalEnd: logical + 1, physicalBlock: physical });
    }
  };

  // `level` 0 = `pointer` is a data block; level n = an indirect block n steps above data.
  // Recursion depth is at most 3 and each subtree is skipped once it starts past the file.
  const visit = (pointer: bigint, level: number, logicalBase: number): void => {
    if (pointer === 0n || logicalBase >= fileBlocks) return;
    if (level === 0) {
      add(logicalBase, pointer);
      return;
    }
    checkCorrupt(
      pointer < src.blocksCount,
      () => `${what}: indirect block ${pointer} (level ${level}) beyond the file system (${src.blocksCount} blocks)`,
    );
    const block = src.readBlock(pointer, `${what} indirect block ${pointer}`);
    const span = perBlock ** (level - 1);
    for (let i = 0; i < perBlock; i++) {
      const base = logicalBase + i * span;
      if (base >= fileBlocks) break;
      visit(BigInt(block.readUInt32LE(i * 4)), level - 1, base);
    }
  };

  for (let i = 0; i < DIRECT_BLOCKS; i++) visit(BigInt(iBlock.readUInt32LE(i * 4)), 0, i);
  visit(BigInt(iBlock.readUInt32LE(48)), 1, DIRECT_BLOCKS);
  visit(BigInt(iBlock.readUInt32LE(52)), 2, DIRECT_BLOCKS + perBlock);
  visit(BigInt(iBlock.readUInt32LE(56)), 3, DIRECT_BLOCKS + perBlock + perBlock ** 2);
  return out;
}
