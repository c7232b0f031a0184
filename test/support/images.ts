// Test-image tooling shared by the project's tests: build real ext2/3/4 images with
// e2fsprogs from a folder whose files are the oracle, and ask debugfs (a reader no one
// here wrote) about them.
//
// Stable API (other suites depend on it):
//   makeImage(opts)                 mkfs.<fsType> -q -F -d DIR OUT SIZE (optionally e2fsck -fyD to index dirs)
//   makeFixtureTree(dir)            writes a representative folder, returns what it wrote
//   debugfs(image, request, opts?)  runs one debugfs request, returns stdout, throws on its errors
//   debugfsExtents(image, path)     `debugfs -R "ex PATH"`: depth and leaf extents
//   debugfsBlockRanges(image, path) data block ranges from `debugfs -R "stat PATH"` (works for block maps too)
//   debugfsInodeOffset(image, path) byte offset of a file's inode in the image (`imap`)
//   mergeRanges(list)               merges adjacent ranges (as the reader reports them)
//   sha256(buf)                     hex digest
//   findTool(name)                  absolute path of an e2fsprogs tool
import { execFileSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

// ---------- tools ----------

/** Absolute path of a system tool, looking in PATH and the sbin folders (often off PATH). */
export function findTool(name: string): string {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = path.join(d, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* try the next folder */
    }
  }
  throw new Error(`${name} not found (install e2fsprogs)`);
}

function run(tool: string, args: string[]): { stdout: string; stderr: string; status: number } {
  try {
    const stdout = execFileSync(findTool(tool), args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 64 * 1024 * 1024,
    });
    return { stdout, stderr: '', status: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; status?: number };
    if (typeof e.status !== 'number') throw err;
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', status: e.status };
  }
}

// ---------- images ----------

export interface MakeImageOptions {
  /** Source folder copied into the image (mkfs -d). */
  dir: string;
  /** Image file to create (overwritten). */
  out: string;
  blockSize?: 1024 | 2048 | 4096;
  /** Selects mkfs.ext4 (default), mkfs.ext3 or mkfs.ext2. */
  fsType?: 'ext4' | 'ext3' | 'ext2';
  /** Passed as -O (e.g. "inline_data", "^has_journal,^metadata_csum"). */
  features?: string;
  /** More mkfs arguments, placed before the device (e.g. ['-g', '1024', '-N', '2048']). */
  extraArgs?: string[];
  /** Image size in MiB; default 16. */
  sizeMiB?: number;
  /**
   * mkfs -d writes linear directories only; with this, `e2fsck -fyD` rebuilds directories
   * so that multi-block ones get htree indexes (needs dir_index, the default). Default false.
   */
  indexDirectories?: boolean;
}

/** Builds an image with mkfs.<fsType> -q -F -d. Throws with mkfs's output on failure. */
export function makeImage(opts: MakeImageOptions): void {
  const fsType = opts.fsType ?? 'ext4';
  const args = ['-q', '-F'];
  if (opts.blockSize) args.push('-b', String(opts.blockSize));
  if (opts.features) args.push('-O', opts.features);
  args.push(...(opts.extraArgs ?? []));
  args.push('-d', opts.dir, opts.out, `${opts.sizeMiB ?? 16}M`);
  const r = run(`mkfs.${fsType}`, args);
  if (r.status !== 0) throw new Error(`mkfs.${fsType} ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
  if (opts.indexDirectories) {
    // Exit codes 0-3 mean clean or repaired (-D always "repairs"); 4 and up are failures.
    const f = run('e2fsck', ['-f', '-y', '-D', opts.out]);
    if (f.status >= 4) throw new Error(`e2fsck -fyD ${opts.out} failed (${f.status}): ${f.stderr}${f.stdout}`);
  }
}

// ---------- fixture tree ----------

export interface FixtureTree {
  /** Relative paths of the regular files written. */
  files: string[];
  /** Relative paths of the folders written (not including the root). */
  dirs: string[];
  /** Symlinks written, with their targets. */
  symlinks: { path: string; target: string }[];
  /** A file of 400 separated 4 KiB islands: > 4 extents at any block size, so its extent tree has depth >= 1. */
  manyExtentsFile: string;
  /** A sparse file with holes between data and a data block past 68 MiB (triple indirect with 1 KiB ext2 blocks). */
  sparseFile: string;
  /** A folder with 500 entries (several blocks: an htree after makeImage({ indexDirectories: true })). */
  bigDir: string;
  /** Symlinks whose resolution loops (for ELOOP). */
  loopingSymlink: string;
  /** Special files under special/: a fifo always, a char device when mknod is permitted (root). */
  specials: { path: string; type: 'fifo' | 'chardev' }[];
}

/** Deterministic pseudo-random bytes (mulberry32), so fixtures are the same on every run. */
export function seededBytes(seed: number, length: number): Buffer {
  let a = seed >>> 0;
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff;
  }
  return out;
}

/** A target longer than the 60 bytes i_block holds, so the symlink is stored in a block. */
export const SLOW_SYMLINK_TARGET = '../nested/a/b/c/../../b/c/../../b/c/../../b/c/../../b/c/deep.txt';

/**
 * Writes a representative folder into `dir` (created if missing). Content is seeded, so
 * the tree is identical on every run. Needs about 2.5 MiB of real data (+ sparse holes).
 */
export function makeFixtureTree(dir: string): FixtureTree {
  fs.mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const dirs: string[] = [];
  const symlinks: { path: string; target: string }[] = [];
  let seed = 1;
  const mkdir = (rel: string): void => {
    fs.mkdirSync(path.join(dir, rel), { recursive: true });
    dirs.push(rel);
  };
  const write = (rel: string, size: number): void => {
    fs.writeFileSync(path.join(dir, rel), seededBytes(seed++, size));
    files.push(rel);
  };
  const symlink = (rel: string, target: string): void => {
    fs.symlinkSync(target, path.join(dir, rel));
    symlinks.push({ path: rel, target });
  };

  write('empty', 0);
  write('one-byte', 1);
  write('size-4095', 4095);
  write('size-4096', 4096);
  write('size-4097', 4097);
  write('random-1m', 1024 * 1024 + 123);

  mkdir('small');
  for (const n of [2, 59, 60, 61, 100, 150, 200]) write(`small/bytes-${n}`, n);

  // Sparse: data, a hole, data at 1 MiB, a long hole, data past 68 MiB (beyond what 12 direct +
  // single + double indirect blocks address with 1 KiB blocks: 12 + 256 + 65536 KiB).
  const sparseFile = 'sparse';
  {
    const fd = fs.openSync(path.join(dir, sparseFile), 'w');
    fs.writeSync(fd, seededBytes(seed++, 5000), 0, 5000, 0);
    fs.writeSync(fd, seededBytes(seed++, 3), 0, 3, 1024 * 1024);
    fs.writeSync(fd, seededBytes(seed++, 4096 + 7), 0, 4096 + 7, 68 * 1024 * 1024 + 512);
    fs.closeSync(fd);
    files.push(sparseFile);
  }
  // A file that ends in a hole: 10 bytes, then extended to 3 MiB.
  {
    const fd = fs.openSync(path.join(dir, 'sparse-tail'), 'w');
    fs.writeSync(fd, seededBytes(seed++, 10), 0, 10, 0);
    fs.ftruncateSync(fd, 3 * 1024 * 1024);
    fs.closeSync(fd);
    files.push('sparse-tail');
  }
  // 400 islands of 4 KiB, 4 KiB apart: 400 extents, more than the inode's 4, at every block size.
  const manyExtentsFile = 'many-extents';
  {
    const fd = fs.openSync(path.join(dir, manyExtentsFile), 'w');
    const island = seededBytes(seed++, 400 * 4096);
    for (let i = 0; i < 400; i++) fs.writeSync(fd, island, i * 4096, 4096, i * 8192);
    fs.closeSync(fd);
    files.push(manyExtentsFile);
  }

  mkdir('nested');
  mkdir('nested/a');
  mkdir('nested/a/b');
  mkdir('nested/a/b/c');
  write('nested/a/b/c/deep.txt', 777);
  write('nested/a/sibling.bin', 8192 + 1);
  mkdir('empty-dir');

  const bigDir = 'many';
  mkdir(bigDir);
  for (let i = 0; i < 500; i++) {
    // Mostly empty files (no blocks), every fifth with a little data (inline with inline_data).
    write(`${bigDir}/entry-with-a-longish-name-${String(i).padStart(4, '0')}`, i % 5 === 0 ? (i * 7) % 300 : 0);
  }

  mkdir('links');
  symlink('links/fast', '../one-byte');
  symlink('links/slow', SLOW_SYMLINK_TARGET);
  symlink('links/dir-link', '../nested/a');
  symlink('links/absolute', '/nested/a/sibling.bin');
  symlink('links/dangling', 'does-not-exist');
  symlink('links/loop-1', 'loop-2');
  symlink('links/loop-2', 'loop-1');

  // Special files live in their own folder so that suites walking the other folders meet only
  // files, folders and symlinks.
  const specials: { path: string; type: 'fifo' | 'chardev' }[] = [];
  mkdir('special');
  execFileSync(findTool('mkfifo'), [path.join(dir, 'special/fifo')]);
  specials.push({ path: 'special/fifo', type: 'fifo' });
  try {
    execFileSync(findTool('mknod'), [path.join(dir, 'special/null'), 'c', '1', '3'], { stdio: 'ignore' });
    specials.push({ path: 'special/null', type: 'chardev' });
  } catch {
    /* not root: no device node */
  }

  return { files, dirs, symlinks, specials, manyExtentsFile, sparseFile, bigDir, loopingSymlink: 'links/loop-1' };
}

// ---------- debugfs ----------

/**
 * Runs one debugfs request (`-R`) on `image`, read-only unless `write`. Returns stdout.
 * debugfs exits 0 even when a request fails, so any stderr line besides its version banner
 * is treated as an error.
 */
export function debugfs(image: string, request: string, opts: { write?: boolean } = {}): string {
  const args = [...(opts.write ? ['-w'] : []), '-R', request, image];
  const r = run('debugfs', args);
  const errors = r.stderr.split('\n').filter((l) => l.trim() !== '' && !/^debugfs \d/.test(l));
  if (r.status !== 0 || errors.length > 0) {
    throw new Error(`debugfs ${args.join(' ')}: ${errors.join('; ') || `exit ${r.status}`}`);
  }
  return r.stdout;
}

export interface DebugfsExtent {
  logicalStart: number;
  /** Exclusive. */
  logicalEnd: number;
  physicalBlock: bigint;
  /** Unwritten (fallocated) extent: reads as zeros. */
  uninit: boolean;
}

/** Depth of the extent tree and its leaf extents, from `debugfs -R "ex PATH"`. */
export function debugfsExtents(image: string, filePath: string): { depth: number; extents: DebugfsExtent[] } {
  const out = debugfs(image, `ex ${filePath}`);
  const extents: DebugfsExtent[] = [];
  let depth = 0;
  let sawHeader = false;
  // Lines: " 1/ 2   3/ 83    16 -    19  1474 -  1477      4 Uninit"; index lines have no physical range.
  const line = /^\s*(\d+)\/\s*(\d+)\s+\d+\/\s*\d+\s+(\d+)\s*-\s*(\d+)\s+(\d+)(?:\s*-\s*(\d+))?\s+(\d+)\s*(\S*)\s*$/;
  for (const l of out.split('\n')) {
    if (/^Level\s+Entries/.test(l)) {
      sawHeader = true;
      continue;
    }
    const m = line.exec(l);
    if (!m) continue;
    const level = Number(m[1]);
    depth = Number(m[2]);
    if (level !== depth) continue; // an index entry
    const start = Number(m[3]);
    const len = Number(m[7]);
    extents.push({
      logicalStart: start,
      logicalEnd: start + len,
      physicalBlock: BigInt(m[5]),
      uninit: /uninit/i.test(m[8]),
    });
  }
  if (!sawHeader && out.trim() !== '') throw new Error(`debugfs ex ${filePath}: unexpected output: ${out}`);
  return { depth, extents };
}

export interface BlockRange {
  logicalStart: number;
  logicalEnd: number;
  physicalBlock: bigint;
}

/**
 * Data block ranges of a file from `debugfs -R "stat PATH"` (its EXTENTS: or BLOCKS: list),
 * for extent and block-mapped files alike, plus the metadata blocks it names: (IND), (DIND),
 * (TIND) for block maps, (ETBn) for extent tree blocks. Unwritten ranges ("[u]") are skipped.
 */
export function debugfsBlockRanges(image: string, filePath: string): { ranges: BlockRange[]; metadata: { kind: string; block: bigint }[] } {
  const out = debugfs(image, `stat ${filePath}`);
  const idx = out.search(/^(EXTENTS|BLOCKS):/m);
  const ranges: BlockRange[] = [];
  const metadata: { kind: string; block: bigint }[] = [];
  if (idx < 0) return { ranges, metadata };
  const list = out.slice(idx).split('\n').slice(1).join(' ').replace(/TOTAL:.*/, '');
  for (const item of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    const meta = /^\((IND|DIND|TIND|ETB\d+)\):(\d+)$/.exec(item);
    if (meta) {
      metadata.push({ kind: meta[1], block: BigInt(meta[2]) });
      continue;
    }
    const m = /^\((\d+)(?:-(\d+))?(\[u\])?\):(\d+)(?:-(\d+))?$/.exec(item);
    if (!m) throw new Error(`debugfs stat ${filePath}: cannot parse block list item ${JSON.stringify(item)}`);
    if (m[3]) continue;
    const start = Number(m[1]);
    const end = m[2] ? Number(m[2]) + 1 : start + 1;
    ranges.push({ logicalStart: start, logicalEnd: end, physicalBlock: BigInt(m[4]) });
  }
  return { ranges, metadata };
}

/** Byte offset of `filePath`'s inode in the image, from `debugfs -R "imap PATH"`. */
export function debugfsInodeOffset(image: string, filePath: string, blockSize: number): number {
  const out = debugfs(image, `imap ${filePath}`);
  const m = /located at block (\d+), offset 0x([0-9a-f]+)/i.exec(out);
  if (!m) throw new Error(`debugfs imap ${filePath}: unexpected output: ${out}`);
  return Number(m[1]) * blockSize + parseInt(m[2], 16);
}

/** Merges ranges that continue each other logically and physically (input sorted). */
export function mergeRanges<T extends BlockRange>(list: readonly T[]): BlockRange[] {
  const out: BlockRange[] = [];
  for (const r of list) {
    const last = out[out.length - 1];
    if (last && last.logicalEnd === r.logicalStart && last.physicalBlock + BigInt(last.logicalEnd - last.logicalStart) === r.physicalBlock) {
      last.logicalEnd = r.logicalEnd;
    } else {
      out.push({ logicalStart: r.logicalStart, logicalEnd: r.logicalEnd, physicalBlock: r.physicalBlock });
    }
  }
  return out;
}

export function sha256(buf: Buffer): string {
  return crypto.createHash('sha256').update(buf).digest('hex');
}
