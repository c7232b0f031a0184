// Hostile clients of the Mapper that misuse their own userfaultfd (test/hostile/uffd_client.c, in
// its own process): clear O_NONBLOCK on the description the server shares, fork hundreds of times
// with UFFD_FEATURE_EVENT_FORK (each fork puts a new uffd into the server), move or drop their
// mapping, declare an offset they did not map. After each: the server answers a well-behaved
// client, its fds and threads are back to where they were, and no pager thread sleeps in read().
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PagerClientConnection } from '../../src/client';
import * as fidl from '../../src/fidl';
import { MapperMethods } from '../../src/gen/starnix_pager';
import { native } from '../../src/native';
import { Handle } from '../../src/transport/handle';
import { buildCHelper } from '../support/c_helper';
import { ServerProcess, TestImage, buildImage, expectFdsBack, removeImage, sleep, waitFor, wellBehavedRead } from './support';

const PAGE = 4096;
const UFFD_FEATURE_EVENT_FORK = 1 << 1;
const UFFD_FEATURE_EVENT_REMAP = 1 << 2;
const UFFD_FEATURE_EVENT_REMOVE = 1 << 3;
const UFFD_FEATURE_EVENT_UNMAP = 1 << 6;

let client: string;
let img: TestImage;
let svcDir: string;
let server: ServerProcess;

beforeAll(async () => {
  client = buildCHelper('uffd_client', 'test/hostile/uffd_client.c');
  img = buildImage([4 << 20, 256 << 10]);
  svcDir = fs.mkdtempSync(path.join(os.tmpdir(), 'uffd-events-'));
  server = await ServerProcess.start(svcDir);
});

afterAll(async () => {
  await server?.stop();
  if (img) removeImage(img);
  if (svcDir) fs.rmSync(svcDir, { recursive: true, force: true });
});

function threadsOf(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/task`).length;
}

/** What each of the server's threads sleeps in (wchan), e.g. "userfaultfd_read_iter". */
function wchansOf(pid: number): string[] {
  const out: string[] = [];
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const comm = fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      out.push(`${comm}:${fs.readFileSync(`/proc/${pid}/task/${tid}/wchan`, 'utf8')}`);
    } catch {
      /* the thread ended */
    }
  }
  return out;
}

/** CPU seconds the process has used (utime + stime, in clock ticks of 1/100 s on Linux). */
function cpuSecondsOf(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** An AttachMapping request for [address, address+length) from `offset`, handles [vmo, uffd]
 *  (the encoder checks handle kinds: a dup of the file's handle and any fd stand in). */
function attachRequestHex(vmoFd: number, address: bigint, length: bigint, offset: bigint): string {
  const placeholders = [new Handle(native.dupFd(vmoFd) as number), new Handle(fs.openSync('/dev/null', 'r'))];
  try {
    const msg = fidl.encodeMessage({ txid: 7, ordinal: MapperMethods.AttachMapping.ordinal, flexible: true }, MapperMethods.AttachMapping.payload, {
      vmo: placeholders[0],
      uffd: placeholders[1],
      address,
      length,
      offset,
    });
    return Buffer.from(msg.bytes).toString('hex');
  } finally {
    for (const h of placeholders) h.close();
  }
}

interface Run {
  /** Lines the client printed, in order. */
  lines: string[];
  /** Resolves when it exits (with its lines), or rejects after timeoutMs (it is killed). */
  done: Promise<string[]>;
  /** Resolves with the first line starting with prefix. */
  line(prefix: string, timeoutMs?: number): Promise<string>;
}

let nextSlot = 0;

/**
 * Registers file `fileIndex`, and starts the hostile client with its handle: it maps it (from
 * mapOffset), attaches it (declaring declaredOffset) and runs `actions`. The test's own handle and
 * connection are closed once the client exits, so the server's pager can go.
 */
async function runClient(opts: { features: number; actions: string[]; fileIndex?: number; mapOffset?: number; declaredOffset?: number; length?: number; timeoutMs?: number }): Promise<Run> {
  const f = img.files[opts.fileIndex ?? 0];
  const conn = PagerClientConnection.connect(svcDir);
  const pager = conn.createPager(fs.openSync(img.image, 'r'), img.blockSize);
  const file = await pager.registerFile({ name: f.path, inode: f.ino, size: f.size, extents: f.extents });
  const mapOffset = opts.mapOffset ?? 0;
  const length = BigInt(opts.length ?? Math.ceil((Number(f.size) - mapOffset) / PAGE) * PAGE);
  const address = 0x5a0000000000n + BigInt(nextSlot++) * (1n << 32n);
  const hex = attachRequestHex(file.handle.fd, address, length, BigInt(opts.declaredOffset ?? mapOffset));
  const child = spawn(client, [path.join(svcDir, 'starnix.pager.Mapper'), '0x' + address.toString(16), String(length), String(mapOffset), String(opts.features), hex, ...opts.actions], {
    stdio: ['ignore', 'pipe', 'pipe', file.handle.fd],
  });
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  const waiters: Array<() => void> = [];
  child.stdout!.on('data', (d: Buffer) => {
    partial += d.toString();
    const parts = partial.split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    for (const w of waiters.splice(0)) w();
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timeoutMs = opts.timeoutMs ?? 20000;
  const done = new Promise<string[]>((resolve, reject) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`uffd_client did not finish within ${timeoutMs} ms; it printed ${JSON.stringify(lines)} ${stderr}`));
    }, timeoutMs);
    child.once('exit', (code, sig) => {
      clearTimeout(t);
      file.close();
      pager.close();
      conn.close();
      if (code !== 0) reject(new Error(`uffd_client exited with ${code ?? sig}: ${JSON.stringify(lines)} ${stderr}`));
      else resolve(lines);
    });
  });
  done.catch(() => undefined);
  const line = async (prefix: string, ms = 15000): Promise<string> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = lines.find((l) => l.startsWith(prefix));
      if (hit !== undefined) return hit;
      if (Date.now() > deadline) throw new Error(`no "${prefix}" line from uffd_client: ${JSON.stringify(lines)} ${stderr}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 50);
      });
    }
  };
  return { lines, done, line };
}

function expectReplyOk(lines: string[]): void {
  const reply = lines.find((l) => l.startsWith('reply '));
  expect(reply).toBeDefined();
  const bytes = Buffer.from(reply!.slice(6), 'hex');
  const result = fidl.decodeMessageBody(MapperMethods.AttachMapping.response, bytes, []) as { tag: string };
  expect(result.tag).toBe('response');
}

function pageHex(fileIndex: number, page: number): string {
  return img.files[fileIndex].data.subarray(page * PAGE, page * PAGE + 16).toString('hex');
}

async function expectBaseline(fds: number, threads: number, what: string): Promise<void> {
  await wellBehavedRead(svcDir, img, 1);
  await expectFdsBack(server, fds, what, 10000);
  await waitFor(() => threadsOf(server.pid), (n) => n <= threads, 10000, `server threads back to ${threads} after ${what}`);
}

test.each([
  ['clears O_NONBLOCK once', ['blocking']],
  ['keeps clearing and setting O_NONBLOCK from another thread', ['toggle:300']],
])('a client that %s on its uffd and takes lone faults is served, never puts a pager thread to sleep in read(uffd); its pager stops and the server answers', async (_what, flagActions) => {
  await wellBehavedRead(svcDir, img, 1);
  const fds = server.fdCount();
  const threads = threadsOf(server.pid);
  const faults = 150;
  const run = await runClient({ features: 0, actions: [...flagActions, `touch:${faults}:1000`, 'sleep:1000'] });
  const touched = await run.line('touched ');
  expect(touched).toMatch(new RegExp(`^touched ${faults} sigbus 0 `));
  // Every fault was served; now, with no fault pending, no server thread may be asleep in the
  // uffd's read (it would wait for this client's next fault, and Stop would wait for it).
  await sleep(300);
  const sleeping = wchansOf(server.pid).filter((w) => w.includes('userfaultfd'));
  expect(sleeping).toEqual([]);
  expectReplyOk(await run.done);
  const expectedSum = (() => {
    const data = img.files[0].data;
    const pages = Math.ceil(data.length / PAGE);
    let sum = 0;
    for (let i = 0; i < faults; i++) sum += data[((i * 7919) % pages) * PAGE];
    return sum;
  })();
  expect(touched).toBe(`touched ${faults} sigbus 0 sum ${expectedSum}`);
  await expectBaseline(fds, threads, 'a client that cleared O_NONBLOCK');
});

test('UFFD_FEATURE_EVENT_FORK: 300 forks put 300 uffds into the server, each closed at once', async () => {
  await wellBehavedRead(svcDir, img, 1);
  const fds = server.fdCount();
  const threads = threadsOf(server.pid);
  const run = await runClient({ features: UFFD_FEATURE_EVENT_FORK, actions: ['page:0', 'fork:300', 'sleep:1000', 'page:1'] });
  await run.line('forked 300');
  // While the client is still alive (its own uffd still attached): not 300 more fds, a handful.
  expect(server.fdCount()).toBeLessThan(fds + 20);
  const lines = await run.done;
  expectReplyOk(lines);
  expect(lines).toContain(`page 0 ${pageHex(0, 0)}`);
  expect(lines).toContain(`page 1 ${pageHex(0, 1)}`);
  await expectBaseline(fds, threads, '300 forks');
});

test('UFFD_FEATURE_EVENT_REMAP: a mapping moved by mremap is served at its new address', async () => {
  const fds = server.fdCount();
  const threads = threadsOf(server.pid);
  const to = 0x7a0000000000n + BigInt(nextSlot++) * (1n << 32n);
  const run = await runClient({ features: UFFD_FEATURE_EVENT_REMAP, actions: ['page:0', `mremap:${to.toString(16)}`, 'page:1', 'page:700', 'page:0'] });
  const lines = await run.done;
  expectReplyOk(lines);
  expect(lines).toEqual(expect.arrayContaining(['moved', `page 0 ${pageHex(0, 0)}`, `page 1 ${pageHex(0, 1)}`, `page 700 ${pageHex(0, 700)}`]));
  await expectBaseline(fds, threads, 'mremap');
});

test('a mapping detached while it still exists (its Mapper connection closed): a later fault on a missing page fails (SIGBUS), never waits; present pages stay readable', async () => {
  const fds = server.fdCount();
  const threads = threadsOf(server.pid);
  // Page 0 is read while attached; then the connection goes (the server detaches the mapping) and
  // page 700, never read, is touched: nobody reads the uffd any more, so before the pager failed a
  // detached mapping's missing pages this access waited for ever (the client was killed at 20 s).
  const run = await runClient({ features: 0, actions: ['page:0', 'detach', 'sleep:300', 'page:700', 'page:0'], timeoutMs: 15000 });
  const lines = await run.done;
  expectReplyOk(lines);
  expect(lines.slice(1)).toEqual([`page 0 ${pageHex(0, 0)}`, 'detached', 'slept', 'page 700 sigbus', `page 0 ${pageHex(0, 0)}`]);
  await expectBaseline(fds, threads, 'a detached mapping');
});

test('UFFD_FEATURE_EVENT_REMOVE and EVENT_UNMAP: pages dropped with MADV_DONTNEED are served again, munmap is harmless', async () => {
  const fds = server.fdCount();
  const threads = threadsOf(server.pid);
  const features = UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP;
  const run = await runClient({ features, actions: ['page:3', 'dontneed', 'page:3', 'page:4', 'munmap', 'sleep:200'] });
  const lines = await run.done;
  expectReplyOk(lines);
  expect(lines.filter((l) => l === `page 3 ${pageHex(0, 3)}`)).toHaveLength(2);
  expect(lines).toContain(`page 4 ${pageHex(0, 4)}`);
  await expectBaseline(fds, threads, 'MADV_DONTNEED and munmap');
});

test('AttachMapping declaring an offset other than the one mapped: the reader gets SIGBUS (EIO), not an endless fault/wake loop', async () => {
  const fds = server.fdCount();
  const threads = threadsOf(server.pid);
  const cpuBefore = cpuSecondsOf(server.pid);
  // Mapped from file offset 0, declared as from offset 8 pages: every fault is served at the wrong
  // place, and the client's page stays missing.
  const run = await runClient({ features: 0, actions: ['touch:3:0', 'page:1'], declaredOffset: 8 * PAGE, length: 64 * PAGE, fileIndex: 0, timeoutMs: 15000 });
  const lines = await run.done;
  expectReplyOk(lines);
  expect(lines).toContain('touched 3 sigbus 3 sum 0');
  expect(lines).toContain('page 1 sigbus');
  await expectBaseline(fds, threads, 'a mapping with a wrong offset');
  // Bounded work: a loop would burn a CPU for as long as the client waited.
  expect(cpuSecondsOf(server.pid) - cpuBefore).toBeLessThan(3);
});
