// Directory entries. Linear directories are a chain of records in each block; hashed
// (htree) directories keep the same records in their leaf blocks, and their index blocks
// parse as records with inode 0 (or as "." and ".." in block 0), so reading every block
// linearly yields exactly the entries. Inline directories hold the parent inode number in
// i_block[0] and records in the rest of i_block and in system.data.
import { checkCorrupt } from './errors';
import { DIRENT_TYPES, FileType } from './inode';

export interface RawDirEntry {
  name: string;
  ino: number;
  /** From the entry's file_type byte; undefined when unknown or without the filetype feature. */
  type?: FileType;
}

const DIRENT_HEADER = 8;

/**
 * Parses records in `region` (one directory block, or one inline area). `hasFileType`
 * says whether byte 7 is a file type (filetype feature) or the high byte of name_len.
 * `blockSize` is needed for the 64 KiB-block rec_len encoding.
 */
export function parseDirRecords(
  region: Buffer,
  hasFileType: boolean,
  blockSize: number,
  where: string,
  out: RawDirEntry[],
): void {
  let off = 0;
  // rec_len >= 8 is enforced, so each pass advances and the loop ends.
  while (off < region.length) {
    checkCorrupt(off + DIRENT_HEADER <= region.length, () => `${where}: directory record at offset ${off} is truncated`);
    const ino = region.readUInt32LE(off);
    let recLen = region.readUInt16LE(off + 4);
    if (blockSize >= 65536 && (recLen === 0xffff || recLen === 0)) recLen = 65536;
    const nameLen = hasFileType ? region.readUInt8(off + 6) : region.readUInt16LE(off + 6);
    const typeByte = hasFileType ? region.readUInt8(off + 7) : 0;
    checkCorrupt(
      recLen >= DIRENT_HEADER && recLen % 4 === 0 && off + recLen <= region.length,
      () => `${where}: directory record at offset ${off} has invalid rec_len ${recLen} (region of ${region.length} bytes)`,
    );
    if (ino !== 0) {
      checkCorrupt(
        nameLen > 0 && DIRENT_HEADER + nameLen <= recLen,
        () => `${where}: directory record at offset ${off} has name_len ${nameLen} that does not fit rec_len ${recLen}`,
      );
      const name = region.toString('utf8', off + DIRENT_HEADER, off + DIRENT_HEADER + nameLen);
      out.push({ name, ino, type: DIRENT_TYPES[typeByte] });
    }
    off += recLen;
  }
}
