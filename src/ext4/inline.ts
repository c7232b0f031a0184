// Inline data (-O inline_data): small files and directories keep their bytes in the inode.
// The first 60 bytes live in i_block; the rest in the value of the "system.data" extended
// attribute, which must sit in the inode's own xattr area (after i_extra_isize).
import { Ext4Error, checkCorrupt } from './errors';
import { I_BLOCK_SIZE, Inode } from './inode';

const XATTR_MAGIC = 0xea020000;
/** e_name_index of the "system." namespace, where "data" holds the inline overflow. */
const XATTR_INDEX_SYSTEM = 7;
const XATTR_ENTRY_HEADER = 16;

/** Value of system.data in the inode, or an empty buffer when absent. */
export function inlineXattrValue(inode: Inode): Buffer {
  const area = inode.xattrArea;
  if (area.length < 4 || area.readUInt32LE(0) !== XATTR_MAGIC) return Buffer.alloc(0);
  const entries = area.subarray(4); // value offsets are relative to the first entry
  let off = 0;
  // Each entry advances `off` by at least 16 bytes, so this ends within the inode.
  while (off + 4 <= entries.length && entries.readUInt32LE(off) !== 0) {
    checkCorrupt(off + XATTR_ENTRY_HEADER <= entries.length, () => `inode ${inode.ino}: xattr entry runs past the inode`);
    const nameLen = entries.readUInt8(off);
    const nameIndex = entries.readUInt8(off + 1);
    const valueOffs = entries.readUInt16LE(off + 2);
    const valueInum = entries.readUInt32LE(off + 4);
    const valueSize = entries.readUInt32LE(off + 8);
    const entrySize = (XATTR_ENTRY_HEADER + nameLen + 3) & ~3;
    checkCorrupt(off + entrySize <= entries.length, () => `inode ${inode.ino}: xattr name runs past the inode`);
    const name = entries.toString('latin1', off + XATTR_ENTRY_HEADER, off + XATTR_ENTRY_HEADER + nameLen);
    if (nameIndex === XATTR_INDEX_SYSTEM && name === 'data') {
      if (valueInum !== 0) {
        throw new Ext4Error('EUNSUPPORTED', `inode ${inode.ino}: inline data stored in an xattr inode (${valueInum})`);
      }
      checkCorrupt(
        valueOffs + valueSize <= entries.length,
        () => `inode ${inode.ino}: system.data value (${valueSize} bytes at ${valueOffs}) runs past the inode`,
      );
      return Buffer.from(entries.subarray(valueOffs, valueOffs + valueSize));
    }
    off += entrySize;
  }
  return Buffer.alloc(0);
}

/** The whole inline content of a file or symlink: i_size bytes from i_block then system.data. */
export function readInlineData(inode: Inode): Buffer {
  const size = Number(inode.size);
  const extra = inlineXattrValue(inode);
  checkCorrupt(
    inode.size <= BigInt(I_BLOCK_SIZE + extra.length),
    () => `inode ${inode.ino}: inline file of ${inode.size} bytes, but only ${I_BLOCK_SIZE + extra.length} bytes are stored inline`,
  );
  const out = Buffer.alloc(size);
  inode.iBlock.copy(out, 0, 0, Math.min(size, I_BLOCK_SIZE));
  if (size > I_BLOCK_SIZE) extra.copy(out, I_BLOCK_SIZE, 0, size - I_BLOCK_SIZE);
  return out;
}
