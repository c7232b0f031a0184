// The contenders of `npm run bench` and the machinery around them: the test image, the C mmap
// reader, the kernel's ext4 over a loop device, fuse2fs, and this project's server in a child
// process read through the real client. Every mount, loop device and child process is recorded
// in a cleanup list that run.ts empties in a finally block and on SIGINT/SIGTERM.
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as readline from 'readline';
import { PagedFile, PagerClientConnection, RemotePager } from '../src/client';
import { Ext4Image } from '../src/ext4';
import { Channel } from '../src/transport/channel';
import { Handle } from '../src/transport/handle';

export const PAGE = 4096;
export const SEQ_CHUNK = 4 << 20; // every contender copies the file out 4 MiB at a time

// ---------------------------------------------------------------------------------------------
// Cleanup: undo actions, newest first, each at most once.

const cleanups: { name: string; undo: () => void }[] = [];

export function onCleanup(name: string, undo: () => void): () => void {
  const entry = { name, undo };
  cleanups.push(entry);
  return () => {
    const i = cleanups.indexOf(entry);
    if (i >= 0) cleanups.splice(i, 1);
    undo();
  };
}

/** Runs every pending undo (newest first); reports, never throws. */
export function cleanupAll(): void {
  while (cleanups.length > 0) {
    const entry = cleanups.pop()!;
    try {
      entry.undo();
    } catch (e) {
      process.stderr.write(`bench: cleanup of ${entry.name} failed: ${(e as Error).message}\n`);
    }
  }
}

export function sh(cmd: string, args: string[], opts: { input?: string } = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input: opts.input, stdio: ['pipe', 'pipe', 'pipe'] });
}

function shQuiet(cmd: string, args: string[]): boolean {
  try {
    sh(cmd, args);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// The image.

export interface BenchImage {
  dir: string;
  /** The big file's bytes as a plain tmpfs file: the oracle, and the memfd ceiling's source. */
  source: string;
  image: string;
  /** Path of the big file inside the image, and its inode, size and extents. */
  bigPath: string;
  big: { ino: number; size: bigint; extents: { logicalStart: number; logicalEnd: number; physicalBlock: bigint }[] };
  /** The small files (for RegisterFile), stat'ed from the image. */
  small: { name: string; ino: number; size: bigint; extents: { logicalStart: number; logicalEnd: number; physicalBlock: bigint }[] }[];
}

/**
 * Writes `size` random bytes as /big and `smallFiles` random 4 KiB files (100 directories) into a
 * source folder, builds a 4 KiB-block ext4 image from it with `mkfs.ext4 -d`, and reads the
 * image once (on tmpfs the page cache is its storage: this only makes that explicit).
 */
export function makeImage(dir: string, size: number, smallFiles: number): BenchImage {
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  const source = path.join(src, 'big');
  const fd = fs.openSync(source, 'w');
  const chunk = Buffer.alloc(16 << 20);
  for (let off = 0; off < size; off += chunk.length) {
    const n = Math.min(chunk.length, size - off);
    crypto.randomFillSync(chunk, 0, n);
    fs.writeSync(fd, chunk, 0, n, off);
  }
  fs.closeSync(fd);
  const small: BenchImage['small'] = [];
  const names: string[] = [];
  for (let i = 0; i < smallFiles; i++) {
    const d = path.join(src, 'small', String(i % 100).padStart(2, '0'));
    if (i < 100) fs.mkdirSync(d, { recursive: true });
    const name = path.join('/small', String(i % 100).padStart(2, '0'), `f${i}`);
    fs.writeFileSync(path.join(src, name), crypto.randomBytes(PAGE));
    names.push(name);
  }
  const image = path.join(dir, 'image.ext4');
  // Room for the files plus ext4's metadata (inode tables, journal), generously.
  const imageBytes = Math.ceil((size * 1.08 + smallFiles * 8192 + (96 << 20)) / (1 << 20)) << 20;
  sh('mkfs.ext4', ['-q', '-F', '-b', '4096', '-d', src, image, String(imageBytes / 1024) + 'k']);
  // The mkfs source copies of the small files are not needed; the big one is the oracle.
  fs.rmSync(path.join(src, 'small'), { recursive: true, force: true });
  readOnce(image);
  const img = Ext4Image.open(image);
  try {
    const st = img.stat('/big');
    if (st.extents === undefined) throw new Error('the image holds /big without extents');
    for (const name of names) {
      const s = img.stat(name);
      small.push({ name, ino: s.ino, size: s.size, extents: s.extents ?? [] });
    }
    return { dir, source, image, bigPath: '/big', big: { ino: st.ino, size: st.size, extents: st.extents }, small };
  } finally {
    img.close();
  }
}

export function readOnce(file: string): void {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(8 << 20);
  try {
    let off = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, off);
      if (n <= 0) break;
      off += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------
// The C reader (bench/mmap_read.c), compiled at bench time.

export interface SeqResult {
  bytes: number;
  seconds: number;
  check: string;
  /** Pages of the file already resident before the read (mincore; seq mode only). */
  alreadyResident?: number;
  /** The reader's own CPU and minor page faults during the timed read (seq modes only). */
  userMs?: number;
  sysMs?: number;
  minorFaults?: number;
}
export interface RandResult {
  samples: number;
  alreadyResident: number;
  check: string;
  latencyUs: number[];
  offsets: number[];
}

export class MmapReader {
  private constructor(readonly exe: string) {}

  static compile(dir: string): MmapReader {
    const src = path.join(__dirname, '..', '..', 'bench', 'mmap_read.c');
    if (!fs.existsSync(src)) throw new Error(`${src} is missing`);
    const exe = path.join(dir, 'mmap_read');
    sh('cc', ['-O2', '-Wall', '-o', exe, src]);
    return new MmapReader(exe);
  }

  private run<T>(args: string[]): T {
    return JSON.parse(execFileSync(this.exe, args, { encoding: 'utf8', maxBuffer: 64 << 20 })) as T;
  }

  seq(file: string, chunk = SEQ_CHUNK): SeqResult {
    return this.run(['seq', file, String(chunk)]);
  }

  rand(file: string, samples: number, spacing: number, seed: number): RandResult {
    return this.run(['rand', file, String(samples), String(spacing), String(seed)]);
  }

  /** Touches and frees `mib` MiB of fresh memory (see mmap_read.c): before every timed first read. */
  touch(mib: number): { bytes: number; seconds: number } {
    return this.run(['touch', String(mib)]);
  }

  fill(file: string, offset: number, len: number, chunk = SEQ_CHUNK): SeqResult {
    return this.run(['fill', file, String(offset), String(len), String(chunk)]);
  }

  /** memcpy into a hugetlb memfd: fresh huge pages, or pages allocated before the timing. */
  fillHuge(file: string, offset: number, len: number, prefault: boolean, chunk = SEQ_CHUNK): SeqResult {
    return this.run(['fill-huge', file, String(offset), String(len), String(chunk), ...(prefault ? ['prefault'] : [])]);
  }

  /** A bare SEQPACKET round trip between two C processes whose reply carries a new memfd. */
  rttMemfd(calls: number): { calls: number; p50Us: number; p99Us: number } {
    return this.run(['rtt-memfd', String(calls)]);
  }

  /** seq, on a file of this project's pager: the reader maps it with its own uffd (see mmap_read.c). */
  seqPager(session: PagerClientSession, file: PagedFile, chunk = SEQ_CHUNK): Promise<SeqResult> {
    return this.runOnPager(session, file, ['seq-pager', String(file.size), String(chunk)]);
  }

  /** rand, on a file of this project's pager. */
  randPager(session: PagerClientSession, file: PagedFile, samples: number, spacing: number, seed: number): Promise<RandResult> {
    return this.runOnPager(session, file, ['rand-pager', String(file.size), String(samples), String(spacing), String(seed)]);
  }

  // The reader gets the file's handle as fd 3 and one end of a socket pair as fd 4. It sends its
  // mapping's address and length with its uffd; this process hands them to the pager with
  // Mapper.AttachMapping (as PagedFile.map() does for its own mappings) and answers one byte.
  private async runOnPager<T>(session: PagerClientSession, file: PagedFile, args: string[]): Promise<T> {
    const [mine, theirs] = Channel.pairHandles();
    const channel = Channel.fromHandle(mine, { name: 'bench-reader' });
    let child: ChildProcess;
    try {
      child = spawn(this.exe, args, { stdio: ['ignore', 'pipe', 'inherit', file.handle.fd, theirs.fd] });
    } finally {
      theirs.close();
    }
    let out = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => (out += d));
    const exited = new Promise<string | null>((resolve) => {
      child.on('error', (e) => resolve(e.message));
      child.on('close', (code, signal) => resolve(code === 0 ? null : `exited with ${signal ?? code}`));
    });
    try {
      const [bytes, handles] = await new Promise<[Uint8Array, Handle[]]>((resolve, reject) => {
        channel.once('message', (b: Uint8Array, h: Handle[]) => resolve([b, h]));
        channel.once('close', () => reject(new Error(`mmap_read ${args[0]} closed its socket before handing over its uffd`)));
        channel.start();
      });
      if (bytes.length !== 16 || handles.length !== 1) {
        for (const h of handles) h.close();
        throw new Error(`mmap_read ${args[0]} sent ${bytes.length} bytes and ${handles.length} handles, expected 16 and 1`);
      }
      const where = Buffer.from(bytes.buffer, bytes.byteOffset, 16);
      const { client } = session.connection.mapperConnection();
      const result = await client.attachMapping({
        vmo: file.handle.duplicate(),
        uffd: handles[0],
        address: where.readBigUInt64LE(0),
        length: where.readBigUInt64LE(8),
        offset: 0n,
      });
      if (!result.ok) throw new Error(`AttachMapping for mmap_read failed with zx status ${result.error}`);
      channel.send(new Uint8Array([1]), []);
      const failure = await exited;
      if (failure !== null) throw new Error(`mmap_read ${args[0]} ${failure}`);
      return JSON.parse(out) as T;
    } finally {
      channel.close();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }
}

/** The XOR of the first 8 bytes of every page of buf (as mmap_read's `check`), as hex. */
export function pageCheck(bufs: Buffer[]): string {
  let check = 0n;
  for (const b of bufs) for (let i = 0; i + 8 <= b.length; i += PAGE) check ^= b.readBigUInt64LE(i);
  return check.toString(16).padStart(16, '0');
}

// ---------------------------------------------------------------------------------------------
// The kernel's ext4 over a loop device.

export class LoopMount {
  private detach: () => void;
  private unmount: (() => void) | null = null;

  private constructor(
    readonly device: string,
    readonly mountPoint: string,
  ) {
    this.detach = onCleanup(`loop device ${device}`, () => {
      if (!shQuiet('losetup', ['-d', device])) throw new Error(`losetup -d ${device} failed`);
    });
  }

  /** losetup --direct-io=on --read-only: the loop device reads the image with O_DIRECT. */
  static attach(image: string, mountPoint: string): LoopMount {
    const device = sh('losetup', ['--find', '--show', '--direct-io=on', '--read-only', image]).trim();
    const loop = new LoopMount(device, mountPoint);
    const dio = sh('losetup', ['-n', '-O', 'DIO', device]).trim();
    if (dio !== '1') process.stderr.write(`bench: ${device} did not take --direct-io=on (DIO=${dio})\n`);
    fs.mkdirSync(mountPoint, { recursive: true });
    return loop;
  }

  get readaheadKb(): number {
    return Number(fs.readFileSync(this.sysfs(), 'utf8').trim());
  }

  set readaheadKb(kb: number) {
    fs.writeFileSync(this.sysfs(), String(kb));
  }

  private sysfs(): string {
    return `/sys/block/${path.basename(this.device)}/queue/read_ahead_kb`;
  }

  /** A fresh mount: nothing of the file is in the ext4 page cache (unmount drops it all). */
  mount(): void {
    if (this.unmount) this.unmount();
    sh('mount', ['-t', 'ext4', '-o', 'ro', this.device, this.mountPoint]);
    this.unmount = onCleanup(`mount ${this.mountPoint}`, () => umount(this.mountPoint));
  }

  close(): void {
    if (this.unmount) this.unmount();
    this.unmount = null;
    this.detach();
  }
}

function umount(mountPoint: string): void {
  if (shQuiet('umount', [mountPoint])) return;
  // Busy (a reader killed mid-way): detach lazily rather than leave it mounted.
  if (!shQuiet('umount', ['-l', mountPoint])) throw new Error(`umount ${mountPoint} failed`);
}

// ---------------------------------------------------------------------------------------------
// fuse2fs.

/** Why fuse2fs cannot run here, or null if it can. */
export function fuse2fsUnavailable(): string | null {
  try {
    sh('sh', ['-c', 'command -v fuse2fs']);
  } catch {
    return 'fuse2fs is not installed (scripts/install-system-deps.sh installs it)';
  }
  if (!fs.existsSync('/dev/fuse')) return '/dev/fuse does not exist';
  try {
    fs.closeSync(fs.openSync('/dev/fuse', 'r+'));
  } catch (e) {
    return `/dev/fuse cannot be opened: ${(e as Error).message}`;
  }
  return null;
}

export class Fuse2fsMount {
  private unmount: () => void;

  private constructor(readonly mountPoint: string) {
    this.unmount = onCleanup(`fuse2fs ${mountPoint}`, () => umount(mountPoint));
  }

  /** A fresh fuse2fs process: its own caches and the kernel's FUSE page cache start empty. */
  static async mount(image: string, mountPoint: string): Promise<Fuse2fsMount> {
    fs.mkdirSync(mountPoint, { recursive: true });
    sh('fuse2fs', ['-o', 'ro,fakeroot', image, mountPoint]);
    const m = new Fuse2fsMount(mountPoint);
    for (let i = 0; i < 200 && !shQuiet('mountpoint', ['-q', mountPoint]); i++) await sleep(10);
    if (!shQuiet('mountpoint', ['-q', mountPoint])) {
      m.close();
      throw new Error(`fuse2fs did not mount ${image} on ${mountPoint}`);
    }
    return m;
  }

  close(): void {
    this.unmount();
  }
}

// ---------------------------------------------------------------------------------------------
// This project: a server in a child process, read through the real client library.

export interface ServerStats {
  connections: number;
  pagers: number;
  files: number;
  faults: number;
  bytesSupplied: number;
  bytesZeroed: number;
  failures: number;
}

export class ServerProcess {
  private readonly lines: AsyncIterator<string>;
  private stopCleanup: () => void;

  private constructor(
    readonly child: ChildProcess,
    readonly svcDir: string,
  ) {
    this.lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    this.stopCleanup = onCleanup(`server ${child.pid}`, () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    child.once('exit', () => this.stopCleanup()); // gone: nothing left to kill
  }

  /** nodeArgs: options for the server's node (e.g. --cpu-prof, to profile it); traceFile: serve with --trace;
   *  hugePages: the server's --huge-pages (default never: the 4 KiB rows stay what they were). */
  static async start(
    svcDir: string,
    readahead: 'fixed' | 'adaptive',
    nodeArgs: string[] = [],
    traceFile?: string,
    hugePages: 'never' | 'auto' | 'always' = 'never',
  ): Promise<ServerProcess> {
    fs.mkdirSync(svcDir, { recursive: true });
    const script = path.join(__dirname, 'server.js');
    const traceArgs = traceFile !== undefined ? [`--trace=${traceFile}`] : [];
    const child = spawn(process.execPath, [...nodeArgs, script, svcDir, readahead, ...traceArgs, `--huge-pages=${hugePages}`], { stdio: ['pipe', 'pipe', 'inherit'] });
    const server = new ServerProcess(child, svcDir);
    const first = await server.lines.next();
    if (first.done || first.value !== 'ready') {
      server.stop();
      throw new Error(`bench server did not start (said ${JSON.stringify(first.value)})`);
    }
    return server;
  }

  get pid(): number {
    return this.child.pid!;
  }

  async stats(): Promise<ServerStats> {
    this.child.stdin!.write('stats\n');
    const line = await this.lines.next();
    if (line.done) throw new Error('bench server exited');
    return JSON.parse(line.value) as ServerStats;
  }

  /** Waits until the server has forgotten every file (all handles and mappings closed);
   *  returns how many it still holds when the time is up (0: all forgotten). */
  async filesHeldAfter(timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.stats();
      if (s.files === 0 || Date.now() > deadline) return s.files;
      await sleep(5);
    }
  }

  /** The same, as a precondition: throws if a file is still held after timeoutMs. */
  async waitForgotten(timeoutMs = 20000): Promise<void> {
    const held = await this.filesHeldAfter(timeoutMs);
    if (held > 0) throw new Error(`the server still holds ${held} files ${timeoutMs} ms after the last close`);
  }

  /** VmRSS and its parts (KiB), and open fds, of the server process. */
  memory(): { rssKiB: number; anonKiB: number; fileKiB: number; shmemKiB: number; fds: number } {
    const status = fs.readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
    return {
      rssKiB: field('VmRSS'),
      anonKiB: field('RssAnon'),
      fileKiB: field('RssFile'),
      shmemKiB: field('RssShmem'),
      fds: fs.readdirSync(`/proc/${this.pid}/fd`).length,
    };
  }

  /** CPU time (user + system, ms) the server process has used so far. */
  cpuMs(): number {
    const stat = fs.readFileSync(`/proc/${this.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
    return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
  }

  /** SIGTERM (the server closes its service and exits, writing a --cpu-prof profile if asked);
   *  SIGKILL if it has not exited 5 s later. */
  stop(): void {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const kill = setTimeout(() => this.stopCleanup(), 5000);
    kill.unref();
    this.child.once('exit', () => clearTimeout(kill));
  }

  async stopped(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await new Promise((r) => this.child.once('exit', r));
  }
}

/** A client session against a server: one connection, one pager over the image. */
export class PagerClientSession {
  private constructor(
    readonly connection: PagerClientConnection,
    readonly pager: RemotePager,
  ) {}

  static open(svcDir: string, image: string): PagerClientSession {
    const connection = PagerClientConnection.connect(svcDir);
    const pager = connection.createPager(fs.openSync(image, 'r'), PAGE);
    return new PagerClientSession(connection, pager);
  }

  /** Registers the files one call at a time: every handle, each call's latency (us), the whole time (s). */
  async registerEach(files: BenchImage['small']): Promise<{ held: PagedFile[]; latenciesUs: number[]; seconds: number }> {
    const held: PagedFile[] = [];
    const latenciesUs: number[] = [];
    const t0 = process.hrtime.bigint();
    try {
      for (const f of files) {
        const c0 = process.hrtime.bigint();
        held.push(await this.pager.registerFile({ name: f.name, inode: f.ino, size: f.size, extents: f.extents }));
        latenciesUs.push(Number(process.hrtime.bigint() - c0) / 1000);
      }
    } catch (e) {
      for (const h of held) h.close();
      throw e;
    }
    return { held, latenciesUs, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
  }

  /** Registers the files with `inFlight` calls outstanding at once: every handle, the whole time (s). */
  async registerPipelined(files: BenchImage['small'], inFlight: number): Promise<{ held: PagedFile[]; seconds: number }> {
    const held: PagedFile[] = [];
    const t0 = process.hrtime.bigint();
    let next = 0;
    const worker = async () => {
      while (next < files.length) {
        const f = files[next++];
        held.push(await this.pager.registerFile({ name: f.name, inode: f.ino, size: f.size, extents: f.extents }));
      }
    };
    try {
      await Promise.all(Array.from({ length: inFlight }, worker));
    } catch (e) {
      for (const h of held) h.close();
      throw e;
    }
    return { held, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
  }

  registerBig(img: BenchImage): Promise<PagedFile> {
    return this.pager.registerFile({ name: img.bigPath, inode: img.big.ino, size: img.big.size, extents: img.big.extents });
  }

  close(): void {
    this.pager.close();
    this.connection.close();
  }
}

/** Shmem in /proc/meminfo, KiB: memfd pages (and tmpfs files) are counted there. */
export function shmemKiB(): number {
  const m = /^Shmem:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
  if (!m) throw new Error('/proc/meminfo has no Shmem line');
  return Number(m[1]);
}

/** This process's RssAnon and RssShmem, KiB. */
export function selfRss(): { anonKiB: number; shmemKiB: number } {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  return { anonKiB: field('RssAnon'), shmemKiB: field('RssShmem') };
}
