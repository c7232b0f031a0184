// A backing whose FUSE READ stalls (issue 12, item 3): a client's backing is a file on stallfs
// (test/support/fuse) whose daemon stops answering READ, so the pager thread serving that client's
// fault is stuck in the kernel, in a read of the backing that only the daemon can end (the kernel
// waits such a request out even on SIGKILL). While it is stuck:
//   (a) other clients of the same server, with their own pagers, are served;
//   (b) the stuck client leaves, so its pager stops: Pager::Stop does not wait for the thread,
//       and the server's JavaScript thread goes on answering; the pager's budget charge stays
//       until the thread leaves (its thread and fds are still in use);
//   (c) SIGTERM ends the whole server in bounded time (the CLI, with its native watchdog), and the
//       stuck client's read then fails (EIO or EPIPE) instead of waiting for ever;
//   (d) once the stall is released, the stuck thread leaves and the server's fds and threads are
//       back to their baseline.
// Every stall is released and the FUSE mount taken down in `finally` (stallfs's unmount aborts the
// FUSE connection if the daemon does not end), so jest never waits on a stuck request.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PagerClientConnection } from '../../src/client';
import { ZX } from '../../src/zx_status';
import { Stallfs, mountStallfs, stallfsUnavailable } from '../support/fuse';
import {
  DIST_HOSTILE,
  ImageFile,
  ServerProcess,
  TestImage,
  buildImage,
  countersOf,
  expectCountersBack,
  removeImage,
  sleep,
  waitFor,
  wellBehavedRead,
} from './support';

const reason = stallfsUnavailable();
const maybe = reason === null ? test : test.skip;
const why = reason === null ? '' : ` (skipped: ${reason})`;

let img: TestImage;

beforeAll(() => {
  // f0: the stalled client's file (several read-ahead windows); f1: the other clients'.
  img = buildImage([(3 << 20) + 1000, 300_000], { seed: 71 });
}, 60_000);

afterAll(() => {
  if (img) removeImage(img);
});

/** Resolves with the value, or rejects after ms naming what did not answer. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

/** The server's threads: name, state and kernel wait channel (what a stuck one waits in). */
function threadsOf(pid: number): { tid: string; name: string; state: string; wchan: string }[] {
  const out = [];
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
      const wchan = fs.readFileSync(`/proc/${pid}/task/${tid}/wchan`, 'utf8');
      out.push({ tid, name, state, wchan });
    } catch {
      /* the thread left meanwhile */
    }
  }
  return out;
}

/** Creates n pagers at once on one connection and registers a file with each: the status of each
 *  (0 or the epitaph's: NO_RESOURCES past the pager budget). All are closed before it returns. */
async function pagerStatuses(svcDir: string, n: number): Promise<number[]> {
  const conn = PagerClientConnection.connect(svcDir);
  const f = img.files[1];
  const pagers = Array.from({ length: n }, () => conn.createPager(fs.openSync(img.image, 'r'), img.blockSize));
  try {
    return await Promise.all(
      pagers.map((p) =>
        p.registerFile({ name: f.path, inode: f.ino, size: f.size, extents: f.extents }).then(
          (file) => {
            file.close();
            return 0;
          },
          (e: { status?: number }) => e.status ?? -1,
        ),
      ),
    );
  } finally {
    for (const p of pagers) p.close();
    conn.close();
  }
}

/** The server's counters once its thread and fd counts have stayed the same for a second. */
async function settledCounters(pid: number): Promise<ReturnType<typeof countersOf>> {
  let last = countersOf(pid);
  for (let same = 0; same < 5; ) {
    await sleep(200);
    const now = countersOf(pid);
    same = now.threads === last.threads && now.fds === last.fds ? same + 1 : 0;
    last = now;
  }
  return last;
}

/** Waits until the server's log has a line matching re. */
async function waitForLog(server: ServerProcess, re: RegExp, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!re.test(server.stderr)) {
    if (Date.now() > deadline) throw new Error(`the server did not log ${re} within ${ms} ms; its log ends: ${server.stderr.slice(-1500)}`);
    await sleep(20);
  }
}

/** The stalled client: a process of its own (its read waits on a fault the pager cannot serve). */
class StallClient {
  readonly child: ChildProcess;
  private out = '';
  private exited: Promise<void>;

  constructor(svcDir: string, backing: string, file: ImageFile, oDirect = false) {
    const arg = {
      svcDir,
      oDirect,
      backing,
      blockSize: img.blockSize,
      file: {
        path: file.path,
        ino: file.ino,
        size: String(file.size),
        extents: file.extents.map((e) => ({ logicalStart: e.logicalStart, logicalEnd: e.logicalEnd, physicalBlock: String(e.physicalBlock) })),
      },
    };
    this.child = spawn(process.execPath, [path.join(DIST_HOSTILE, 'stall_client_child.js'), JSON.stringify(arg)], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, STARNIX_PAGER_LOG: 'error' },
    });
    this.child.stdout!.on('data', (d: Buffer) => (this.out += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.out += d.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
  }

  /** Waits for a line starting with `prefix`; returns it. */
  async line(prefix: string, ms: number): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.out.split('\n').find((l) => l.startsWith(prefix));
      if (found !== undefined) return found;
      if (/^error /m.test(this.out)) throw new Error(`stall client failed: ${this.out}`);
      if (Date.now() > deadline) throw new Error(`stall client: no "${prefix}" within ${ms} ms; it said: ${JSON.stringify(this.out)}`);
      await sleep(20);
    }
  }

  send(command: string): void {
    this.child.stdin!.write(command + '\n');
  }

  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** Mounts stallfs over the image, READ not stalled yet (the client opens and registers first). */
async function stalledSetup(directIo = false): Promise<{ fsys: Stallfs; tmp: string }> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hostile-stalled-read-'));
  const fsys = await mountStallfs(img.image, { directIo });
  return { fsys, tmp };
}

/** Releases every stall and takes the mount down (bounded: the connection is aborted if need be). */
async function teardown(fsys: Stallfs | undefined, tmp: string | undefined, ...rest: Array<{ kill(): Promise<void> } | ServerProcess | undefined>): Promise<void> {
  if (fsys) {
    try {
      fsys.control('release');
    } catch {
      /* the daemon is gone: unmount aborts the connection */
    }
  }
  for (const r of rest) {
    if (r instanceof ServerProcess) await within(r.stop('SIGKILL'), 15_000, 'the server exiting on SIGKILL').catch(() => undefined);
    else if (r) await within(r.kill(), 15_000, 'a client exiting on SIGKILL').catch(() => undefined);
  }
  if (fsys) await fsys.unmount();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
}

/** Starts the stalled client and leaves one pager thread of the server stuck in the backing's READ. */
async function stickAThread(server: ServerProcess, fsys: Stallfs, offset = 0, oDirect = false): Promise<StallClient> {
  const client = new StallClient(server.svcDir, fsys.filePath, img.files[0], oDirect);
  await client.line('mapped', 15_000);
  const before = fsys.counters().stalled_reads;
  fsys.control('stall-read 1');
  client.send(`read ${offset}`);
  await fsys.waitStalling(1, 10_000);
  expect(fsys.counters().stalled_reads).toBeGreaterThan(before);
  // A pager thread of the server waits in the kernel (a page fault on the backing's mapping, or a
  // pread): not running, and not in epoll_wait like an idle one.
  const pagers = threadsOf(server.pid).filter((t) => /^pager-\d+$/.test(t.name));
  const stuck = pagers.filter((t) => !/epoll/.test(t.wchan));
  expect({ stuck: stuck.length > 0, pagers }).toMatchObject({ stuck: true });
  if (process.env.STALL_DEBUG) console.log(JSON.stringify(threadsOf(server.pid)));
  return client;
}

maybe(
  `a pager thread stuck in a stalled FUSE READ: other clients are served, its pager stops at once when it leaves, and once released fds and threads come back${why}`,
  async () => {
    let fsys: Stallfs | undefined;
    let tmp: string | undefined;
    let server: ServerProcess | undefined;
    let client: StallClient | undefined;
    try {
      ({ fsys, tmp } = await stalledSetup());
      // Three pagers in all (root may use all of them), so that the stuck one's charge shows.
      server = await ServerProcess.start(path.join(tmp, 'svc'), { logLevel: 'info', budget: { pagers: 3, uidShare: 1, connectionShare: 1 } });
      await wellBehavedRead(server.svcDir, img, 1); // warm: libuv's and V8's own threads exist now
      const base = await settledCounters(server.pid); // ...and the warm-up's pager is gone
      client = await stickAThread(server, fsys);
      // Every other pager freed (its threads gone, its charge back): only the stuck pager's threads
      // are left (both while it runs, the stuck one once it stopped).
      const othersFreed = (stuckPagerThreads: number): Promise<unknown> =>
        waitFor(() => countersOf(server!.pid).threads, (n) => n <= base.threads + stuckPagerThreads, 10_000, 'the other pagers freed');

      // (a) Others are served meanwhile, each with its own pager over the same server.
      for (let i = 0; i < 3; i++) {
        await within(wellBehavedRead(server.svcDir, img, i % 2), 10_000, `well-behaved client ${i} while a pager thread is stuck`);
        await othersFreed(2);
      }

      // (b) The stuck client leaves (SIGKILL: its own wait on the fault is killable). Its file is
      // forgotten (an idle pager thread reads the close events), so the pager stops: Pager::Stop
      // runs on the server's JavaScript thread and must not wait for the stuck thread. The server
      // says so and answers the next client at once.
      await client.kill();
      await waitForLog(server, /pager stopped/, 5_000);
      await within(wellBehavedRead(server.svcDir, img, 1), 10_000, 'a well-behaved client after the stuck pager stopped');
      expect(fsys.counters().stalling).toBeGreaterThanOrEqual(1); // still stuck: nothing above waited for it
      expect(server.alive).toBe(true);
      // The stopped pager's thread and fds are still there, and so is its charge: of the 3 pagers
      // of the budget, 2 are left (it was given back at stop, so a client could leave any number
      // of stuck pagers behind).
      await othersFreed(1);
      await sleep(1100); // a freed pager's charge goes back at the next look (at most 1 s apart)
      expect((await pagerStatuses(server.svcDir, 3)).sort()).toEqual([ZX.NO_RESOURCES, 0, 0].sort());

      // (d) Released, the stuck thread finishes its read, sees the stop and leaves; the last
      // reference to the pager goes with it, and its fds (backing, epoll, eventfds, uffds, memfd) close.
      fsys.control('release');
      fsys.control('stall-read 0');
      await expectCountersBack(server.pid, base, 'the stalled pager was closed and its read released', 10_000);
      await othersFreed(0);
      await sleep(1100);
      expect(await pagerStatuses(server.svcDir, 3)).toEqual([0, 0, 0]);
    } finally {
      await teardown(fsys, tmp, client, server);
    }
  },
  90_000,
);

// The fault's page is copied straight from the backing's mapping (UFFDIO_COPY), or, for the file's
// last partial page, assembled from it (process_vm_readv): both wait for the page killably. The
// client may have opened its backing O_DIRECT (the server's dup shares the flag): a pread of it
// would then be a FUSE request the kernel waits out even on SIGKILL, and the server would never
// end (so it was before the pager read backings only through their mapping).
const lastPage = Math.floor(((3 << 20) + 1000) / 4096) * 4096;
describe.each([
  ['its first page (copied from the backing\'s mapping)', 0, false],
  ['its last, partial page (assembled from the backing\'s mapping)', lastPage, false],
  ['its last, partial page of a backing opened O_DIRECT', lastPage, true],
])('a fault on %s', (_, offset, oDirect) => {
  maybe(
    `SIGTERM ends the server (the CLI) in bounded time while a pager thread is stuck in a stalled FUSE READ${why}`,
    async () => {
      let fsys: Stallfs | undefined;
      let tmp: string | undefined;
      let server: ServerProcess | undefined;
      let client: StallClient | undefined;
      try {
        ({ fsys, tmp } = await stalledSetup());
        server = await ServerProcess.start(path.join(tmp, 'svc'), { cli: true, cliArgs: ['--stop-timeout', '3'] });
        client = await stickAThread(server, fsys, offset as number, oDirect as boolean);
        const pid = server.pid;
        const t0 = Date.now();
        server.child.kill('SIGTERM');
        const code = await within(server.waitExit(), 10_000, 'the server exiting after SIGTERM').catch((e: Error) => {
          throw new Error(`${e.message}; its threads: ${JSON.stringify(threadsOf(pid))}`);
        });
        const ms = Date.now() - t0;
        // 0: it stopped by itself; 1: the watchdog ended it 3 s after the signal. Either is bounded.
        expect({ code, stderr: server.stderr.slice(-2000) }).toMatchObject({ code: expect.any(Number) });
        expect([0, 1]).toContain(code);
        expect(ms).toBeLessThan(3_000 + 2_000);
        expect(fsys.counters().stalling).toBeGreaterThanOrEqual(1); // the daemon never answered
        // The stuck client's read does not wait for a server that is gone: the server's Stop poisoned
        // the missing pages (EIO), or its mapping's watcher saw the hang-up first (EPIPE).
        expect(await client.line('read ', 5_000)).toMatch(/^read error (EIO|EPIPE) /);
      } finally {
        await teardown(fsys, tmp, client, server);
      }
    },
    60_000,
  );
});

// A pread of a FUSE file in direct I/O mode is a request the kernel waits out even on SIGKILL: a
// thread stuck there would keep the server from ever exiting. The pager reads a backing only
// through its mapping, and such a file cannot be mapped (ENODEV), so it is refused up front.
maybe(
  `a backing that cannot be mapped (a FUSE file in direct I/O mode) is refused with NOT_SUPPORTED; the server goes on${why}`,
  async () => {
    let fsys: Stallfs | undefined;
    let tmp: string | undefined;
    let server: ServerProcess | undefined;
    let client: StallClient | undefined;
    try {
      ({ fsys, tmp } = await stalledSetup(true));
      server = await ServerProcess.start(path.join(tmp, 'svc'), { logLevel: 'info' });
      fsys.control('stall-read 1');
      client = new StallClient(server.svcDir, fsys.filePath, img.files[0]);
      const said = await client.line('error', 10_000).catch((e: Error) => e.message);
      expect(said).toMatch(/NOT_SUPPORTED|-2\b/);
      await waitForLog(server, /mmap\(backing\).*No such device/, 5_000);
      expect(fsys.counters().stalled_reads).toBe(0);
      await within(wellBehavedRead(server.svcDir, img, 1), 10_000, 'a well-behaved client');
    } finally {
      await teardown(fsys, tmp, client, server);
    }
  },
  60_000,
);
