// Corrupted images must give clear, typed Ext4Errors: never a crash, a hang or wrong bytes.
// Each case damages a fresh copy of a real image, mostly through debugfs (which locates
// the metadata independently of our reader) or at offsets debugfs reports.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Ext4Error, Ext4ErrorCode, Ext4Image } from '../../src/ext4';
import {
  FixtureTree, debugfs, debugfsBlockRanges, debugfsInodeOffset, makeFixtureTree, makeImage, sha256,
} from '../support/images';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ext4-corrupt-'));
const srcDir = path.join(work, 'src');
const BS = 1024;
let fixture: FixtureTree;
let ext4Image: string; // 1 KiB blocks: many-extents has an extent tree of depth 2
let ext2Image: string;
let inlineImage: string;
let counter = 0;

beforeAll(() => {
  fixture = makeFixtureTree(srcDir);
  ext4Image = path.join(work, 'base-ext4.img');
  makeImage({ dir: srcDir, out: ext4Image, blockSize: BS, extraArgs: ['-g', '1024'] });
  ext2Image = path.join(work, 'base-ext2.img');
  makeImage({ dir: srcDir, out: ext2Image, blockSize: BS, fsType: 'ext2' });
  inlineImage = path.join(work, 'base-inline.img');
  makeImage({ dir: srcDir, out: inlineImage, blockSize: BS, features: 'inline_data' });
});

afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

function copyOf(base: string): string {
  const copy = path.join(work, `case-${++counter}.img`);
  fs.copyFileSync(base, copy);
  return copy;
}

function patch(file: string, offset: number, bytes: Buffer): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    fs.closeSync(fd);
  }
}

function readAt(file: string, offset: number, length: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(length);
    fs.readSync(fd, b, 0, length, offset);
    return b;
  } finally {
    fs.closeSync(fd);
  }
}

function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return b;
}
function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}

function expectExt4Error(fn: () => unknown, code: Ext4ErrorCode, message: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(Ext4Error);
  expect((caught as Ext4Error).code).toBe(code);
  expect((caught as Ext4Error).message).toMatch(message);
}

/** Opens `file`, runs `fn`, closes. */
function withImage<T>(file: string, fn: (img: Ext4Image) => T): T {
  const img = Ext4Image.open(file);
  try {
    return fn(img);
  } finally {
    img.close();
  }
}

/** Offset within a directory block of the record named `name` (test-side parse of the block). */
function recordOffset(block: Buffer, name: string): number {
  for (let off = 0; off + 8 <= block.length; ) {
    const recLen = block.readUInt16LE(off + 4);
    const nameLen = block.readUInt8(off + 6);
    if (block.toString('utf8', off + 8, off + 8 + nameLen) === name) return off;
    if (recLen < 8) break;
    off += recLen;
  }
  throw new Error(`record ${name} not found`);
}

describe('superblock', () => {
  test('flipped magic', () => {
    const f = copyOf(ext4Image);
    patch(f, 1024 + 0x38, u16(0xef54));
    expectExt4Error(() => Ext4Image.open(f), 'ECORRUPT', /bad magic 0xef54/);
  });

  test('a file of zeros, a tiny file, a missing file', () => {
    const zeros = path.join(work, 'zeros.img');
    fs.writeFileSync(zeros, Buffer.alloc(8192));
    expectExt4Error(() => Ext4Image.open(zeros), 'ECORRUPT', /bad magic 0x0/);
    const tiny = path.join(work, 'tiny.img');
    fs.writeFileSync(tiny, Buffer.alloc(100));
    expectExt4Error(() => Ext4Image.open(tiny), 'ECORRUPT', /truncated image/);
    expectExt4Error(() => Ext4Image.open(path.join(work, 'absent.img')), 'EIO', /cannot open image/);
  });

  test('unknown incompatible feature is refused by name', () => {
    const f = copyOf(ext4Image);
    const incompat = readAt(f, 1024 + 0x60, 4).readUInt32LE(0);
    patch(f, 1024 + 0x60, u32(incompat | 0x100000));
    expectExt4Error(() => Ext4Image.open(f), 'EUNSUPPORTED', /unsupported incompatible feature\(s\): unknown\(0x100000\)/);
  });

  test('known but unhandled incompatible features are refused by name', () => {
    const f = copyOf(ext4Image);
    const incompat = readAt(f, 1024 + 0x60, 4).readUInt32LE(0);
    patch(f, 1024 + 0x60, u32(incompat | 0x1 | 0x1000));
    expectExt4Error(() => Ext4Image.open(f), 'EUNSUPPORTED', /compression, dirdata/);
  });

  test('needs_recovery is accepted (read anyway)', () => {
    const f = copyOf(ext4Image);
    const incompat = readAt(f, 1024 + 0x60, 4).readUInt32LE(0);
    patch(f, 1024 + 0x60, u32(incompat | 0x4));
    withImage(f, (img) => {
      const data = fs.readFileSync(path.join(srcDir, 'random-1m'));
      expect(sha256(img.readFile(img.lookup('random-1m')))).toBe(sha256(data));
    });
  });

  test('truncated image', () => {
    const f = copyOf(ext4Image);
    fs.truncateSync(f, fs.statSync(f).size / 2);
    expectExt4Error(() => Ext4Image.open(f), 'ECORRUPT', /truncated image/);
  });

  test('insane geometry', () => {
    const f = copyOf(ext4Image);
    patch(f, 1024 + 0x18, u32(20)); // s_log_block_size
    expectExt4Error(() => Ext4Image.open(f), 'ECORRUPT', /s_log_block_size 20/);
    const g = copyOf(ext4Image);
    patch(g, 1024 + 0x28, u32(0)); // s_inodes_per_group
    expectExt4Error(() => Ext4Image.open(g), 'ECORRUPT', /inodes per group 0/);
  });

  test('group descriptor with an inode table outside the file system', () => {
    const f = copyOf(ext4Image);
    patch(f, 2 * BS + 0x08, u32(0x7fffff00)); // group 0's bg_inode_table_lo (GDT at block 2 with 1 KiB blocks)
    withImage(f, (img) => expectExt4Error(() => img.lookup('one-byte'), 'ECORRUPT', /group descriptor 0: inode table/));
  });
});

describe('extent trees', () => {
  test('broken extent header magic in the inode', () => {
    const f = copyOf(ext4Image);
    patch(f, debugfsInodeOffset(f, '/random-1m', BS) + 40, u16(0x1234));
    withImage(f, (img) => {
      const ino = img.lookup('random-1m');
      expectExt4Error(() => img.readFile(ino), 'ECORRUPT', new RegExp(`inode ${ino} extent tree root: bad extent header magic 0x1234`));
      expectExt4Error(() => img.fileExtents(ino), 'ECORRUPT', /bad extent header magic/);
      expectExt4Error(() => img.stat(ino), 'ECORRUPT', /bad extent header magic/);
    });
  });

  test('broken header in a leaf block of a depth-2 tree', () => {
    const f = copyOf(ext4Image);
    const leaf = debugfsBlockRanges(f, `/${fixture.manyExtentsFile}`).metadata.find((m) => m.kind === 'ETB1')!;
    expect(leaf).toBeDefined();
    patch(f, Number(leaf.block) * BS, u16(0));
    withImage(f, (img) =>
      expectExt4Error(() => img.readFile(img.lookup(fixture.manyExtentsFile)), 'ECORRUPT', new RegExp(`node at block ${leaf.block}: bad extent header magic`)),
    );
  });

  test('depth > 5', () => {
    const f = copyOf(ext4Image);
    patch(f, debugfsInodeOffset(f, `/${fixture.manyExtentsFile}`, BS) + 40 + 6, u16(6));
    withImage(f, (img) => expectExt4Error(() => img.fileExtents(img.lookup(fixture.manyExtentsFile)), 'ECORRUPT', /depth 6 exceeds the maximum of 5/));
  });

  test('an index node pointing to itself (loop)', () => {
    const f = copyOf(ext4Image);
    const index = debugfsBlockRanges(f, `/${fixture.manyExtentsFile}`).metadata.find((m) => m.kind === 'ETB0')!;
    patch(f, Number(index.block) * BS + 12 + 4, u32(Number(index.block))); // first entry's ei_leaf_lo
    withImage(f, (img) => expectExt4Error(() => img.readFile(img.lookup(fixture.manyExtentsFile)), 'ECORRUPT', /loop in the extent tree/));
  });

  test('an index node pointing to a leaf of the wrong depth', () => {
    const f = copyOf(ext4Image);
    const ranges = debugfsBlockRanges(f, `/${fixture.manyExtentsFile}`);
    const leaf = ranges.metadata.find((m) => m.kind === 'ETB1')!;
    // Root (depth 2) -> skip the index level and point straight at a depth-0 leaf.
    debugfs(f, `sif /${fixture.manyExtentsFile} block[4] ${leaf.block}`, { write: true });
    withImage(f, (img) => expectExt4Error(() => img.fileExtents(img.lookup(fixture.manyExtentsFile)), 'ECORRUPT', /depth 0, expected 1/));
  });

  test('an extent pointing past the end of the file system', () => {
    const f = copyOf(ext4Image);
    debugfs(f, 'sif /size-4097 block[5] 0x7fffffff', { write: true }); // first extent's ee_start_lo
    withImage(f, (img) => {
      const ino = img.lookup('size-4097');
      expectExt4Error(() => img.readFile(ino), 'ECORRUPT', /extent 0 \(blocks 2147483647\.\.\d+\) lies beyond the file system/);
    });
  });

  test('an index entry pointing past the end of the file system', () => {
    const f = copyOf(ext4Image);
    debugfs(f, `sif /${fixture.manyExtentsFile} block[4] 0x7fffffff`, { write: true }); // root index's ei_leaf_lo
    withImage(f, (img) => expectExt4Error(() => img.fileExtents(img.lookup(fixture.manyExtentsFile)), 'ECORRUPT', /points to block 2147483647, beyond/));
  });

  test('overlapping extents', () => {
    const f = copyOf(ext4Image);
    const ranges = debugfsBlockRanges(f, `/${fixture.manyExtentsFile}`);
    const leaf = ranges.metadata.find((m) => m.kind === 'ETB1')!;
    patch(f, Number(leaf.block) * BS + 12 + 12, u32(0)); // second extent's ee_block = 0, overlapping the first
    withImage(f, (img) => expectExt4Error(() => img.fileExtents(img.lookup(fixture.manyExtentsFile)), 'ECORRUPT', /overlaps or precedes/));
  });
});

describe('block maps (ext2)', () => {
  test('an indirect pointer past the end of the file system', () => {
    const f = copyOf(ext2Image);
    debugfs(f, 'sif /random-1m block[IND] 0x7fffffff', { write: true });
    withImage(f, (img) => expectExt4Error(() => img.readFile(img.lookup('random-1m')), 'ECORRUPT', /indirect block 2147483647 \(level 1\) beyond the file system/));
  });

  test('a direct pointer past the end of the file system', () => {
    const f = copyOf(ext2Image);
    debugfs(f, 'sif /size-4097 block[2] 0x7ffffff0', { write: true });
    withImage(f, (img) => expectExt4Error(() => img.readFile(img.lookup('size-4097')), 'ECORRUPT', /logical block 2 maps to block 2147483632/));
  });
});

describe('directories and inodes', () => {
  test('a directory loop is reported by walk, not followed forever', () => {
    const f = copyOf(ext4Image);
    debugfs(f, 'ln /nested /nested/a/b/back', { write: true });
    withImage(f, (img) => {
      expectExt4Error(() => img.walk(), 'ECORRUPT', /directory loop: nested\/a\/b\/back is directory inode \d+, already visited/);
      // Path lookups are finite, so they still work through the loop.
      expect(img.lookup('nested/a/b/back/a/b/back/a/sibling.bin')).toBe(img.lookup('nested/a/sibling.bin'));
    });
  });

  test('rec_len 0 in a directory block', () => {
    const f = copyOf(ext4Image);
    const block = debugfsBlockRanges(f, '/nested/a').ranges[0].physicalBlock;
    const off = recordOffset(readAt(f, Number(block) * BS, BS), 'sibling.bin');
    patch(f, Number(block) * BS + off + 4, u16(0));
    withImage(f, (img) => {
      const ino = img.lookup('nested');
      expect(img.readdir(ino).map((e) => e.name)).toEqual(['a']);
      expectExt4Error(() => img.readdir(img.lookup('nested/a')), 'ECORRUPT', new RegExp(`offset ${off} has invalid rec_len 0`));
      expectExt4Error(() => img.lookup('nested/a/b'), 'ECORRUPT', /invalid rec_len 0/);
    });
  });

  test('a directory entry naming an inode out of range', () => {
    const f = copyOf(ext4Image);
    const block = debugfsBlockRanges(f, '/nested/a').ranges[0].physicalBlock;
    const off = recordOffset(readAt(f, Number(block) * BS, BS), 'sibling.bin');
    patch(f, Number(block) * BS + off, u32(0x7fffffff));
    withImage(f, (img) => {
      expectExt4Error(() => img.lookup('nested/a/sibling.bin'), 'ECORRUPT', /"sibling.bin" names inode 2147483647, out of range/);
    });
  });

  test('a directory entry naming a free inode', () => {
    const f = copyOf(ext4Image);
    debugfs(f, 'clri /nested/a/b/c/deep.txt', { write: true });
    withImage(f, (img) => expectExt4Error(() => img.lookup('nested/a/b/c/deep.txt'), 'ECORRUPT', /is not in use/));
  });

  test('i_extra_isize larger than the inode', () => {
    const f = copyOf(ext4Image);
    patch(f, debugfsInodeOffset(f, '/one-byte', BS) + 128, u16(0x200));
    withImage(f, (img) => expectExt4Error(() => img.stat('one-byte'), 'ECORRUPT', /i_extra_isize 512 does not fit/));
  });

  test('a symlink with an absurd length', () => {
    const f = copyOf(ext4Image);
    debugfs(f, 'sif /links/slow size 1000000', { write: true });
    withImage(f, (img) => expectExt4Error(() => img.readlink(img.lookup('links/slow')), 'ECORRUPT', /symlink length 1000000 out of range/));
  });

  test('an inline file longer than what the inode stores', () => {
    const f = copyOf(inlineImage);
    debugfs(f, 'sif /small/bytes-100 size 5000', { write: true });
    withImage(f, (img) => expectExt4Error(() => img.readFile(img.lookup('small/bytes-100')), 'ECORRUPT', /inline file of 5000 bytes, but only \d+ bytes are stored inline/));
  });

  test('closed images refuse further use', () => {
    const img = Ext4Image.open(ext4Image);
    img.close();
    expectExt4Error(() => img.lookup('one-byte'), 'EINVAL', /image is closed/);
  });
});
