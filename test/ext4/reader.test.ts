// The reader against real images made by mkfs from a fixture folder: the folder's files are
// the oracle for bytes, listings and symlinks; debugfs is the oracle for extents.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Ext4Error, Ext4Image, mergeExtents } from '../../src/ext4';
import {
  FixtureTree, MakeImageOptions, findTool, SLOW_SYMLINK_TARGET, debugfs, debugfsBlockRanges, debugfsExtents,
  makeFixtureTree, makeImage, mergeRanges, sha256,
} from '../support/images';

interface Config {
  name: string;
  image: Omit<MakeImageOptions, 'dir' | 'out'>;
  /** Files use extent trees (ext4) rather than block maps. */
  extents: boolean;
  inline?: boolean;
}

const CONFIGS: Config[] = [
  // Small groups (-g 1024) split big files at group boundaries; 1 KiB blocks give many-extents depth 2.
  { name: 'ext4 1k', image: { blockSize: 1024, extraArgs: ['-g', '1024'], indexDirectories: true }, extents: true },
  { name: 'ext4 2k, no 64bit (32-byte descriptors)', image: { blockSize: 2048, features: '^64bit', indexDirectories: true }, extents: true },
  { name: 'ext4 4k', image: { blockSize: 4096, indexDirectories: true }, extents: true },
  { name: 'ext4 1k meta_bg', image: { blockSize: 1024, features: 'meta_bg,^resize_inode', extraArgs: ['-g', '256'] }, extents: true },
  { name: 'ext2 1k (block maps, triple indirect)', image: { fsType: 'ext2', blockSize: 1024, indexDirectories: true }, extents: false },
  { name: 'ext3 2k', image: { fsType: 'ext3', blockSize: 2048 }, extents: false },
  { name: 'ext4 4k inline_data', image: { blockSize: 4096, features: 'inline_data' }, extents: true, inline: true },
];

type SourceEntry = { type: 'file' | 'dir' | 'symlink' | 'fifo' | 'chardev'; sha?: string; size?: number; target?: string };

/** The source folder as a map from relative path to what it is. */
function scanSource(root: string): Map<string, SourceEntry> {
  const out = new Map<string, SourceEntry>();
  const visit = (rel: string): void => {
    for (const name of fs.readdirSync(path.join(root, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      const full = path.join(root, r);
      const st = fs.lstatSync(full);
      if (st.isSymbolicLink()) out.set(r, { type: 'symlink', target: fs.readlinkSync(full) });
      else if (st.isFIFO()) out.set(r, { type: 'fifo' });
      else if (st.isCharacterDevice()) out.set(r, { type: 'chardev' });
      else if (st.isDirectory()) {
        out.set(r, { type: 'dir' });
        visit(r);
      } else {
        const data = fs.readFileSync(full);
        out.set(r, { type: 'file', sha: sha256(data), size: data.length });
      }
    }
  };
  visit('');
  return out;
}

function expectCode(f: () => unknown, code: string): void {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(Ext4Error);
  expect((caught as Ext4Error).code).toBe(code);
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ext4-reader-'));
const srcDir = path.join(work, 'src');
let fixture: FixtureTree;
let source: Map<string, SourceEntry>;

beforeAll(() => {
  fixture = makeFixtureTree(srcDir);
  source = scanSource(srcDir);
});

afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

test('the fixture tree has what the suites rely on', () => {
  expect(fixture.files.length).toBeGreaterThan(500);
  expect(SLOW_SYMLINK_TARGET.length).toBeGreaterThan(60);
  expect(fs.readFileSync(path.join(srcDir, 'nested/a/b/c/deep.txt')).length).toBe(777);
  // Holes really are holes in the source: far fewer blocks allocated than the size needs.
  const st = fs.statSync(path.join(srcDir, fixture.sparseFile));
  expect(st.size).toBeGreaterThan(68 * 1024 * 1024);
  expect(st.blocks * 512).toBeLessThan(1024 * 1024);
});

describe.each(CONFIGS)('$name', (config) => {
  let imagePath: string;
  let img: Ext4Image;

  beforeAll(() => {
    imagePath = path.join(work, `${config.name.replace(/[^a-z0-9]+/gi, '_')}.img`);
    makeImage({ dir: srcDir, out: imagePath, ...config.image });
    img = Ext4Image.open(imagePath);
  });
  afterAll(() => img?.close());

  test('superblock agrees with dumpe2fs', () => {
    const dump = execFileSync(findTool('dumpe2fs'), ['-h', imagePath], {
      encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'],
    }) as string;
    const field = (name: string): string => new RegExp(`^${name}:\\s*(.+)$`, 'm').exec(dump)![1].trim();
    expect(img.blockSize).toBe(Number(field('Block size')));
    expect(img.blocksCount).toBe(BigInt(field('Block count')));
    expect(img.superblock.inodesCount).toBe(Number(field('Inode count')));
    expect(img.superblock.inodeSize).toBe(Number(field('Inode size')));
    expect(img.superblock.blockSize).toBe(config.image.blockSize);
  });

  test('every group descriptor (incl. meta_bg placement) gives the inode table dumpe2fs reports', () => {
    const dump = execFileSync(findTool('dumpe2fs'), [imagePath], {
      encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'],
    }) as string;
    const tables = [...dump.matchAll(/Inode table at (\d+)-/g)].map((m) => BigInt(m[1]));
    expect(tables).toHaveLength(img.superblock.groupCount);
    if (config.image.features?.includes('meta_bg')) expect(img.superblock.groupCount).toBeGreaterThan(2 * (img.blockSize / img.superblock.descSize));
    tables.forEach((t, g) => expect([g, img.groupDescriptor(g).inodeTable]).toEqual([g, t]));
  });

  test('walk lists exactly the source tree, with types', () => {
    // mkfs adds lost+found at the root; it is the only entry not from the source.
    expect(img.stat('lost+found').type).toBe('dir');
    const listed = new Map(img.walk().filter((e) => !/^lost\+found(\/|$)/.test(e.path)).map((e) => [e.path, e.type]));
    const expected = new Map([...source].map(([p, e]) => [p, e.type]));
    expect([...listed.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [p, t] of expected) expect([p, listed.get(p)]).toEqual([p, t]);
  });

  test('readdir of every folder lists exactly its source entries', () => {
    for (const rel of ['', ...fixture.dirs]) {
      const entries = img.readdir(img.lookup(rel));
      const names = entries.map((e) => e.name).filter((n) => rel !== '' || n !== 'lost+found').sort();
      expect([rel, names]).toEqual([rel, fs.readdirSync(path.join(srcDir, rel)).sort()]);
      for (const e of entries.filter((x) => rel !== '' || x.name !== 'lost+found')) {
        const src = source.get(rel ? `${rel}/${e.name}` : e.name)!;
        expect([e.name, e.type]).toEqual([e.name, src.type]);
        expect(img.lookup(rel ? `${rel}/${e.name}` : e.name)).toBe(e.ino);
      }
    }
    expect(img.readdir(img.lookup(fixture.bigDir))).toHaveLength(500);
  });

  test('every file reads back byte for byte (SHA-256 against the source)', () => {
    const mkfsMisfits: string[] = [];
    for (const rel of fixture.files) {
      const src = source.get(rel)!;
      const st = img.stat(rel);
      if (config.inline && st.size !== BigInt(src.size!)) {
        // mke2fs 1.47.0 -O inline_data -d loses the trailing hole of a file that starts
        // small (i_size becomes one block). Then the image, not the folder, is the truth:
        // the size must be debugfs's and the bytes debugfs's dump.
        mkfsMisfits.push(rel);
        expect(debugfs(imagePath, `stat /${rel}`)).toMatch(new RegExp(`Size: ${st.size}\\b`));
        const dumped = path.join(work, 'dump.bin');
        debugfs(imagePath, `dump /${rel} ${dumped}`);
        expect(sha256(img.readFile(st.ino))).toBe(sha256(fs.readFileSync(dumped)));
        continue;
      }
      expect([rel, st.type, st.size]).toEqual([rel, 'file', BigInt(src.size!)]);
      expect([rel, sha256(img.readFile(st.ino))]).toEqual([rel, src.sha]);
      // Exactly one of the two ways to serve content.
      expect([rel, st.extents === undefined, st.inlineData === undefined]).toEqual([rel, st.inlineData !== undefined, st.extents !== undefined]);
      if (st.inlineData) expect(sha256(st.inlineData)).toBe(src.sha);
    }
    expect(mkfsMisfits).toEqual(config.inline ? ['sparse-tail'] : []);
  });

  test('partial reads match the source at odd offsets, across holes and past the end', () => {
    const data = fs.readFileSync(path.join(srcDir, 'random-1m'));
    const ino = img.lookup('random-1m');
    for (const [pos, len] of [[0, 1], [1023, 2], [4095, 8193], [data.length - 5, 100], [data.length + 10, 5]]) {
      expect(img.read(ino, pos, len).equals(data.subarray(pos, pos + len))).toBe(true);
    }
    const sparse = img.lookup(fixture.sparseFile);
    const far = 68 * 1024 * 1024 + 512;
    const farSrc = fs.readFileSync(path.join(srcDir, fixture.sparseFile)).subarray(far - 100, far + 100);
    expect(img.read(sparse, far - 100, 200).equals(farSrc)).toBe(true);
    expect(img.read(sparse, 6000, 4096).equals(Buffer.alloc(4096))).toBe(true);
  });

  test('extents equal what debugfs reports', () => {
    const sample = fixture.files.filter((f) => !f.startsWith(`${fixture.bigDir}/`));
    sample.push(...fixture.files.filter((f) => f.startsWith(`${fixture.bigDir}/`)).slice(0, 30));
    let compared = 0;
    for (const rel of sample) {
      const st = img.stat(rel);
      if (st.inlineData) continue;
      const ours = img.fileExtents(st.ino);
      expect(ours).toEqual(st.extents);
      const fromStat = mergeRanges(debugfsBlockRanges(imagePath, `/${rel}`).ranges);
      expect([rel, ours]).toEqual([rel, fromStat]);
      if (config.extents && st.size > 0n) {
        const ex = debugfsExtents(imagePath, `/${rel}`);
        const leaves = mergeRanges(ex.extents.filter((e) => !e.uninit));
        expect([rel, ours]).toEqual([rel, leaves]);
      }
      compared++;
    }
    expect(compared).toBeGreaterThan(config.inline ? 10 : 40);
  });

  test('symlinks: targets, fast and slow, and resolution through them', () => {
    for (const { path: rel, target } of fixture.symlinks) {
      const st = img.stat(rel);
      expect([rel, st.type, st.symlinkTarget]).toEqual([rel, 'symlink', target]);
      expect(img.readlink(st.ino)).toBe(target);
      expect(st.size).toBe(BigInt(Buffer.byteLength(target)));
    }
    // The slow one really is stored in a block (or inline), the fast one in i_block.
    const slow = img.lookup('links/slow');
    if (config.inline) expect(img.stat(slow).extents).toBeUndefined();
    else expect(img.fileExtents(slow)).toHaveLength(1);
    expect(img.fileExtents(img.lookup('links/fast'))).toEqual([]);

    const deep = img.lookup('nested/a/b/c/deep.txt');
    expect(img.lookup('links/dir-link/b/c/deep.txt')).toBe(deep);
    expect(img.lookup('links/slow', { followFinal: true })).toBe(deep);
    expect(img.lookup('links/slow')).toBe(img.lookup('links/slow'));
    expect(img.lookup('links/absolute', { followFinal: true })).toBe(img.lookup('nested/a/sibling.bin'));
    expect(img.lookup('/nested/a/b/../b/./c/deep.txt')).toBe(deep);
    expect(img.lookup('links/dir-link/../a/b/c/deep.txt')).toBe(deep);
  });

  test('special files: types from readdir and stat, no data', () => {
    expect(fixture.specials.length).toBeGreaterThanOrEqual(1);
    for (const sp of fixture.specials) {
      const st = img.stat(sp.path);
      expect([sp.path, st.type, st.extents, st.inlineData]).toEqual([sp.path, sp.type, undefined, undefined]);
      expectCode(() => img.readFile(st.ino), 'EINVAL');
      expectCode(() => img.fileExtents(st.ino), 'EINVAL');
    }
  });

  test('lookup failures are typed', () => {
    const code = (f: () => unknown): string => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(Ext4Error);
        return (e as Ext4Error).code;
      }
      return 'no error';
    };
    expect(code(() => img.lookup('nope'))).toBe('ENOENT');
    expect(code(() => img.lookup('nested/a/missing/x'))).toBe('ENOENT');
    expect(code(() => img.lookup('one-byte/x'))).toBe('ENOTDIR');
    expect(code(() => img.lookup('links/dangling', { followFinal: true }))).toBe('ENOENT');
    expect(code(() => img.lookup(fixture.loopingSymlink, { followFinal: true }))).toBe('ELOOP');
    expect(code(() => img.lookup(`${fixture.loopingSymlink}/x`))).toBe('ELOOP');
    expect(code(() => img.readdir(img.lookup('one-byte')))).toBe('ENOTDIR');
    expect(code(() => img.readlink(img.lookup('one-byte')))).toBe('EINVAL');
    expect(code(() => img.stat(img.superblock.inodesCount + 1))).toBe('EINVAL');
    expect(code(() => img.stat(0))).toBe('EINVAL');
  });

  test('sparse files: holes are left out of the extents and read as zeros', () => {
    const ino = img.lookup(fixture.sparseFile);
    const ext = img.fileExtents(ino);
    const bs = img.blockSize;
    const mapped = ext.reduce((n, e) => n + (e.logicalEnd - e.logicalStart), 0);
    expect(mapped * bs).toBeLessThan(32 * 1024);
    // Data past 68 MiB is mapped; the hole before it is not.
    expect(ext[ext.length - 1].logicalStart).toBeGreaterThanOrEqual(Math.floor((68 * 1024 * 1024) / bs));
    for (let i = 1; i < ext.length; i++) expect(ext[i].logicalStart).toBeGreaterThanOrEqual(ext[i - 1].logicalEnd);
    const tail = img.lookup('sparse-tail');
    expect(img.fileExtents(tail)).toHaveLength(1);
    // (mke2fs -O inline_data cuts this file's trailing hole; see the byte-for-byte test.)
    if (!config.inline) expect(img.stat(tail).size).toBe(3n * 1024n * 1024n);
  });

  if (config.extents && !config.inline) {
    test('an extent tree of depth >= 1 is read through its index nodes', () => {
      const ex = debugfsExtents(imagePath, `/${fixture.manyExtentsFile}`);
      expect(ex.depth).toBeGreaterThanOrEqual(1);
      if (img.blockSize === 1024) expect(ex.depth).toBe(2); // 400 extents > 4 x 84 per leaf
      const ino = img.lookup(fixture.manyExtentsFile);
      expect(img.extentTreeDepth(ino)).toBe(ex.depth);
      expect(img.fileExtents(ino).length).toBeGreaterThanOrEqual(400);
      expect(mergeExtents(img.fileExtents(ino))).toEqual(img.fileExtents(ino));
    });

    test('unwritten (fallocated) extents are holes: omitted and read as zeros', () => {
      const copy = `${imagePath}.falloc`;
      fs.copyFileSync(imagePath, copy);
      const bs = img.blockSize;
      const first = Math.ceil((2 * 1024 * 1024) / bs); // inside the big hole of the sparse file
      debugfs(copy, `fallocate /${fixture.sparseFile} ${first} ${first + 9}`, { write: true });
      const ex = debugfsExtents(copy, `/${fixture.sparseFile}`);
      expect(ex.extents.some((e) => e.uninit && e.logicalStart === first)).toBe(true);
      const c = Ext4Image.open(copy);
      try {
        const ino = c.lookup(fixture.sparseFile);
        expect(c.fileExtents(ino)).toEqual(img.fileExtents(ino));
        expect(sha256(c.readFile(ino))).toBe(source.get(fixture.sparseFile)!.sha);
      } finally {
        c.close();
        fs.rmSync(copy);
      }
    });
  }

  if (config.image.indexDirectories) {
    test('the 500-entry folder is an htree and reads linearly', () => {
      expect(debugfs(imagePath, `htree /${fixture.bigDir}`)).toMatch(/Root node dump/);
      const names = img.readdir(img.lookup(fixture.bigDir)).map((e) => e.name).sort();
      expect(names).toEqual(fs.readdirSync(path.join(srcDir, fixture.bigDir)).sort());
    });
  }

  if (!config.extents) {
    test('block maps: indirect blocks are exercised (triple with 1 KiB blocks)', () => {
      const { metadata } = debugfsBlockRanges(imagePath, `/${fixture.sparseFile}`);
      const kinds = new Set(metadata.map((m) => m.kind));
      expect(kinds.has('IND')).toBe(true);
      if (img.blockSize === 1024) expect(kinds.has('TIND')).toBe(true);
      else expect(kinds.has('DIND')).toBe(true);
      expect(img.extentTreeDepth(img.lookup('random-1m'))).toBeNull();
    });
  }

  if (config.inline) {
    test('inline data: small files and folders live in the inode and are served from stat', () => {
      const inlineFiles = fixture.files.filter((f) => img.stat(f).inlineData !== undefined);
      expect(inlineFiles).toContain('one-byte');
      expect(inlineFiles).toContain('small/bytes-100'); // spills past i_block into system.data
      expect(debugfs(imagePath, 'stat /small/bytes-100')).toMatch(/Size of inline data: \d+/);
      for (const f of inlineFiles) expect(img.fileExtents(img.lookup(f))).toEqual([]);
      const dirStat = img.stat('nested/a/b');
      expect(dirStat.inlineData).toBeDefined();
      expect(img.readdir(dirStat.ino).map((e) => e.name)).toEqual(['c']);
      expect(img.lookup('nested/a/b/..')).toBe(img.lookup('nested/a'));
    });
  }
});
