// Every fd the server receives is owned (issue 12): a wake watcher that is the server's own
// endpoint fed back to it is refused, one whose peer hangs up is dropped; running out of fds at
// accept neither spins nor hangs clients, and out of fds while receiving is reported as what it
// is; a service directory another uid could rewrite is refused; client-chosen names cannot forge
// log lines; a stop signal always ends the server.
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as runner from '../../src/gen/fuchsia_starnix_runner';
import { native } from '../../src/native';
import { Channel } from '../../src/transport/channel';
import { Handle } from '../../src/transport/handle';
import { ServiceDirError, listenService } from '../../src/transport/service_dir';
import { ZX } from '../../src/zx_status';
import { RawPeer, request } from './raw_peer';
import { REPO, ServerProcess, TestImage, buildImage, countersOf, expectCountersBack, removeImage, sleep, waitFor, wellBehavedRead } from './support';

let img: TestImage;
let tmp: string;

beforeAll(() => {
  img = buildImage([120_000], { seed: 21 });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hostile-owned-'));
}, 60_000);

afterAll(() => {
  if (img) removeImage(img);
  fs.rmSync(tmp, { recursive: true, force: true });
});

function registerWakeWatcher(manager: RawPeer, watcher: Handle): void {
  const m = request(runner.ManagerMethods.RegisterWakeWatcher, { watcher });
  manager.send(m.bytes, m.handles as Handle[]);
}

/** A Manager connection made by hand, so that this side also holds a dup of its own socket. */
function rawManager(svcDir: string): { peer: RawPeer; ownEnd: Handle } {
  const fd = native.connectSocket(path.join(svcDir, runner.ManagerDiscoverableName)) as number;
  const ownEnd = new Handle(native.dupFd(fd) as number);
  return { peer: new RawPeer(Channel.fromHandle(new Handle(fd))), ownEnd };
}

describe('wake watchers', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await ServerProcess.start(path.join(tmp, 'svc-watchers'));
  });
  afterAll(async () => {
    await server.stop();
  });

  test('the connection\'s own client end as a watcher: refused, the connection closed with INVALID_ARGS, nothing kept', async () => {
    const base = countersOf(server.pid);
    for (let i = 0; i < 20; i++) {
      const { peer, ownEnd } = rawManager(server.svcDir);
      registerWakeWatcher(peer, ownEnd);
      expect(await peer.closure()).toBe(ZX.INVALID_ARGS);
    }
    await expectCountersBack(server.pid, base, '20 connections that sent their own end');
    await wellBehavedRead(server.svcDir, img);
  });

  test('a Pager\'s client end as a watcher: refused; the pager and its threads go when the client does', async () => {
    const base = countersOf(server.pid);
    for (let i = 0; i < 5; i++) {
      const { peer } = rawManager(server.svcDir);
      const [clientEnd, serverEnd] = Channel.pairHandles();
      const m = request(runner.ManagerMethods.CreatePager, { backingVmo: new Handle(fs.openSync(img.image, 'r')), blockSize: BigInt(img.blockSize), pager: serverEnd });
      peer.send(m.bytes, m.handles as Handle[]);
      await sleep(50);
      registerWakeWatcher(peer, clientEnd);
      expect(await peer.closure()).toBe(ZX.INVALID_ARGS);
    }
    await expectCountersBack(server.pid, base, '5 connections that sent a Pager end');
    await wellBehavedRead(server.svcDir, img);
  });

  test('two ends of one eventpair as watchers (each the other\'s peer): the second is refused', async () => {
    const base = countersOf(server.pid);
    const { peer } = rawManager(server.svcDir);
    const [a, b] = native.unixSocketPair(2 /* SOCK_DGRAM: an eventpair */) as [number, number];
    registerWakeWatcher(peer, new Handle(a));
    expect((await peer.next()).type).toBe('message');
    registerWakeWatcher(peer, new Handle(b));
    expect(await peer.closure()).toBe(ZX.INVALID_ARGS);
    await expectCountersBack(server.pid, base, 'the connection closed');
  });

  test('a watcher whose peer hangs up is dropped and its fd closed, while its connection stays open', async () => {
    const { peer } = rawManager(server.svcDir);
    // One watcher first, whose peer goes at once: whatever the server sets up once for watching
    // eventpairs is then part of the baseline.
    const [warmOurs, warmTheirs] = native.unixSocketPair(2 /* SOCK_DGRAM: an eventpair */) as [number, number];
    registerWakeWatcher(peer, new Handle(warmTheirs));
    expect((await peer.next()).type).toBe('message');
    fs.closeSync(warmOurs);
    await sleep(2500);
    const base = countersOf(server.pid); // the connection is open: only the watchers come and go
    const mine: Handle[] = [];
    for (let i = 0; i < 10; i++) {
      const [ours, theirs] = native.unixSocketPair(2 /* SOCK_DGRAM: an eventpair */) as [number, number];
      mine.push(new Handle(ours));
      registerWakeWatcher(peer, new Handle(theirs));
      expect((await peer.next()).type).toBe('message');
    }
    expect(countersOf(server.pid).fds).toBe(base.fds + 10);
    for (const h of mine) h.close();
    await expectCountersBack(server.pid, base, 'the watchers\' peers hung up', 6000);
    // The connection still works.
    const [ours, theirs] = native.unixSocketPair(2 /* SOCK_DGRAM: an eventpair */) as [number, number];
    registerWakeWatcher(peer, new Handle(theirs));
    expect((await peer.next()).type).toBe('message');
    fs.closeSync(ours);
    peer.close();
  });
});

/** Connects, waiting while the listener's backlog is full (the server accepts at its own pace). */
async function connectPatiently(svcDir: string): Promise<RawPeer> {
  for (let tries = 0; ; tries++) {
    try {
      return RawPeer.connect(svcDir, runner.ManagerDiscoverableName);
    } catch (e) {
      if ((e as ServiceDirError).code !== 'EAGAIN' || tries > 500) throw e;
      await sleep(10);
    }
  }
}

describe('out of fds', () => {
  test('at accept: connections past the limit are closed at once, the server does not spin, and serves again once fds are free', async () => {
    // A server with only 300 fds, and a budget that does not stop connections first.
    const server = await ServerProcess.start(path.join(tmp, 'svc-emfile'), {
      nofile: 300,
      logLevel: 'warn',
      budget: { fds: 100000, uidShare: 1, connectionShare: 1 },
    });
    const peers: RawPeer[] = [];
    try {
      // An early connection, used below to send handles once the table is full.
      const early = RawPeer.connect(server.svcDir, runner.ManagerDiscoverableName);
      for (let i = 0; i < 320; i++) peers.push(await connectPatiently(server.svcDir));
      // Every connection past the limit hears its close at once (not a hang).
      await waitFor(() => server.stderr, (s) => s.includes('out of file descriptors (EMFILE)'), 5000, 'the shed log line');
      const closures = await Promise.all(peers.slice(-10).map((p) => p.next(2000)));
      expect(closures.map((e) => e.type)).toEqual(Array(10).fill('closed'));
      // No spin: the server's CPU time barely moves while clients keep knocking.
      const cpu = (): number => {
        const f = fs.readFileSync(`/proc/${server.pid}/stat`, 'utf8').split(') ')[1].split(' ');
        return Number(f[11]) + Number(f[12]); // utime + stime, in clock ticks (100 Hz)
      };
      const before = cpu();
      for (let i = 0; i < 20; i++) peers.push(await connectPatiently(server.svcDir));
      await sleep(1000);
      expect(cpu() - before).toBeLessThan(30);
      // Handles sent while the table is full: the kernel cannot install them; the message is
      // reported as out of fds (with a NO_RESOURCES epitaph), not as "over 64 handles".
      const fds = Array.from({ length: 8 }, () => new Handle(fs.openSync('/dev/null', 'r')));
      const m = request(runner.ManagerMethods.SuspendContainer, {});
      early.send(m.bytes, fds);
      expect(await early.closure()).toBe(ZX.NO_RESOURCES);
      // The server's own log line follows the epitaph it sent.
      await waitFor(() => server.stderr, (s) => /out of file descriptors \(EMFILE\/ENFILE\) while receiving a message's handles/.test(s), 3000, 'the receive log line');
      expect(server.stderr).not.toMatch(/over 64 handles/);
      expect(server.alive).toBe(true);
    } finally {
      for (const p of peers) p.close();
    }
    try {
      // Once the hostile connections are gone, a well-behaved client is served.
      await sleep(500);
      await wellBehavedRead(server.svcDir, img);
    } finally {
      await server.stop();
    }
  }, 60_000);
});

describe('service directory', () => {
  test('owned by another uid: refused with EACCES, nothing bound', () => {
    const dir = path.join(tmp, 'svc-other-uid');
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.chownSync(dir, 65534, 65534);
    expect(() => listenService(dir, 'some.Protocol', () => undefined)).toThrow(ServiceDirError);
    expect(() => listenService(dir, 'some.Protocol', () => undefined)).toThrow(/owned by uid 65534/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  test('writable by others: refused with EACCES; the CLI says so and exits 1', () => {
    const dir = path.join(tmp, 'svc-world-writable');
    fs.mkdirSync(dir);
    fs.chmodSync(dir, 0o777);
    try {
      listenService(dir, 'some.Protocol', () => undefined);
      throw new Error('served in a world-writable directory');
    } catch (e) {
      expect(e).toBeInstanceOf(ServiceDirError);
      expect((e as ServiceDirError).code).toBe('EACCES');
    }
    let status = 0;
    let stderr = '';
    try {
      execFileSync(process.execPath, [path.join(REPO, 'bin', 'starnix-pager'), 'serve', '--svc-dir', dir], { stdio: 'pipe', timeout: 10_000 });
    } catch (e) {
      status = (e as { status: number }).status;
      stderr = String((e as { stderr: Buffer }).stderr);
    }
    expect(status).toBe(1);
    expect(stderr).toMatch(/mode 777: others may write it/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

test('a RegisterFile name with a newline cannot forge a log line', async () => {
  const server = await ServerProcess.start(path.join(tmp, 'svc-log'), { logLevel: 'warn' });
  try {
    const { peer } = rawManager(server.svcDir);
    const [clientEnd, serverEnd] = Channel.pairHandles();
    const m = request(runner.ManagerMethods.CreatePager, { backingVmo: new Handle(fs.openSync(img.image, 'r')), blockSize: BigInt(img.blockSize), pager: serverEnd });
    peer.send(m.bytes, m.handles as Handle[]);
    const pager = new RawPeer(Channel.fromHandle(clientEnd));
    const forged = 'evil\n2026-01-01T00:00:00.000Z error FORGED by a client\r\u2028';
    // Overlapping extents: refused, and the refusal is logged with the name.
    const r = request(runner.PagerMethods.RegisterFile, {
      name: forged,
      inodeNum: 5,
      size: 8192n,
      extents: [
        { logicalStart: 0, logicalEnd: 2, physicalBlock: 1n },
        { logicalStart: 1, logicalEnd: 2, physicalBlock: 9n },
      ],
    });
    pager.send(r.bytes, r.handles as Handle[]);
    expect((await pager.next()).type).toBe('message');
    await waitFor(() => server.stderr, (s) => s.includes('RegisterFile refused'), 3000, 'the refusal in the log');
    const lines = server.stderr.split('\n');
    expect(lines.some((l) => l.startsWith('2026-01-01T00:00:00.000Z'))).toBe(false);
    expect(lines.find((l) => l.includes('RegisterFile refused'))).toContain('name=evil\\x0a2026-01-01T00:00:00.000Z error FORGED by a client\\x0d\\u2028');
    pager.close();
    peer.close();
  } finally {
    await server.stop();
  }
});

describe('stopping', () => {
  test('SIGTERM ends the CLI server (exit 0) within its stop timeout while hostile clients hold pagers, files and watchers', async () => {
    const server = await ServerProcess.start(path.join(tmp, 'svc-term'), { cli: true, cliArgs: ['--stop-timeout', '5'] });
    const { peer } = rawManager(server.svcDir);
    const [clientEnd, serverEnd] = Channel.pairHandles();
    const m = request(runner.ManagerMethods.CreatePager, { backingVmo: new Handle(fs.openSync(img.image, 'r')), blockSize: BigInt(img.blockSize), pager: serverEnd });
    peer.send(m.bytes, m.handles as Handle[]);
    const [ours, theirs] = native.unixSocketPair(2 /* SOCK_DGRAM: an eventpair */) as [number, number];
    registerWakeWatcher(peer, new Handle(theirs));
    await peer.next();
    const started = Date.now();
    const status = await Promise.race([server.stop('SIGTERM').then(() => server.child.exitCode), sleep(8000).then(() => 'still running')]);
    expect(status).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
    fs.closeSync(ours);
    Channel.fromHandle(clientEnd).close();
    peer.close();
  });

  test('the stop watchdog ends a process whose JavaScript thread is stuck, a bounded time after SIGTERM', async () => {
    // A stand-in for a server whose JS thread never comes back: it arms the watchdog as `serve`
    // does, handles SIGTERM in JS (which never gets to run), and spins.
    const script = [
      `const { native } = require(${JSON.stringify(path.join(REPO, 'dist', 'src', 'native'))});`,
      `process.once('SIGTERM', () => process.exit(0));`,
      `native.armStopWatchdog(2);`,
      `console.log('armed');`,
      `setTimeout(() => { for (;;) {} }, 10);`,
    ].join('\n');
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    await sleep(200); // spinning now
    const started = Date.now();
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    const code = await Promise.race([exited, sleep(6000).then(() => 'still running' as const)]);
    if (code === 'still running') child.kill('SIGKILL');
    expect(code).toBe(1);
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(1900);
    expect(took).toBeLessThan(4000);
    expect(stderr).toContain('still running 2 s after the stop signal');
  });
});
