// Budgets (issue 12): one connection, or one uid, uses at most its share of what the server can
// hold (mapped address space, pagers, wake watchers, attached uffds, write queues), and everyone
// else keeps working meanwhile; what the hostile client held comes back when it goes.
//
// The hostile client runs as uid 65534 in its own process (budget_child.ts) and holds what it got
// until it is killed; the well-behaved client is this process, as root. Each case sets the
// server's budget small (the shares are what is tested, not the defaults' size).
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PagerClientConnection } from '../../src/client';
import { FileMapping } from '../../src/client/mapping';
import { native } from '../../src/native';
import * as runner from '../../src/gen/fuchsia_starnix_runner';
import * as mapperLib from '../../src/gen/starnix_pager';
import { Channel } from '../../src/transport/channel';
import { Handle } from '../../src/transport/handle';
import { ZX } from '../../src/zx_status';
import { RawPeer, decodeReply, request } from './raw_peer';
import {
  DIST_HOSTILE,
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

const TiB = 2 ** 40;
let img: TestImage;
let tmp: string;

beforeAll(() => {
  img = buildImage([300_000, 40_000], { seed: 12 });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hostile-budget-'));
  for (const d of [tmp, img.dir]) fs.chmodSync(d, 0o755); // uid 65534 reaches the image and the sockets
  fs.chmodSync(img.image, 0o644);
}, 60_000);

afterAll(() => {
  if (img) removeImage(img);
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Lets uid 65534 connect: the folder 0755 (not writable by others), the sockets 0666. */
function openToOthers(svc: string): void {
  fs.chmodSync(svc, 0o755);
  for (const name of [runner.ManagerDiscoverableName, mapperLib.MapperDiscoverableName]) fs.chmodSync(path.join(svc, name), 0o666);
}

interface Outcome {
  got: number;
  stoppedBy: string;
}

/** Runs budget_child.js as uid 65534; resolves with its report once it has taken what it could. */
async function hostileAs65534(args: Record<string, unknown>): Promise<{ child: ChildProcess; outcomes: Outcome[] }> {
  const child = spawn(process.execPath, [path.join(DIST_HOSTILE, 'budget_child.js'), JSON.stringify({ image: img.image, blockSize: img.blockSize, ...args })], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, STARNIX_PAGER_LOG: 'error' },
    uid: 65534,
    gid: 65534,
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const line = await new Promise<string>((resolve) => {
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(out.split('\n')[0]);
    });
    child.once('exit', () => resolve(`exited: ${out} ${err}`));
  });
  if (!line.startsWith('[')) throw new Error(`hostile client failed: ${line}`);
  return { child, outcomes: JSON.parse(line) as Outcome[] };
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

async function withServer(name: string, budget: Record<string, number>, body: (server: ServerProcess) => Promise<void>): Promise<void> {
  const server = await ServerProcess.start(path.join(tmp, name), { budget });
  try {
    openToOthers(server.svcDir);
    // What the server sets up once, at its first pager (the shared close watcher's thread and
    // inotify instance), is part of the baseline.
    await wellBehavedRead(server.svcDir, img);
    await body(server);
  } finally {
    await server.stop();
  }
}

test('mapped address space: a connection and a uid stop at their shares; root still registers and reads; the address space comes back', async () => {
  // 16 TiB in all; a uid may map 8, a connection 4.
  await withServer('svc-mapped', { mappedBytes: 16 * TiB, uidShare: 0.5, connectionShare: 0.25 }, async (server) => {
    const base = countersOf(server.pid);
    const { child, outcomes } = await hostileAs65534({ mode: 'mapped', svcDir: server.svcDir, connections: 3, perConnection: 6, fileSize: String(TiB) });
    try {
      // 4 x 1 TiB per connection; the third connection finds the uid's 8 TiB used.
      expect(outcomes).toEqual([
        { got: 4, stoppedBy: `error ${ZX.NO_RESOURCES}` },
        { got: 4, stoppedBy: `error ${ZX.NO_RESOURCES}` },
        { got: 0, stoppedBy: `error ${ZX.NO_RESOURCES}` },
      ]);
      expect(countersOf(server.pid).vmKb).toBeGreaterThan(base.vmKb + 7 * (TiB / 1024));
      // Root's share is untouched: a 4 TiB sparse file registers, and a real file reads right.
      const client = PagerClientConnection.connect(server.svcDir);
      try {
        const pager = client.createPager(fs.openSync(img.image, 'r'), img.blockSize);
        const big = await pager.registerFile({ name: 'root-sparse', inode: 77, size: BigInt(4 * TiB), extents: [] });
        big.close();
        pager.close();
      } finally {
        client.close();
      }
      await wellBehavedRead(server.svcDir, img);
    } finally {
      await kill(child);
    }
    await expectCountersBack(server.pid, base, 'the hostile client was killed');
    await wellBehavedRead(server.svcDir, img);
  });
}, 60_000);

test('pagers: a connection and a uid stop at their shares (NO_RESOURCES epitaph); root still creates pagers; threads and inotify instances come back', async () => {
  // 8 pagers in all; a uid may have 4, a connection 2.
  await withServer('svc-pagers', { pagers: 8, uidShare: 0.5, connectionShare: 0.25 }, async (server) => {
    const base = countersOf(server.pid);
    const { child, outcomes } = await hostileAs65534({ mode: 'pagers', svcDir: server.svcDir, connections: 3, perConnection: 3 });
    try {
      expect(outcomes).toEqual([
        { got: 2, stoppedBy: `epitaph ${ZX.NO_RESOURCES}` },
        { got: 2, stoppedBy: `epitaph ${ZX.NO_RESOURCES}` },
        { got: 0, stoppedBy: `epitaph ${ZX.NO_RESOURCES}` },
      ]);
      expect(countersOf(server.pid).threads).toBeGreaterThan(base.threads);
      await wellBehavedRead(server.svcDir, img);
      await wellBehavedRead(server.svcDir, img, 1);
    } finally {
      await kill(child);
    }
    await expectCountersBack(server.pid, base, 'the hostile client was killed');
    await wellBehavedRead(server.svcDir, img);
  });
}, 60_000);

test('wake watchers: past a connection\'s or a uid\'s share the connection is closed with NO_RESOURCES; root still registers one', async () => {
  // 16 watchers in all; a uid may keep 8, a connection 4.
  await withServer('svc-watchers', { wakeWatchers: 16, uidShare: 0.5, connectionShare: 0.25 }, async (server) => {
    const base = countersOf(server.pid);
    // The first connection asks for 5 (one past its share: it is closed, and its watchers go with
    // it); the next three ask for 3 each, within their shares, until the uid's 8 are used.
    const { child, outcomes } = await hostileAs65534({ mode: 'watchers', svcDir: server.svcDir, connections: 4, perConnection: [5, 3, 3, 3] });
    try {
      expect(outcomes).toEqual([
        { got: 4, stoppedBy: `epitaph ${ZX.NO_RESOURCES}` },
        { got: 3, stoppedBy: 'none' },
        { got: 3, stoppedBy: 'none' },
        { got: 2, stoppedBy: `epitaph ${ZX.NO_RESOURCES}` },
      ]);
      const manager = RawPeer.connect(server.svcDir, runner.ManagerDiscoverableName);
      const pair = native.unixSocketPair(2 /* SOCK_DGRAM: an eventpair */) as [number, number];
      const mine = new Handle(pair[0]);
      try {
        const m = request(runner.ManagerMethods.RegisterWakeWatcher, { watcher: new Handle(pair[1]) });
        manager.send(m.bytes, m.handles as Handle[]);
        expect((await manager.next()).type).toBe('message');
      } finally {
        mine.close();
        manager.close();
      }
      await wellBehavedRead(server.svcDir, img);
    } finally {
      await kill(child);
    }
    await expectCountersBack(server.pid, base, 'the hostile client was killed');
  });
}, 60_000);

test('attached uffds: the same uffd again is refused (ALREADY_EXISTS), through any Mapper connection; past the share NO_RESOURCES', async () => {
  // 8 attachments in all, a connection may hold 2 (and a uid all 8).
  await withServer('svc-uffds', { attachedUffds: 8, uidShare: 1, connectionShare: 0.25 }, async (server) => {
    const base = countersOf(server.pid);
    const client = PagerClientConnection.connect(server.svcDir);
    const f = img.files[0];
    const pager = client.createPager(fs.openSync(img.image, 'r'), img.blockSize);
    const file = await pager.registerFile({ name: f.path, inode: f.ino, size: f.size, extents: f.extents });
    const mapping = await file.map(); // attachment 1, through the client's own Mapper connection
    const attach = async (peer: RawPeer, uffd: number): Promise<{ tag: string; value: unknown }> => {
      const m = request(mapperLib.MapperMethods.AttachMapping, {
        vmo: file.handle.duplicate(),
        uffd: new Handle(uffd),
        address: mapping.address,
        length: mapping.length,
        offset: 0n,
      });
      peer.send(m.bytes, m.handles as Handle[]);
      return decodeReply(mapperLib.MapperMethods.AttachMapping, await peer.next());
    };
    const other = RawPeer.connect(server.svcDir, mapperLib.MapperDiscoverableName);
    const third = RawPeer.connect(server.svcDir, mapperLib.MapperDiscoverableName);
    const mappings = [];
    try {
      // The same description (a dup of the mapping's uffd), through two other connections.
      expect(await attach(other, mapping.uffdForPager())).toEqual({ tag: 'err', value: ZX.ALREADY_EXISTS });
      expect(await attach(third, mapping.uffdForPager())).toEqual({ tag: 'err', value: ZX.ALREADY_EXISTS });
      // Fresh uffds (other mappings of the same file): two per connection, then NO_RESOURCES.
      for (let i = 0; i < 3; i++) {
        const m2 = FileMapping.open(file.handle.fd, f.size);
        mappings.push(m2);
      }
      expect((await attach(other, mappings[0].uffdForPager())).tag).toBe('response');
      expect((await attach(other, mappings[1].uffdForPager())).tag).toBe('response');
      expect(await attach(other, mappings[2].uffdForPager())).toEqual({ tag: 'err', value: ZX.NO_RESOURCES });
      // The first mapping still reads right.
      expect((await mapping.readAsync(0, Number(f.size))).equals(f.data)).toBe(true);
    } finally {
      other.close();
      third.close();
      for (const m of mappings) m.close();
      mapping.close();
      file.close();
      pager.close();
      client.close();
    }
    await expectCountersBack(server.pid, base, 'the client closed everything');
  });
}, 60_000);

test('write queues: pagers whose replies are never read are closed once their connection\'s share of queued fds is used; the server\'s fds stay bounded', async () => {
  // 400 queued fds in all; one connection may make the server hold 100 of them for it.
  await withServer('svc-queued', { queuedHandles: 400, uidShare: 1, connectionShare: 0.25 }, async (server) => {
    const base = countersOf(server.pid);
    const manager = RawPeer.connect(server.svcDir, runner.ManagerDiscoverableName);
    const f = img.files[1];
    const pagers: Channel[] = [];
    let maxFds = 0;
    const sampler = setInterval(() => (maxFds = Math.max(maxFds, countersOf(server.pid).fds)), 10);
    try {
      for (let p = 0; p < 4; p++) {
        const [clientEnd, serverEnd] = Channel.pairHandles();
        const m = request(runner.ManagerMethods.CreatePager, { backingVmo: new Handle(fs.openSync(img.image, 'r')), blockSize: BigInt(img.blockSize), pager: serverEnd });
        manager.send(m.bytes, m.handles as Handle[]);
        pagers.push(Channel.fromHandle(clientEnd)); // never started: nothing is ever read from it
      }
      // Each RegisterFile of the same inode answers with a new fd; none is ever read.
      for (let i = 0; i < 1500; i++) {
        for (const ch of pagers) {
          if (ch.closed) continue;
          const r = request(runner.PagerMethods.RegisterFile, { name: f.path, inodeNum: f.ino, size: f.size, extents: f.extents });
          try {
            ch.send(r.bytes, r.handles as Handle[]);
          } catch {
            break; // the server closed it (PEER_CLOSED) or our own queue filled
          }
        }
        if (i % 100 === 0) await sleep(5);
      }
      // Meanwhile a well-behaved client is served.
      await wellBehavedRead(server.svcDir, img);
      await sleep(300);
    } finally {
      clearInterval(sampler);
    }
    // Held at most: the connection's 100 queued fds, its pagers' own fds, and one batch of replies
    // (the server answers a batch of up to 256 requests together, after reading it); the fds in
    // the sockets' buffers are the kernel's, not the server's. Without the budget: thousands.
    expect(maxFds).toBeLessThan(base.fds + 100 + 4 * 8 + 256 + 64);
    // The pagers' channels were closed by the server: draining each ends in a close.
    for (const ch of pagers) {
      const closed = new Promise<void>((resolve) => ch.once('close', () => resolve()));
      ch.on('message', (_b: Buffer, hs: Handle[]) => hs.forEach((h) => h.close()));
      ch.start();
      await Promise.race([closed, sleep(10_000).then(() => Promise.reject(new Error('a pager channel was left open')))]);
    }
    manager.close();
    await expectCountersBack(server.pid, base, 'the client closed everything');
    // At log level error, the only lines are the channels closed for not reading (and the replies
    // that could not be sent on them): nothing else failed inside the server.
    const lines = server.stderr.split('\n').filter((l) => l !== '');
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l).toMatch(/closing, the peer does not read|could not send a message .* write queue over its cap/);
  });
}, 60_000);

test('defaults: the server raises RLIMIT_NOFILE to its hard limit and logs the budget it derived', async () => {
  const server = await ServerProcess.start(path.join(tmp, 'svc-defaults'), { nofile: '1024:4096', logLevel: 'info' });
  try {
    const limits = fs.readFileSync(`/proc/${server.pid}/limits`, 'utf8');
    expect(limits).toMatch(/Max open files\s+4096\s+4096/);
    await waitFor(() => server.stderr, (s) => s.includes(' budget '), 5000, 'the budget log line');
    const line = server.stderr.split('\n').find((l) => / info:? budget /.test(l))!;
    // (4096 - 256) * 3/4 fds; a uid half of it, a connection a quarter.
    expect(line).toContain('fds=2880');
    expect(line).toContain('uidShare=0.5');
    expect(line).toContain('connectionShare=0.25');
    await wellBehavedRead(server.svcDir, img);
  } finally {
    await server.stop();
  }
}, 30_000);
