// Shared by the hostile, fault and load suites: a real server in its own process, a real ext4
// image whose source files are the oracle, a well-behaved client, and the counters that tell
// whether anything leaked (the server's fds, its memory, the machine's Shmem).
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PagerClientConnection } from '../../src/client';
import { Ext4Image } from '../../src/ext4';
import type { PagerExtent } from '../../src/gen/fuchsia_starnix_runner';
import * as crypto from 'crypto';
import { native } from '../../src/native';
import { makeImage } from '../support/images';

/** Deterministic pseudo-random bytes from AES-128-CTR keyed by `seed`: fast enough for 100s of MiB. */
export function streamBytes(seed: number, length: number): Buffer {
  const key = crypto.createHash('sha256').update(`hostile-${seed}`).digest().subarray(0, 16);
  return crypto.createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

export const REPO = path.resolve(__dirname, '..', '..');
/** Compiled helpers (npm test builds dist/ first). */
export const DIST_HOSTILE = path.join(REPO, 'dist', 'test', 'hostile');

// ---------- waiting ----------

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls cond until it holds; on timeout throws with `what` and the last value seen. */
export async function waitFor<T>(get: () => T, ok: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let v = get();
  while (!ok(v)) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last value: ${JSON.stringify(v)})`);
    await sleep(20);
    v = get();
  }
  return v;
}

// ---------- counters ----------

export function fdCountOf(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** What the fds of a process are (readlink of each), for leak reports. */
export function fdKindsOf(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    let link: string;
    try {
      link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    const kind = link.replace(/\[\d+\]$/, '').replace(/^\/memfd:.*/, 'memfd').replace(/^\/.*/, 'path');
    out[kind] = (out[kind] ?? 0) + 1;
  }
  return out;
}

/** A field of /proc/PID/status in KiB (VmRSS, RssAnon, RssShmem...). */
export function statusKb(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]);
}

/** The machine's Shmem (memfd and tmpfs pages) in KiB, from /proc/meminfo. */
export function shmemKb(): number {
  const m = /^Shmem:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
  return Number(m![1]);
}

/** memfds of the pager's files open in a process (named ext4!<name>). */
export function pagerMemfdsOf(pid: number): number {
  let n = 0;
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('/memfd:ext4!')) n++;
    } catch {
      /* closed meanwhile */
    }
  }
  return n;
}

// ---------- the server process ----------

export interface ServerOptions {
  allowUids?: number[];
  limits?: Record<string, number>;
  /** The server's budget (src/server/budget.ts BudgetLimits): totals and shares. */
  budget?: Record<string, number>;
  threads?: number;
  /** Run the real CLI (`bin/starnix-pager serve`) instead of the test server (which takes limits). */
  cli?: boolean;
  /** Run the server under `prlimit --nofile=N:N` (its RLIMIT_NOFILE, soft and hard), or 'SOFT:HARD'. */
  nofile?: number | string;
  /** STARNIX_PAGER_LOG for the server (default: the environment's, else error). */
  logLevel?: string;
  /** Extra CLI arguments (with cli). */
  cliArgs?: string[];
}

export class ServerProcess {
  private exited: Promise<number | null>;
  stderr = '';

  private constructor(
    readonly child: ChildProcess,
    readonly svcDir: string,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
      if (this.stderr.length > 200_000) this.stderr = this.stderr.slice(-100_000);
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Starts a server in svcDir and waits until it accepts connections. */
  static async start(svcDir: string, opts: ServerOptions = {}): Promise<ServerProcess> {
    const level = opts.logLevel ?? process.env.STARNIX_PAGER_LOG ?? 'error';
    const env = { ...process.env, STARNIX_PAGER_LOG: level };
    let child: ChildProcess;
    // Under prlimit, the server is prlimit's child: exec'ed in place, so the pid is the server's.
    const launch = (args: string[]): ChildProcess =>
      opts.nofile === undefined
        ? spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn('prlimit', [`--nofile=${typeof opts.nofile === 'string' ? opts.nofile : `${opts.nofile}:${opts.nofile}`}`, process.execPath, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    if (opts.cli) {
      const args = [path.join(REPO, 'bin', 'starnix-pager'), 'serve', '--svc-dir', svcDir, '--log-level', level, ...(opts.cliArgs ?? [])];
      for (const u of opts.allowUids ?? []) args.push('--allow-uid', String(u));
      child = launch(args);
    } else {
      child = launch([path.join(DIST_HOSTILE, 'server_child.js'), JSON.stringify({ svcDir, ...opts })]);
    }
    const server = new ServerProcess(child, svcDir);
    // Ready when both sockets accept a connection (a socket file can exist before listen()).
    const deadline = Date.now() + 15_000;
    for (const name of ['fuchsia.starnix.runner.Manager', 'starnix.pager.Mapper']) {
      for (;;) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited early: ${server.stderr}`);
        if (Date.now() > deadline) throw new Error(`server did not start: ${server.stderr}`);
        try {
          fs.closeSync(native.connectSocket(path.join(svcDir, name)) as number);
          break;
        } catch {
          await sleep(20);
        }
      }
    }
    return server;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  fdCount(): number {
    return fdCountOf(this.pid);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.alive) this.child.kill(signal);
    await this.exited;
  }

  waitExit(): Promise<number | null> {
    return this.exited;
  }
}

// ---------- the image ----------

export interface ImageFile {
  path: string;
  ino: number;
  size: bigint;
  extents: PagerExtent[];
  data: Buffer;
}

export interface TestImage {
  dir: string;
  image: string;
  blockSize: number;
  files: ImageFile[];
}

/**
 * An ext4 image (mkfs.ext4 -d) holding `sizes.length` files of seeded bytes; the registrations
 * (inode, size, extents) come from the project's ext4 reader, the expected bytes from the files.
 */
export function buildImage(sizes: number[], opts: { blockSize?: 1024 | 2048 | 4096; seed?: number } = {}): TestImage {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hostile-img-'));
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  const datas: Buffer[] = [];
  sizes.forEach((size, i) => {
    const data = streamBytes((opts.seed ?? 1) * 1000 + i, size);
    datas.push(data);
    fs.writeFileSync(path.join(src, `f${i}`), data);
  });
  const total = sizes.reduce((a, b) => a + b, 0);
  const image = path.join(dir, 'image.ext4');
  const blockSize = opts.blockSize ?? 4096;
  makeImage({ dir: src, out: image, blockSize, sizeMiB: Math.max(16, Math.ceil((total * 1.15) / (1 << 20)) + 8) });
  const img = Ext4Image.open(image);
  try {
    const files = sizes.map((_, i) => {
      const st = img.stat(`/f${i}`);
      if (st.inlineData !== undefined) throw new Error(`f${i} is inline: make it larger`);
      return { path: `/f${i}`, ino: st.ino, size: st.size, extents: st.extents ?? [], data: datas[i] };
    });
    return { dir, image, blockSize, files };
  } finally {
    img.close();
  }
}

export function removeImage(img: TestImage): void {
  fs.rmSync(img.dir, { recursive: true, force: true });
}

// ---------- a well-behaved client ----------

/**
 * The check run after every hostile case: a fresh client connects, creates a pager over the
 * image, registers a file, maps it and reads it all; every byte must match the source file.
 */
export async function wellBehavedRead(svcDir: string, img: TestImage, fileIndex = 0): Promise<void> {
  const client = PagerClientConnection.connect(svcDir);
  try {
    const pager = client.createPager(fs.openSync(img.image, 'r'), img.blockSize);
    const f = img.files[fileIndex];
    const file = await pager.registerFile({ name: f.path, inode: f.ino, size: f.size, extents: f.extents });
    const mapping = await file.map();
    try {
      const got = await mapping.readAsync(0, Number(f.size));
      if (!got.equals(f.data)) throw new Error(`well-behaved client read wrong bytes from ${f.path}`);
    } finally {
      mapping.close();
      file.close();
      pager.close();
    }
  } finally {
    client.close();
  }
}

/** What a process holds that a client could make it hold for good. */
export interface ProcessCounters {
  fds: number;
  threads: number;
  inotify: number;
  /** VmSize in KiB: the address space mapped (every registered file is mapped whole). */
  vmKb: number;
}

export function countersOf(pid: number): ProcessCounters {
  let inotify = 0;
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:inotify') inotify++;
    } catch {
      /* closed meanwhile */
    }
  }
  return { fds: fdCountOf(pid), threads: fs.readdirSync(`/proc/${pid}/task`).length, inotify, vmKb: statusKb(pid, 'VmSize') };
}

/**
 * Waits until every counter is back to (at most) its baseline; VmSize within `vmSlackKb`: V8's
 * heap moves on its own, and glibc keeps the malloc arena of every thread that ever ran (64 MiB of
 * address space each, reserved), so pager threads that came and went leave some behind. The
 * attacks this checks for are measured in TiB.
 */
export async function expectCountersBack(pid: number, base: ProcessCounters, what: string, timeoutMs = 8000, vmSlackKb = 1024 * 1024): Promise<void> {
  try {
    await waitFor(
      () => countersOf(pid),
      (c) => c.fds <= base.fds && c.threads <= base.threads && c.inotify <= base.inotify && c.vmKb <= base.vmKb + vmSlackKb,
      timeoutMs,
      `server counters back to ${JSON.stringify(base)} after ${what}`,
    );
  } catch (e) {
    throw new Error(`${(e as Error).message}; server fds now: ${JSON.stringify(fdKindsOf(pid))}`);
  }
}

/** Waits until the server's fd count is back to `baseline` (connections close asynchronously). */
export async function expectFdsBack(server: ServerProcess, baseline: number, what: string, timeoutMs = 5000): Promise<void> {
  try {
    await waitFor(() => server.fdCount(), (n) => n <= baseline, timeoutMs, `server fds back to ${baseline} after ${what}`);
  } catch (e) {
    throw new Error(`${(e as Error).message}; server fds now: ${JSON.stringify(fdKindsOf(server.pid))}`);
  }
}

// ---------- client processes ----------

export interface ClientChild {
  child: ChildProcess;
  /** The first line it prints ("mapped", a JSON report, or "error ..."). */
  firstLine: Promise<string>;
  /** Everything it printed, once it exits. */
  output: Promise<string>;
}

/** Spawns test/hostile/client_child.js with `args` (files given as ImageFile are serialised). */
export function spawnClient(args: Record<string, unknown> & { files: ImageFile[] }, opts: { uid?: number; gid?: number } = {}): ClientChild {
  const files = args.files.map((f) => ({
    path: f.path,
    ino: f.ino,
    size: String(f.size),
    extents: f.extents.map((e) => ({ logicalStart: e.logicalStart, logicalEnd: e.logicalEnd, physicalBlock: String(e.physicalBlock) })),
  }));
  const child = spawn(process.execPath, [path.join(DIST_HOSTILE, 'client_child.js'), JSON.stringify({ ...args, files })], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, STARNIX_PAGER_LOG: 'error' },
    uid: opts.uid,
    gid: opts.gid,
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const firstLine = new Promise<string>((resolve) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.once('exit', () => resolve(out.split('\n')[0] || `exited without output: ${err.slice(-500)}`));
  });
  const output = new Promise<string>((resolve) => child.once('exit', () => resolve(out + err)));
  return { child, firstLine, output };
}
