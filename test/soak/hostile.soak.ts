// Soak: the hostile clients of test/hostile/budget.test.ts and owned_fds.test.ts, in rounds against
// one server for HOSTILE_SOAK_SECONDS (default 180): a uid-65534 client taking mapped bytes,
// pagers or wake watchers up to its shares (then killed), the server's own endpoints fed back as
// wake watchers, watchers whose peers hang up, pagers whose replies are never read. Every round a
// well-behaved root client reads a file right; a mapping whose Mapper connection closed while it
// still exists must fail a later read rather than wait; and, where FUSE is available, a client
// whose backing's READ stalls leaves a pager thread stuck while root is served, then goes. At the
// end the server's fds, threads, inotify instances and address space are back to their baseline. Run with `npm run soak -- --minutes N`
// (scripts/soak.js) or, with the other soaks, `npm run test:soak`.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as runner from '../../src/gen/fuchsia_starnix_runner';
import { FileMapping, PagerClientConnection } from '../../src/client';
import * as mapperLib from '../../src/gen/starnix_pager';
import { native } from '../../src/native';
import { mountStallfs, stallfsUnavailable } from '../support/fuse';
import { Channel } from '../../src/transport/channel';
import { Handle } from '../../src/transport/handle';
import { ZX } from '../../src/zx_status';
import { RawPeer, request } from '../hostile/raw_peer';
import { DIST_HOSTILE, ServerProcess, buildImage, countersOf, expectCountersBack, removeImage, sleep, statusKb, wellBehavedRead } from '../hostile/support';

async function hostile(args: Record<string, unknown>): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(process.execPath, [path.join(DIST_HOSTILE, 'budget_child.js'), JSON.stringify(args)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, STARNIX_PAGER_LOG: 'error' },
    uid: 65534,
    gid: 65534,
  });
  let out = '';
  const line = await new Promise<string>((resolve) => {
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(out.split('\n')[0]);
    });
    child.once('exit', () => resolve(`exited: ${out}`));
  });
  return { child, line };
}

/** A mapping attached through a Mapper connection that is then closed (the mapping kept, no
 *  watcher): the server detaches it; a read of a page never paged in must fail, not wait. */
async function detachedMappingFails(svcDir: string, img: ReturnType<typeof buildImage>): Promise<void> {
  const conn = PagerClientConnection.connect(svcDir);
  const pager = conn.createPager(fs.openSync(img.image, 'r'), img.blockSize);
  const f = img.files[0];
  const file = await pager.registerFile({ name: f.path, inode: f.ino, size: f.size, extents: f.extents });
  const mapping = FileMapping.open(file.handle.fd, f.size);
  const mapper = new mapperLib.MapperClient(Channel.fromHandle(new Handle(native.connectSocket(path.join(svcDir, mapperLib.MapperDiscoverableName)) as number)));
  try {
    const r = await mapper.attachMapping({ vmo: file.handle.duplicate(), uffd: new Handle(mapping.uffdForPager()), address: mapping.address, length: mapping.length, offset: 0n });
    expect(r.ok).toBe(true);
    expect((await mapping.readAsync(0, 4096)).equals(f.data.subarray(0, 4096))).toBe(true);
    mapper.close();
    await sleep(200); // the server sees the hang-up and detaches
    await expect(mapping.readAsync(40 * 4096, 4096)).rejects.toThrow();
  } finally {
    mapper.close();
    mapping.close();
    file.close();
    pager.close();
    conn.close();
  }
}

/** A client whose backing is on stallfs: its pager thread is stuck in READ while root is served;
 *  then it is killed and the stall released (a fresh mount each time: nothing cached). */
async function stalledBackingRound(svcDir: string, img: ReturnType<typeof buildImage>): Promise<void> {
  const fsys = await mountStallfs(img.image);
  let child: ChildProcess | undefined;
  try {
    const f = img.files[0];
    const arg = {
      svcDir,
      backing: fsys.filePath,
      blockSize: img.blockSize,
      file: { path: f.path, ino: f.ino, size: String(f.size), extents: f.extents.map((e) => ({ logicalStart: e.logicalStart, logicalEnd: e.logicalEnd, physicalBlock: String(e.physicalBlock) })) },
    };
    child = spawn(process.execPath, [path.join(DIST_HOSTILE, 'stall_client_child.js'), JSON.stringify(arg)], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, STARNIX_PAGER_LOG: 'error' } });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const deadline = Date.now() + 15_000;
    while (!out.includes('mapped\n')) {
      if (out.startsWith('error') || Date.now() > deadline) throw new Error(`stall client: ${out}`);
      await sleep(20);
    }
    fsys.control('stall-read 1');
    child.stdin!.write('read\n');
    await fsys.waitStalling(1, 10_000);
    await wellBehavedRead(svcDir, img, 1);
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
    await fsys.unmount(); // releases every stall first
  }
}

test('soak: hostile clients in rounds; a well-behaved client is served throughout; everything comes back', async () => {
  const seconds = Number(process.env.HOSTILE_SOAK_SECONDS ?? 180);
  const img = buildImage([200_000, 30_000], { seed: 44 });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'soak-hostile-'));
  for (const d of [tmp, img.dir]) fs.chmodSync(d, 0o755);
  fs.chmodSync(img.image, 0o644);
  const server = await ServerProcess.start(path.join(tmp, 'svc'), {
    budget: { mappedBytes: 2 ** 44, pagers: 8, wakeWatchers: 16, queuedHandles: 400, uidShare: 0.5, connectionShare: 0.25 },
  });
  fs.chmodSync(server.svcDir, 0o755);
  for (const name of [runner.ManagerDiscoverableName, mapperLib.MapperDiscoverableName]) fs.chmodSync(path.join(server.svcDir, name), 0o666);
  // Warm: the first well-behaved client starts libuv's and V8's own threads, which stay.
  await wellBehavedRead(server.svcDir, img);
  // ...and its pager goes a moment later (close events): the baseline is taken once the fd count
  // has stayed the same for a second, so that a leak of a few fds cannot hide under the warm-up's.
  for (let last = -1, same = 0; same < 5; await sleep(200)) {
    const n = countersOf(server.pid).fds;
    same = n === last ? same + 1 : 0;
    last = n;
  }
  const base = countersOf(server.pid);
  const rssStartKb = statusKb(server.pid, 'VmRSS');
  let rssPeakKb = rssStartKb;
  const started = Date.now();
  const modes = ['mapped', 'pagers', 'watchers'];
  const deadline = Date.now() + seconds * 1000;
  let rounds = 0;
  let stalledRounds = 0;
  const fuse = stallfsUnavailable() === null;
  try {
    while (Date.now() < deadline) {
      // 1. A uid-65534 client takes what its shares allow, and holds it while root is served.
      const mode = modes[rounds % modes.length];
      const { child, line } = await hostile({ mode, svcDir: server.svcDir, image: img.image, blockSize: img.blockSize, connections: 3, perConnection: 5, fileSize: String(2 ** 40) });
      try {
        expect(line).toMatch(/^\[/);
        await wellBehavedRead(server.svcDir, img);
      } finally {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      }
      // 2. Own endpoints as wake watchers: refused.
      const fd = native.connectSocket(path.join(server.svcDir, runner.ManagerDiscoverableName)) as number;
      const own = new Handle(native.dupFd(fd) as number);
      const peer = new RawPeer(Channel.fromHandle(new Handle(fd)));
      const w = request(runner.ManagerMethods.RegisterWakeWatcher, { watcher: own });
      peer.send(w.bytes, w.handles as Handle[]);
      expect(await peer.closure()).toBe(ZX.INVALID_ARGS);
      // 3. Watchers whose peers hang up, on a connection that stays.
      const m2 = RawPeer.connect(server.svcDir, runner.ManagerDiscoverableName);
      for (let i = 0; i < 3; i++) {
        const [ours, theirs] = native.unixSocketPair(2 /* SOCK_DGRAM: an eventpair */) as [number, number];
        const r = request(runner.ManagerMethods.RegisterWakeWatcher, { watcher: new Handle(theirs) });
        m2.send(r.bytes, r.handles as Handle[]);
        await m2.next();
        fs.closeSync(ours);
      }
      // 4. Pagers whose replies are never read.
      const [clientEnd, serverEnd] = Channel.pairHandles();
      const cp = request(runner.ManagerMethods.CreatePager, { backingVmo: new Handle(fs.openSync(img.image, 'r')), blockSize: BigInt(img.blockSize), pager: serverEnd });
      m2.send(cp.bytes, cp.handles as Handle[]);
      const unread = Channel.fromHandle(clientEnd);
      const f = img.files[1];
      for (let i = 0; i < 600 && !unread.closed; i++) {
        const r = request(runner.PagerMethods.RegisterFile, { name: f.path, inodeNum: f.ino, size: f.size, extents: f.extents });
        try {
          unread.send(r.bytes, r.handles as Handle[]);
        } catch {
          break;
        }
        if (i % 100 === 0) await sleep(2);
      }
      await wellBehavedRead(server.svcDir, img, 1);
      // 5. A mapping detached while it exists: a later read fails.
      await detachedMappingFails(server.svcDir, img);
      // 6. A backing whose READ stalls.
      if (fuse) {
        await stalledBackingRound(server.svcDir, img);
        stalledRounds++;
      }
      await sleep(2500); // the watchers' hang-ups are swept
      unread.close();
      m2.close();
      rounds++;
      rssPeakKb = Math.max(rssPeakKb, statusKb(server.pid, 'VmRSS'));
      expect(server.alive).toBe(true);
    }
    await expectCountersBack(server.pid, base, `${rounds} hostile rounds`, 15_000);
    const end = countersOf(server.pid);
    const summary = {
      seconds: Math.round((Date.now() - started) / 1000),
      rounds,
      stalledRounds: fuse ? stalledRounds : `none: ${stallfsUnavailable()}`,
      start: { ...base, rssKb: rssStartKb },
      end: { ...end, rssKb: statusKb(server.pid, 'VmRSS') },
      rssPeakKb,
    };
    // eslint-disable-next-line no-console
    console.log(`soak hostile: ${JSON.stringify(summary)}`);
  } finally {
    await server.stop();
    removeImage(img);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}, 60 * 60_000);
