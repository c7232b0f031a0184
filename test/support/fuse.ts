// Mounts the test FUSE file system (test/support/fuse/stallfs.c) for tests of a backing on a
// file system that fails or stops answering: one file served from a backing file, whose reads
// can fail with EIO in chosen byte ranges, and whose GETATTR or READ can stall until released.
//
//   const reason = stallfsUnavailable();           // null, or why it cannot run here
//   (reason === null ? test : test.skip)(`... ${reason ?? ''}`, async () => {
//     const fsys = await mountStallfs(backingPath, { fail: [[8192, 12288]] });
//     try { ... fsys.filePath ...; fsys.control('stall-read 1'); await fsys.waitStalling(1); }
//     finally { await fsys.unmount(); }
//   });
//
// The binary is built on first use with Debian's libfuse3-dev (test/support/fuse/build.sh) into
// build-test/stallfs; `npm run build:stallfs` builds it too. Nothing is downloaded.
import { ChildProcess, execFileSync, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const REPO = path.resolve(__dirname, '..', '..');
const SOURCE_DIR = path.join(REPO, 'test', 'support', 'fuse');
const BINARY = path.join(REPO, 'build-test', 'stallfs');

function onPath(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

function fusermount(): string | null {
  if (onPath('fusermount3')) return 'fusermount3';
  if (onPath('fusermount')) return 'fusermount';
  return null;
}

let unavailable: string | null | undefined;

/** null when stallfs can be mounted here, else the reason (for a test.skip's name). */
export function stallfsUnavailable(): string | null {
  if (unavailable !== undefined) return unavailable;
  unavailable = null;
  try {
    fs.accessSync('/dev/fuse', fs.constants.R_OK | fs.constants.W_OK);
  } catch (e) {
    unavailable = `no usable /dev/fuse (${(e as NodeJS.ErrnoException).code})`;
    return unavailable;
  }
  if (fusermount() === null) {
    unavailable = 'no fusermount3 (Debian fuse3; scripts/install-system-deps.sh)';
  } else if (!onPath('cc') || spawnSync('pkg-config', ['--exists', 'fuse3']).status !== 0) {
    unavailable = 'no C compiler or libfuse3-dev (scripts/install-system-deps.sh)';
  }
  return unavailable;
}

/** Builds stallfs unless the binary is newer than its source; returns its path. */
export function buildStallfs(): string {
  const src = path.join(SOURCE_DIR, 'stallfs.c');
  let fresh = false;
  try {
    fresh = fs.statSync(BINARY).mtimeMs >= fs.statSync(src).mtimeMs;
  } catch {
    fresh = false;
  }
  if (!fresh) execFileSync('bash', [path.join(SOURCE_DIR, 'build.sh'), BINARY], { stdio: ['ignore', 'pipe', 'pipe'] });
  return BINARY;
}

export interface StallfsOptions {
  /** Name of the served file (default "backing"). */
  name?: string;
  /** Byte ranges [start, end) whose reads fail with EIO from the start. */
  fail?: Array<[number, number]>;
  stallRead?: boolean;
  stallGetattr?: boolean;
  /** FOPEN_DIRECT_IO: every read reaches the daemon (no page cache). */
  directIo?: boolean;
}

export interface StallfsCounters {
  reads: number;
  stalled_reads: number;
  getattrs: number;
  stalled_getattrs: number;
  /** Requests stalled right now. */
  stalling: number;
  failed_reads: number;
}

export interface Stallfs {
  mountpoint: string;
  /** The served file. */
  filePath: string;
  pid: number;
  /** Runs control lines: "stall-read 1|0", "stall-getattr 1|0", "fail START END", "fail-clear", "release". */
  control(line: string): void;
  counters(): StallfsCounters;
  /** Waits until at least n requests are stalled in the daemon (so the caller knows it is stuck). */
  waitStalling(n: number, timeoutMs?: number): Promise<StallfsCounters>;
  /** Releases every stall (also through SIGUSR1), unmounts, and ends the daemon. Bounded in time. */
  unmount(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/** Mounts stallfs serving `backing` on a fresh directory; resolves once the mount is up. */
export async function mountStallfs(backing: string, opts: StallfsOptions = {}): Promise<Stallfs> {
  const reason = stallfsUnavailable();
  if (reason !== null) throw new Error(`stallfs cannot run here: ${reason}`);
  const binary = buildStallfs();
  const mountpoint = fs.mkdtempSync(path.join(os.tmpdir(), 'stallfs-'));
  const name = opts.name ?? 'backing';
  const args = [backing, mountpoint, '--name', name];
  for (const [s, e] of opts.fail ?? []) args.push('--fail', `${s}:${e}`);
  if (opts.stallRead) args.push('--stall-read');
  if (opts.stallGetattr) args.push('--stall-getattr');
  if (opts.directIo) args.push('--direct-io');
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`stallfs did not mount within 10 s: ${stderr}`)), 10000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('mounted ')) {
        clearTimeout(t);
        resolve();
      }
    });
    child.once('exit', (code, sig) => {
      clearTimeout(t);
      reject(new Error(`stallfs exited (${code ?? sig}) before mounting: ${stderr.trim()}`));
    });
  });
  const controlPath = path.join(mountpoint, '.control');
  // The FUSE connection's number (for /sys/fs/fuse/connections/N/abort) is the mount's minor.
  const dev = fs.statSync(mountpoint).dev;
  const connection = (dev & 0xff) | ((dev >>> 12) & 0xfff00);

  const counters = (): StallfsCounters => {
    const text = fs.readFileSync(controlPath, 'utf8').trim().split(/\s+/);
    const out: Record<string, number> = {};
    for (let i = 0; i + 1 < text.length; i += 2) out[text[i]] = Number(text[i + 1]);
    return out as unknown as StallfsCounters;
  };
  let unmounted = false;
  return {
    mountpoint,
    filePath: path.join(mountpoint, name),
    pid: child.pid!,
    control(line: string) {
      fs.writeFileSync(controlPath, line + '\n');
    },
    counters,
    async waitStalling(n: number, timeoutMs = 10000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const c = counters();
        if (c.stalling >= n) return c;
        if (Date.now() > deadline) throw new Error(`stallfs: ${n} stalled requests expected, counters ${JSON.stringify(c)}`);
        await sleep(10);
      }
    },
    async unmount() {
      if (unmounted) return;
      unmounted = true;
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGUSR1'); // release every stall
      // Lazy: detaches at once even while a process still holds the file; the daemon then serves
      // what is left and ends on SIGTERM.
      spawnSync(fusermount() ?? 'fusermount3', ['-u', '-z', mountpoint], { stdio: 'ignore', timeout: 5000 });
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      if (!(await waitExit(child, 5000))) {
        // Still stuck: cut the connection (every request fails with ENOTCONN) and kill it.
        try {
          fs.writeFileSync(`/sys/fs/fuse/connections/${connection}/abort`, '1');
        } catch {
          /* not mounted any more, or no fusectl */
        }
        child.kill('SIGKILL');
        await waitExit(child, 5000);
      }
      try {
        fs.rmdirSync(mountpoint);
      } catch {
        /* still busy: left in the temporary directory */
      }
    },
  };
}
