// Ext4Image: a read-only view of an ext2/3/4 image for clients that read the metadata
// themselves and ask the pager only for file contents (the Starnix runner's way). All
// reads are positional (pread), so one image object may be shared without seek races.
import { constants as bufferConstants } from 'buffer';
import * as fs from 'fs';
import { logger } from '../log';
import { readBlockMap } from './blockmap';
import { RawDirEntry, parseDirRecords } from './directory';
import { Ext4Error, checkCorrupt } from './errors';
import { BlockSource, FileExtent, clipExtents, mergeExtents, readExtentTree } from './extents';
import { GroupDescriptor, GroupTable } from './groups';
import { FileType, I_BLOCK_SIZE, INODE_FLAGS, Inode, parseInode } from './inode';
import { inlineXattrValue, readInlineData } from './inline';
import { ImageReader } from './reader';
import {
  INCOMPAT, RO_COMPAT, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, Superblock, featureNames, hasIncompat, parseSuperblock,
} from './superblock';

export const ROOT_INO = 2;
/** Symlinks followed while resolving one path, as Linux's MAXSYMLINKS. */
export const MAX_SYMLINK_FOLLOWS = 40;
/** Longest symlink target Linux accepts (PATH_MAX). */
const MAX_SYMLINK_LEN = 4096;

export interface Ext4Stat {
  ino: number;
  /** Full i_mode: file type bits and permissions. */
  mode: number;
  type: FileType;
  size: bigint;
  links: number;
  uid: number;
  gid: number;
  /** Modification time, seconds since the epoch. */
  mtime: number;
  mtimeNs: number;
  /** Data extents in blocks (sorted, merged, holes omitted) of files, directories and slow symlinks. */
  extents?: FileExtent[];
  /** The content of an inline-data inode: not pageable by extents, the caller serves it directly. */
  inlineData?: Buffer;
  symlinkTarget?: string;
}

export interface DirEntry {
  name: string;
  ino: number;
  type: FileType;
}

export interface WalkEntry extends DirEntry {
  /** Path from the root, without a leading slash. */
  path: string;
}

export interface LookupOptions {
  /** Follow a symlink in the last component too (stat rather than lstat). Default false. */
  followFinal?: boolean;
}

export class Ext4Image implements BlockSource {
  private closed = false;
  private readonly groups: GroupTable;

  private constructor(
    private readonly reader: ImageReader,
    private readonly ownsFd: boolean,
    readonly superblock: Superblock,
  ) {
    this.groups = new GroupTable(superblock, reader);
  }

  /**
   * Opens an image file or block device by path, or wraps an open fd (which close() then
   * leaves open). Validates the superblock; refuses unknown incompatible features.
   */
  static open(pathOrFd: string | number): Ext4Image {
    let fd: number;
    const ownsFd = typeof pathOrFd === 'string';
    if (typeof pathOrFd === 'string') {
      try {
        fd = fs.openSync(pathOrFd, 'r');
      } catch (err) {
        throw new Ext4Error('EIO', `cannot open image ${pathOrFd}: ${(err as Error).message}`, { cause: err });
      }
    } else {
      fd = pathOrFd;
    }
    try {
      let size: bigint | null = null;
      try {
        const st = fs.fstatSync(fd, { bigint: true });
        if (st.isFile()) size = st.size;
      } catch (err) {
        throw new Ext4Error('EIO', `cannot stat image: ${(err as Error).message}`, { cause: err });
      }
      const reader = new ImageReader(fd, size);
      const sb = parseSuperblock(reader.read(SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, 'superblock'));
      const needed = sb.blocksCount * BigInt(sb.blockSize);
      if (size !== null && size < needed) {
        throw new Ext4Error(
          'ECORRUPT',
          `image is ${size} bytes but its file system spans ${sb.blocksCount} blocks of ${sb.blockSize} (${needed} bytes): truncated image`,
        );
      }
      if (hasIncompat(sb, INCOMPAT.needs_recovery)) {
        logger.warn('ext4: the journal needs recovery; reading the image without replaying it', {
          image: typeof pathOrFd === 'string' ? pathOrFd : `fd ${pathOrFd}`,
        });
      }
      const knownRo = Object.values(RO_COMPAT).reduce((a, b) => a | b, 0);
      const unknownRo = (sb.featureRoCompat & ~knownRo) >>> 0;
      if (unknownRo !== 0) {
        // Read-only compatible by definition: safe to read, worth a note.
        logger.warn('ext4: unknown read-only-compatible features', { features: featureNames(unknownRo, RO_COMPAT).join(',') });
      }
      return new Ext4Image(reader, ownsFd, sb);
    } catch (err) {
      if (ownsFd) fs.closeSync(fd);
      throw err;
    }
  }

  get blockSize(): number {
    return this.superblock.blockSize;
  }

  get blocksCount(): bigint {
    return this.superblock.blocksCount;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsFd) fs.closeSync(this.reader.fd);
  }

  /** close(), for `using image = Ext4Image.open(...)`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Reads one block (BlockSource for the tree walkers). */
  readBlock(block: bigint, what: string): Buffer {
    this.checkOpen();
    checkCorrupt(block < this.blocksCount, () => `${what}: block ${block} beyond the file system (${this.blocksCount} blocks)`);
    return this.reader.read(block * BigInt(this.blockSize), this.blockSize, what);
  }

  /** Descriptor of block group `group` (where its inode table is): for diagnostics and tests. */
  groupDescriptor(group: number): GroupDescriptor {
    this.checkOpen();
    if (!Number.isInteger(group) || group < 0 || group >= this.superblock.groupCount) {
      throw new Ext4Error('EINVAL', `group ${group} out of range (0..${this.superblock.groupCount - 1})`);
    }
    return this.groups.get(group);
  }

  /** Reads and parses inode `ino`. EINVAL for numbers outside 1..s_inodes_count. */
  readInode(ino: number): Inode {
    this.checkOpen();
    const sb = this.superblock;
    if (!Number.isInteger(ino) || ino < 1 || ino > sb.inodesCount) {
      throw new Ext4Error('EINVAL', `inode number ${ino} out of range (1..${sb.inodesCount})`);
    }
    const group = Math.floor((ino - 1) / sb.inodesPerGroup);
    const index = (ino - 1) % sb.inodesPerGroup;
    const desc = this.groups.get(group);
    const pos = desc.inodeTable * BigInt(sb.blockSize) + BigInt(index) * BigInt(sb.inodeSize);
    return parseInode(ino, this.reader.read(pos, sb.inodeSize, `inode ${ino}`));
  }

  /** Resolves `path` (relative to the root; leading "/" optional) to an inode number. */
  lookup(path: string, options: LookupOptions = {}): number {
    this.checkOpen();
    const pending = splitPath(path);
    let dir = ROOT_INO;
    let follows = 0;
    let resolved = '';
    // Each step consumes one component; symlinks add at most MAX_SYMLINK_FOLLOWS targets
    // of bounded length, so the loop is bounded.
    while (pending.length > 0) {
      const name = pending.shift()!;
      const dirInode = this.readInode(dir);
      if (dirInode.type !== 'dir') {
        throw new Ext4Error('ENOTDIR', `${resolved || '/'} is not a directory (looking up ${JSON.stringify(path)})`);
      }
      const entry = this.findEntry(dirInode, name);
      if (!entry) throw new Ext4Error('ENOENT', `${joinPath(resolved, name)} not found (looking up ${JSON.stringify(path)})`);
      const isLast = pending.length === 0;
      const target = this.readInode(entry.ino);
      if (target.type === 'symlink' && (!isLast || options.followFinal)) {
        if (++follows > MAX_SYMLINK_FOLLOWS) {
          throw new Ext4Error('ELOOP', `too many symbolic links resolving ${JSON.stringify(path)}`);
        }
        const link = this.symlinkTargetOf(target);
        if (link.startsWith('/')) {
          dir = ROOT_INO;
          resolved = '';
        }
        pending.unshift(...splitPath(link));
        continue;
      }
      dir = entry.ino;
      resolved = joinPath(resolved, name);
      if (isLast) return entry.ino;
    }
    return dir;
  }

  /** lstat of a path (a final symlink is not followed) or of an inode number. */
  stat(pathOrIno: string | number): Ext4Stat {
    const ino = typeof pathOrIno === 'string' ? this.lookup(pathOrIno) : pathOrIno;
    const inode = this.readInode(ino);
    const st: Ext4Stat = {
      ino,
      mode: inode.mode,
      type: inode.type,
      size: inode.size,
      links: inode.links,
      uid: inode.uid,
      gid: inode.gid,
      mtime: inode.mtime,
      mtimeNs: inode.mtimeNs,
    };
    if (inode.type === 'symlink') {
      st.symlinkTarget = this.symlinkTargetOf(inode);
    } else if (inode.type === 'file' || inode.type === 'dir') {
      if (inode.flags & INODE_FLAGS.inlineData) st.inlineData = this.inlineContent(inode);
      else st.extents = this.extentsOf(inode);
    }
    return st;
  }

  /** Entries of directory `ino`, in on-disk order, without "." and "..". */
  readdir(ino: number): DirEntry[] {
    const inode = this.readInode(ino);
    if (inode.type !== 'dir') throw new Ext4Error('ENOTDIR', `inode ${ino} is not a directory`);
    const out: DirEntry[] = [];
    for (const e of this.dirRecords(inode)) {
      if (e.name === '.' || e.name === '..') continue;
      out.push({ name: e.name, ino: e.ino, type: e.type ?? this.readInode(e.ino).type });
    }
    return out;
  }

  /** Target of symlink `ino`. */
  readlink(ino: number): string {
    const inode = this.readInode(ino);
    if (inode.type !== 'symlink') throw new Ext4Error('EINVAL', `inode ${ino} is not a symbolic link`);
    return this.symlinkTargetOf(inode);
  }

  /**
   * Data extents of inode `ino` in blocks: sorted by logical block, merged, holes and
   * unwritten extents omitted, clipped to i_size. Empty for inline-data inodes (see
   * stat().inlineData) and fast symlinks, whose bytes live in the inode.
   */
  fileExtents(ino: number): FileExtent[] {
    const inode = this.readInode(ino);
    if (inode.flags & INODE_FLAGS.inlineData) return [];
    if (inode.type === 'symlink' && this.isFastSymlink(inode)) return [];
    if (inode.type !== 'file' && inode.type !== 'dir' && inode.type !== 'symlink') {
      throw new Ext4Error('EINVAL', `inode ${ino} is a ${inode.type}: it has no data`);
    }
    return this.extentsOf(inode);
  }

  /** Extent tree depth of an extent-mapped inode, or null for block maps and inline data. */
  extentTreeDepth(ino: number): number | null {
    const inode = this.readInode(ino);
    if (!(inode.flags & INODE_FLAGS.extents) || inode.flags & INODE_FLAGS.inlineData) return null;
    return readExtentTree(this, ino, inode.iBlock).depth;
  }

  /** The whole content of a file, directory or symlink, read from the image by extents. */
  readFile(ino: number): Buffer {
    const inode = this.readInode(ino);
    if (inode.size > BigInt(bufferConstants.MAX_LENGTH)) {
      throw new Ext4Error('EUNSUPPORTED', `inode ${ino}: ${inode.size} bytes is too large to read into memory; use read()`);
    }
    return this.read(ino, 0n, Number(inode.size));
  }

  /** Up to `length` bytes of inode `ino` from byte `position` (fewer at end of file). */
  read(ino: number, position: bigint | number, length: number): Buffer {
    const inode = this.readInode(ino);
    const pos = BigInt(position);
    if (pos < 0n || !Number.isInteger(length) || length < 0) {
      throw new Ext4Error('EINVAL', `bad read range ${position}+${length}`);
    }
    if (inode.type !== 'file' && inode.type !== 'dir' && inode.type !== 'symlink') {
      throw new Ext4Error('EINVAL', `inode ${ino} is a ${inode.type}: it has no data`);
    }
    if (pos >= inode.size) return Buffer.alloc(0);
    const end = inode.size < pos + BigInt(length) ? inode.size : pos + BigInt(length);
    const out = Buffer.alloc(Number(end - pos)); // zero-filled: holes read as zeros
    if (inode.flags & INODE_FLAGS.inlineData) {
      this.inlineContent(inode).copy(out, 0, Number(pos), Number(end));
      return out;
    }
    if (inode.type === 'symlink' && this.isFastSymlink(inode)) {
      inode.iBlock.copy(out, 0, Number(pos), Number(end));
      return out;
    }
    const bs = BigInt(this.blockSize);
    for (const e of this.extentsOf(inode)) {
      const from = maxBig(BigInt(e.logicalStart) * bs, pos);
      const to = minBig(BigInt(e.logicalEnd) * bs, end);
      if (from >= to) continue;
      const physical = e.physicalBlock * bs + (from - BigInt(e.logicalStart) * bs);
      this.reader.readInto(out, Number(from - pos), physical, Number(to - from), `inode ${ino} data`);
    }
    return out;
  }

  /**
   * Every entry below `path` (depth first, parents before children). A directory reached
   * twice means a corrupt tree (ext4 has no directory hard links) and is reported, not looped.
   */
  walk(path = '/'): WalkEntry[] {
    const start = this.lookup(path, { followFinal: true });
    const out: WalkEntry[] = [];
    const seenDirs = new Set<number>([start]);
    const stack: { ino: number; path: string }[] = [{ ino: start, path: '' }];
    while (stack.length > 0) {
      const { ino, path: dirPath } = stack.pop()!;
      const children: { ino: number; path: string }[] = [];
      for (const e of this.readdir(ino)) {
        const p = joinPath(dirPath, e.name);
        out.push({ ...e, path: p });
        if (e.type === 'dir') {
          checkCorrupt(!seenDirs.has(e.ino), () => `directory loop: ${p} is directory inode ${e.ino}, already visited`);
          seenDirs.add(e.ino);
          children.push({ ino: e.ino, path: p });
        }
      }
      stack.push(...children.reverse());
    }
    return out;
  }

  // ---- internals ----

  private checkOpen(): void {
    if (this.closed) throw new Ext4Error('EINVAL', 'image is closed');
  }

  private refuseEncrypted(inode: Inode): void {
    if (inode.flags & INODE_FLAGS.encrypt) {
      throw new Ext4Error('EUNSUPPORTED', `inode ${inode.ino} is encrypted (fscrypt)`);
    }
  }

  /** Number of blocks that cover i_size, capped at the 2^32 logical blocks ext4 addresses. */
  private fileBlocks(inode: Inode): number {
    const bs = BigInt(this.blockSize);
    const blocks = (inode.size + bs - 1n) / bs;
    return Number(blocks > 2n ** 32n ? 2n ** 32n : blocks);
  }

  private extentsOf(inode: Inode): FileExtent[] {
    this.refuseEncrypted(inode);
    const fileBlocks = this.fileBlocks(inode);
    if (inode.flags & INODE_FLAGS.extents) {
      const tree = readExtentTree(this, inode.ino, inode.iBlock);
      return clipExtents(mergeExtents(tree.extents), fileBlocks);
    }
    return readBlockMap(this, inode.ino, inode.iBlock, fileBlocks);
  }

  private inlineContent(inode: Inode): Buffer {
    this.refuseEncrypted(inode);
    return readInlineData(inode);
  }

  /**
   * A fast symlink keeps its target in i_block: no extents flag, no inline-data flag, and
   * no data blocks charged (apart from an xattr block), as the kernel decides.
   */
  private isFastSymlink(inode: Inode): boolean {
    if (inode.flags & (INODE_FLAGS.inlineData | INODE_FLAGS.extents)) return false;
    const sectorsPerBlock = BigInt(this.blockSize / 512);
    const xattrSectors = inode.fileAcl !== 0n ? sectorsPerBlock : 0n;
    const dataSectors = inode.flags & INODE_FLAGS.hugeFile ? inode.blocks * sectorsPerBlock : inode.blocks;
    return dataSectors - xattrSectors <= 0n && inode.size < BigInt(I_BLOCK_SIZE);
  }

  private symlinkTargetOf(inode: Inode): string {
    checkCorrupt(
      inode.size > 0n && inode.size <= BigInt(MAX_SYMLINK_LEN),
      () => `inode ${inode.ino}: symlink length ${inode.size} out of range (1..${MAX_SYMLINK_LEN})`,
    );
    this.refuseEncrypted(inode);
    let bytes: Buffer;
    if (inode.flags & INODE_FLAGS.inlineData) bytes = readInlineData(inode);
    else if (this.isFastSymlink(inode)) bytes = inode.iBlock.subarray(0, Number(inode.size));
    else bytes = this.read(inode.ino, 0n, Number(inode.size));
    return bytes.toString('utf8');
  }

  private dirRecords(inode: Inode): RawDirEntry[] {
    this.refuseEncrypted(inode);
    const hasFileType = hasIncompat(this.superblock, INCOMPAT.filetype);
    const where = `directory inode ${inode.ino}`;
    const out: RawDirEntry[] = [];
    if (inode.flags & INODE_FLAGS.inlineData) {
      // i_block[0] is the parent's inode number: report it as "..", as a block directory would.
      out.push({ name: '..', ino: inode.iBlock.readUInt32LE(0), type: 'dir' });
      parseDirRecords(inode.iBlock.subarray(4), hasFileType, this.blockSize, `${where} (inline)`, out);
      const extra = inlineXattrValue(inode);
      if (extra.length > 0) parseDirRecords(extra, hasFileType, this.blockSize, `${where} (inline xattr)`, out);
    } else {
      for (const e of this.extentsOf(inode)) {
        for (let b = e.logicalStart; b < e.logicalEnd; b++) {
          const block = this.readBlock(e.physicalBlock + BigInt(b - e.logicalStart), `${where} block ${b}`);
          parseDirRecords(block, hasFileType, this.blockSize, `${where} block ${b}`, out);
        }
      }
    }
    for (const e of out) {
      checkCorrupt(
        e.ino >= 1 && e.ino <= this.superblock.inodesCount,
        () => `${where}: entry ${JSON.stringify(e.name)} names inode ${e.ino}, out of range (1..${this.superblock.inodesCount})`,
      );
    }
    return out;
  }

  private findEntry(dir: Inode, name: string): RawDirEntry | undefined {
    const records = this.dirRecords(dir);
    const found = records.find((e) => e.name === name);
    if (!found && dir.flags & INODE_FLAGS.casefold) {
      throw new Ext4Error(
        'EUNSUPPORTED',
        `directory inode ${dir.ino} is case-insensitive and has no exact match for ${JSON.stringify(name)}; this reader does not fold case`,
      );
    }
    return found;
  }
}

function splitPath(path: string): string[] {
  return path.split('/').filter((c) => c !== '' && c !== '.');
}

function joinPath(a: string, b: string): string {
  return a ? `${a}/${b}` : b;
}

function maxBig(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}
function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
