// SuspendContainer, wake sources, proxied wake channels and wake watchers, against real
// containers: cgroup v2 directories made by the test, each with a child process that counts, so
// that "suspended" means the kernel stopped it (it prints nothing) and "resumed" that it counts
// again. The two integration tests of Fuchsia's Starnix runner (test_register_wake_watcher,
// test_wake_lock) come first, ported; the rest covers the wake paths and the bad inputs.
// Needs cgroup v2 write access (root, as CI has); skipped with the reason elsewhere.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PagerClientConnection } from '../../src/client';
import * as runner from '../../src/gen/fuchsia_starnix_runner';
import { native } from '../../src/native';
import { EmbeddedService } from '../../src/server/service';
import { ASLEEP_SIGNAL, AWAKE_SIGNAL, TIMEOUT_RESUME_REASON } from '../../src/server/suspend/suspend_manager';
import { ZX_EVENT_SIGNALED, ZX_READABLE } from '../../src/server/suspend/wake_source';
import { Channel } from '../../src/transport/channel';
import { connectService } from '../../src/transport/service_dir';
import { EventPair, ZX_EVENTPAIR_SIGNALED } from '../../src/transport/eventpair';
import { Handle } from '../../src/transport/handle';
import { createEventFd } from '../../src/transport/stand_ins';
import { TestContainer, cgroupParent, cgroupSkipReason, sleep } from '../support/cgroup';
import { mountStallfs, stallfsUnavailable } from '../support/fuse';
import { captureLogs } from '../support/log_capture';

const skipReason = cgroupSkipReason();
const describeCgroups = skipReason === null ? describe : describe.skip;
const title = (name: string) => (skipReason === null ? name : `${name} [skipped: ${skipReason}]`);

let svc: EmbeddedService;
let client: PagerClientConnection;
let containers: TestContainer[];

async function container(tag: string, opts?: { counting?: boolean }): Promise<TestContainer> {
  const c = await TestContainer.create(tag, opts);
  containers.push(c);
  return c;
}

const eventfd = () => createEventFd();

/** Records every signal state a watcher end goes through. */
function history(pair: EventPair): number[] {
  const seen: number[] = [];
  pair.on('signals', (s: number) => seen.push(s));
  pair.start();
  return seen;
}

async function until(what: string | (() => string), cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(5);
  }
}

/**
 * Adds an eventfd wake source named `name` to c (the test raises it with eventfdAdd), asks to
 * suspend c and waits until the kernel says it is frozen. The suspend's reply is `pending`.
 */
async function frozenWithEventfd(manager: runner.ManagerClient, c: TestContainer, name = 'ev') {
  const ev = eventfd();
  manager.addWakeSource({ containerJob: c.openHandle(), name, handle: ev.duplicate(), signals: ZX_EVENT_SIGNALED });
  const pending = manager.suspendContainer({ containerJob: c.openHandle() });
  pending.catch(() => {}); // some tests end the suspend without a reply
  await until('frozen', () => c.events().frozen);
  return { ev, pending };
}

function startService(wakeTimeoutMs = 20_000): void {
  svc = EmbeddedService.start({ suspend: { wakeTimeoutMs } });
  client = PagerClientConnection.connect(svc.svcDir);
}

describeCgroups(title('SuspendContainer on real cgroups'), () => {
  beforeEach(() => {
    containers = [];
    startService();
  });
  afterEach(async () => {
    client.close();
    svc.close();
    for (const c of containers) await c.remove();
  });

  // ---------------------------------------------------------------- ported from upstream
  test('test_register_wake_watcher: AWAKE at registration, then ASLEEP and AWAKE around a suspend', async () => {
    const c = await container('watcher', { counting: false }); // upstream suspends an empty child job
    const [mine, theirs] = EventPair.createHandles();
    const watcher = EventPair.fromHandle(mine, 'watcher');
    const seen = history(watcher);
    await client.managerClient.registerWakeWatcher({ watcher: theirs });
    await watcher.waitFor(AWAKE_SIGNAL, 5000);
    expect(watcher.signals & ASLEEP_SIGNAL).toBe(0);

    const r = await client.managerClient.suspendContainer({ containerJob: c.openHandle() });
    expect(r.ok).toBe(true);
    await until('ASLEEP then AWAKE', () => seen.length >= 3);
    expect(seen).toEqual([AWAKE_SIGNAL, ASLEEP_SIGNAL, AWAKE_SIGNAL]);
    watcher.close();
  });

  test('test_wake_lock: wake locks raised before the suspend: WAKE_LOCKS_EXIST, the container keeps running', async () => {
    const c = await container('wakelock');
    const [lock, lockRemote] = EventPair.create(['lock', 'lock-remote']);
    expect(lock.signalPeer(0, ZX_EVENTPAIR_SIGNALED)).toBe(0);
    const r = await client.managerClient.suspendContainer({ containerJob: c.openHandle(), wakeLocks: lockRemote.toHandle() });
    expect(r).toEqual({ ok: false, error: runner.SuspendError.WAKE_LOCKS_EXIST });
    expect(c.events().frozen).toBe(false);
    await c.waitCounting();
    lock.close();
  });

  // ---------------------------------------------------------------- wake paths
  test('an eventfd wake source: frozen until it is signalled, then resumed with its name and the time', async () => {
    const c = await container('eventfd');
    const { ev, pending } = await frozenWithEventfd(client.managerClient, c, 'button');
    expect(await c.staysStill()).toBe(true);
    native.eventfdAdd(ev.fd, 1);
    const r = await pending;
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.resumeReason).toBe('button');
    expect(r.value.suspendTime).toBeGreaterThan(200_000_000n); // it stayed still for 200 ms at least
    expect(c.events().frozen).toBe(false);
    await c.waitCounting();
    ev.close();
  });

  test('a wake source already raised: the suspend ends at once (it keeps the container awake)', async () => {
    const c = await container('raised');
    const ev = eventfd();
    native.eventfdAdd(ev.fd, 1);
    client.managerClient.addWakeSource({ containerJob: c.openHandle(), name: 'held', handle: ev.duplicate(), signals: ZX_EVENT_SIGNALED });
    // A debounce duration is accepted and, as upstream's runner does, not used.
    const r = await client.managerClient.suspendContainer({ containerJob: c.openHandle(), suspendDebounceDuration: 1_000_000n });
    expect(r).toMatchObject({ ok: true, value: { resumeReason: 'held' } });
    await c.waitCounting();
    ev.close();
  });

  test('a socket wake source wakes on READABLE; after RemoveWakeSource it does not, and the wait times out', async () => {
    client.close();
    svc.close();
    startService(400);
    const c = await container('socket');
    const [mine, theirs] = Channel.pairHandles();
    client.managerClient.addWakeSource({ containerJob: c.openHandle(), name: 'sock', handle: theirs.duplicate(), signals: ZX_READABLE });
    const pending = client.managerClient.suspendContainer({ containerJob: c.openHandle() });
    await until('frozen', () => c.events().frozen);
    fs.writeSync(mine.fd, Buffer.from('wake'));
    expect(await pending).toMatchObject({ ok: true, value: { resumeReason: 'sock' } });

    // Removed by another fd of the same socket (as upstream removes by koid).
    client.managerClient.removeWakeSource({ containerJob: c.openHandle(), handle: theirs.duplicate() });
    const other = eventfd();
    client.managerClient.addWakeSource({ containerJob: c.openHandle(), name: 'never', handle: other.duplicate(), signals: ZX_EVENT_SIGNALED });
    const r = await client.managerClient.suspendContainer({ containerJob: c.openHandle() });
    expect(r).toMatchObject({ ok: true, value: { resumeReason: TIMEOUT_RESUME_REASON } }); // the socket is still readable
    await c.waitCounting();
    for (const h of [mine, theirs, other]) h.close();
  });

  test('wake locks raised while suspended: WAKE_LOCKS_EXIST, thawed, watchers told AWAKE again', async () => {
    const c = await container('lock-late');
    const ev = eventfd();
    client.managerClient.addWakeSource({ containerJob: c.openHandle(), name: 'unused', handle: ev.duplicate(), signals: ZX_EVENT_SIGNALED });
    const [w, wRemote] = EventPair.createHandles();
    const watcher = EventPair.fromHandle(w);
    const seen = history(watcher);
    await client.managerClient.registerWakeWatcher({ watcher: wRemote });
    const [lock, lockRemote] = EventPair.create();
    const pending = client.managerClient.suspendContainer({ containerJob: c.openHandle(), wakeLocks: lockRemote.toHandle() });
    await until('frozen', () => c.events().frozen);
    await until('ASLEEP', () => (watcher.signals & ASLEEP_SIGNAL) !== 0);
    lock.signalPeer(0, ZX_EVENTPAIR_SIGNALED);
    expect(await pending).toEqual({ ok: false, error: runner.SuspendError.WAKE_LOCKS_EXIST });
    expect(c.events().frozen).toBe(false);
    await until('AWAKE again', () => seen.length >= 3);
    expect(seen).toEqual([AWAKE_SIGNAL, ASLEEP_SIGNAL, AWAKE_SIGNAL]);
    await c.waitCounting();
    for (const x of [ev]) x.close();
    lock.close();
    watcher.close();
  });

  test('ProxyWakeChannel: forwards bytes and handles both ways, counts, and a message from outside wakes the container', async () => {
    const c = await container('proxy');
    const [containerEnd, containerProxySide] = Channel.pair(['container', 'container-proxy-side']);
    const [remoteEnd, remoteProxySide] = Channel.pair(['remote', 'remote-proxy-side']);
    const counter = eventfd(); // the container takes back a count per message it has handled
    client.managerClient.proxyWakeChannel({
      containerJob: c.openHandle(),
      containerChannel: containerProxySide.toHandle(),
      remoteChannel: remoteProxySide.toHandle(),
      name: 'input-events',
      counter: counter.duplicate(),
    });
    const intoContainer: Array<{ bytes: Buffer; handles: Handle[] }> = [];
    const outOfContainer: Array<{ bytes: Buffer; handles: Handle[] }> = [];
    containerEnd.on('message', (bytes: Buffer, handles: Handle[]) => intoContainer.push({ bytes, handles }));
    remoteEnd.on('message', (bytes: Buffer, handles: Handle[]) => outOfContainer.push({ bytes, handles }));
    containerEnd.start();
    remoteEnd.start();

    // In, with a handle that arrives as the same object; the counter counts it.
    const [kept, sent] = Channel.pairHandles();
    remoteEnd.send(Buffer.from('hello container'), [sent]);
    await until('forwarded in', () => intoContainer.length === 1);
    expect(intoContainer[0].bytes.toString()).toBe('hello container');
    fs.writeSync(kept.fd, Buffer.from('through'));
    const got = Buffer.alloc(16);
    expect(fs.readSync(intoContainer[0].handles[0].fd, got, 0, 16, null)).toBe(7);
    expect(native.pollNow(counter.fd, 1)).toBe(1); // COUNTER_POSITIVE

    // A count not taken back keeps the container from staying suspended.
    expect(await client.managerClient.suspendContainer({ containerJob: c.openHandle() })).toMatchObject({ ok: true, value: { resumeReason: 'input-events' } });
    expect(native.eventfdRead(counter.fd)).toBe(1); // handled: back to 0

    // Out, uncounted.
    containerEnd.send(Buffer.from('reply'), []);
    await until('forwarded out', () => outOfContainer.length === 1);
    expect(outOfContainer[0].bytes.toString()).toBe('reply');
    expect(native.pollNow(counter.fd, 1)).toBe(0);

    // Suspended; a message from outside wakes it.
    const pending = client.managerClient.suspendContainer({ containerJob: c.openHandle() });
    await until('frozen', () => c.events().frozen);
    expect(await c.staysStill(100)).toBe(true);
    remoteEnd.send(Buffer.from('wake up'), []);
    expect(await pending).toMatchObject({ ok: true, value: { resumeReason: 'input-events' } });
    await until('forwarded in', () => intoContainer.length === 2);
    await c.waitCounting();

    // Either side closing closes the other.
    const closed = new Promise((r) => containerEnd.once('close', r));
    remoteEnd.close();
    await closed;
    for (const m of [...intoContainer, ...outOfContainer]) for (const h of m.handles) h.close();
    kept.close();
    counter.close();
  });

  test('a container that does not read ends the proxy at the transport cap instead of growing the server without bound', async () => {
    const c = await container('flood', { counting: false });
    const [containerEnd, containerProxySide] = Channel.pair(); // the container never reads
    const [remoteEnd, remoteProxySide] = Channel.pair();
    const counter = eventfd();
    client.managerClient.proxyWakeChannel({
      containerJob: c.openHandle(),
      containerChannel: containerProxySide.toHandle(),
      remoteChannel: remoteProxySide.toHandle(),
      name: 'flood',
      counter: counter.duplicate(),
    });
    const logs = captureLogs(); // the cap is logged as an error: asserted below
    try {
      const closed = new Promise((r) => remoteEnd.once('close', r));
      remoteEnd.on('message', () => {});
      remoteEnd.start();
      const chunk = Buffer.alloc(60_000);
      let sent = 0;
      // The outside peer sends as fast as the proxy takes it (never over its own queue's cap).
      for (; sent < 2000 && !remoteEnd.closed; sent++) {
        try {
          remoteEnd.send(chunk, []);
        } catch {
          break;
        }
        while (remoteEnd.queuedBytes > 0 && !remoteEnd.closed) await sleep(1);
      }
      await closed; // 2000 x 60 kB is far past the 4 MiB cap: the proxy gave up and closed both sides
      expect(sent).toBeLessThan(2000);
      expect(native.pollNow(counter.fd, 1)).toBe(1); // what was forwarded was counted
      expect(logs.lines.join('\n')).toMatch(/channel proxy flood\/container: closing, the peer does not read/);
    } finally {
      logs.restore();
      containerEnd.close();
      counter.close();
    }
  });

  test('RegisterWakeWatcher: a watcher whose peer is gone is dropped at the next suspend', async () => {
    const c = await container('gone', { counting: false });
    const [w1, w1Remote] = EventPair.createHandles();
    await client.managerClient.registerWakeWatcher({ watcher: w1Remote });
    expect(svc.service.suspend.watcherTotal).toBe(1);
    w1.close();
    expect((await client.managerClient.suspendContainer({ containerJob: c.openHandle() })).ok).toBe(true);
    expect(svc.service.suspend.watcherTotal).toBe(0);
  });

  // ---------------------------------------------------------------- bad input
  test('a JOB that is not a cgroup v2 directory: SUSPEND_FAILURE, and the connection stays usable', async () => {
    // Our client refuses to send such a JOB (its handle check); a peer in another language may not.
    const unchecked = new runner.ManagerClient(connectService(svc.svcDir, runner.ManagerDiscoverableName), { handleCheck: null });
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'not-a-cgroup-'));
    const dirFd = new Handle(fs.openSync(tmp, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY));
    expect(await unchecked.suspendContainer({ containerJob: dirFd })).toEqual({ ok: false, error: runner.SuspendError.SUSPEND_FAILURE });
    const [a, b] = Channel.pairHandles();
    expect(await unchecked.suspendContainer({ containerJob: b })).toEqual({ ok: false, error: runner.SuspendError.SUSPEND_FAILURE });
    a.close();
    fs.rmSync(tmp, { recursive: true });
    const c = await container('after-bad', { counting: false });
    expect((await unchecked.suspendContainer({ containerJob: c.openHandle() })).ok).toBe(true);
    unchecked.close();
  });

  test('the cgroup2 root (no cgroup.freeze): SUSPEND_FAILURE, nothing frozen', async () => {
    const mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' - ')[1]?.startsWith('cgroup2 '))!;
    const root = mountinfo.split(' ')[4];
    const h = new Handle(fs.openSync(root, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY));
    expect(await client.managerClient.suspendContainer({ containerJob: h })).toEqual({ ok: false, error: runner.SuspendError.SUSPEND_FAILURE });
    expect(cgroupParent().length).toBeGreaterThan(0);
  });

  test('a second suspend of the same container while the first is under way: SUSPEND_FAILURE; the first goes on', async () => {
    const c = await container('twice');
    const { ev, pending: first } = await frozenWithEventfd(client.managerClient, c);
    expect(await client.managerClient.suspendContainer({ containerJob: c.openHandle() })).toEqual({ ok: false, error: runner.SuspendError.SUSPEND_FAILURE });
    expect(c.events().frozen).toBe(true);
    native.eventfdAdd(ev.fd, 1);
    expect(await first).toMatchObject({ ok: true, value: { resumeReason: 'ev' } });
    await c.waitCounting();
    ev.close();
  });

  test('a container that empties while frozen: SUSPEND_FAILURE, and the cgroup is left thawed', async () => {
    const c = await container('empties');
    const { ev, pending } = await frozenWithEventfd(client.managerClient, c);
    await c.kill();
    expect(await pending).toEqual({ ok: false, error: runner.SuspendError.SUSPEND_FAILURE });
    expect(fs.readFileSync(path.join(c.path, 'cgroup.freeze'), 'latin1').trim()).toBe('0');
    ev.close();
  });

  test('the connection that asked closes mid-suspend: the container is thawed', async () => {
    const c = await container('asker-gone');
    const { ev } = await frozenWithEventfd(client.managerClient, c);
    client.close();
    await until('thawed', () => !c.events().frozen);
    await c.waitCounting();
    ev.close();
  });

  test('the service closing thaws what it froze', async () => {
    const c = await container('service-close');
    const { ev } = await frozenWithEventfd(client.managerClient, c);
    svc.close();
    expect(c.events().frozen).toBe(false); // synchronously, before close() returned
    await c.waitCounting();
    ev.close();
  });
});

// ---------------------------------------------------------------- the server as a process
describeCgroups(title('a server process stopped while a container is frozen'), () => {
  let dir: string;
  let servers: ChildProcess[];
  beforeEach(() => {
    containers = [];
    servers = [];
    serverStderr = '';
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'suspend-svc-'));
  });
  afterEach(async () => {
    for (const s of servers) if (s.exitCode === null && s.signalCode === null) s.kill('SIGKILL');
    for (const c of containers) await c.remove();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  let serverStderr = '';
  function serve(as?: { uid: number; gid: number }): ChildProcess {
    const cli = path.join(__dirname, '..', '..', 'bin', 'starnix-pager');
    const p = spawn(process.execPath, [cli, 'serve', '--svc-dir', dir, '--log-level', 'error'], { stdio: ['ignore', 'ignore', 'pipe'], ...as });
    p.stderr!.on('data', (b: Buffer) => (serverStderr += b.toString()));
    servers.push(p);
    return p;
  }

  /** The exit code, with the server's stderr when it is not 0 (so a failure says why). */
  function exitOf(p: ChildProcess): Promise<string> {
    return new Promise((r) => p.once('exit', (code, signal) => r(code === 0 ? '0' : `exit ${code ?? signal}: ${serverStderr}`)));
  }

  async function suspendThrough(c: TestContainer): Promise<{ ev: Handle; conn: PagerClientConnection }> {
    await until(() => `the server listens (stderr: ${serverStderr})`, () => fs.existsSync(path.join(dir, runner.ManagerDiscoverableName)), 30_000);
    const conn = PagerClientConnection.connect(dir);
    const { ev } = await frozenWithEventfd(conn.managerClient, c);
    return { ev, conn };
  }

  test('SIGTERM: the server thaws the container and exits 0', async () => {
    const c = await container('sigterm');
    const server = serve();
    const { ev, conn } = await suspendThrough(c);
    const exited = exitOf(server);
    server.kill('SIGTERM');
    expect(await exited).toBe('0');
    expect(c.events().frozen).toBe(false);
    await c.waitCounting();
    conn.close();
    ev.close();
  });

  test('a server that may not write the cgroup (it runs as nobody): SUSPEND_FAILURE, the container untouched', async () => {
    const c = await container('not-writable');
    fs.chownSync(dir, 65534, 65534);
    serve({ uid: 65534, gid: 65534 });
    await until(() => `the server listens (stderr: ${serverStderr})`, () => fs.existsSync(path.join(dir, runner.ManagerDiscoverableName)), 30_000);
    const conn = PagerClientConnection.connect(dir);
    try {
      expect(await conn.managerClient.suspendContainer({ containerJob: c.openHandle() })).toEqual({ ok: false, error: runner.SuspendError.SUSPEND_FAILURE });
      expect(c.events().frozen).toBe(false);
      await c.waitCounting();
    } finally {
      conn.close();
    }
  });

  test('SIGKILL leaves it frozen, listed in the ledger; the next server on the same directory thaws it at start', async () => {
    const c = await container('sigkill');
    const server = serve();
    const { ev, conn } = await suspendThrough(c);
    const ledger = path.join(dir, '.frozen-cgroups.json');
    expect(JSON.parse(fs.readFileSync(ledger, 'utf8')).frozen.map((e: { path: string }) => e.path)).toEqual([c.path]);
    const exited = new Promise((r) => server.once('exit', r));
    server.kill('SIGKILL');
    await exited;
    conn.close();
    expect(await c.staysStill(200)).toBe(true); // nobody thawed it
    expect(c.events().frozen).toBe(true);
    serve();
    await until('thawed by the next server', () => !c.events().frozen, 30_000);
    await c.waitCounting();
    expect(fs.existsSync(ledger)).toBe(false);
    ev.close();
  });
});

// ---------------------------------------------------------------- a task that cannot freeze
// A process blocked in a read that its FUSE daemon never answers sleeps in the kernel, where the
// freezer cannot stop it: the cgroup never reports frozen.
const fuseSkip = skipReason ?? stallfsUnavailable();
(fuseSkip === null ? describe : describe.skip)(title(`a container that cannot freeze${fuseSkip !== null && skipReason === null ? ` [skipped: ${fuseSkip}]` : ''}`), () => {
  test('not frozen within freezeTimeoutMs: SUSPEND_FAILURE, and the cgroup is thawed', async () => {
    containers = [];
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'freeze-stuck-'));
    const backing = path.join(tmp, 'backing');
    fs.writeFileSync(backing, Buffer.alloc(65536, 7));
    const fsys = await mountStallfs(backing, { stallRead: true, directIo: true });
    const local = EmbeddedService.start({ suspend: { freezeTimeoutMs: 1500 } });
    const conn = PagerClientConnection.connect(local.svcDir);
    const c = await container('stuck', { counting: false });
    const reader = spawn('sh', ['-c', `echo $$ > '${c.path}/cgroup.procs' && exec cat '${fsys.filePath}' > /dev/null`], { stdio: 'ignore' });
    try {
      await fsys.waitStalling(1, 10_000);
      const r = await conn.managerClient.suspendContainer({ containerJob: c.openHandle() });
      expect(r).toEqual({ ok: false, error: runner.SuspendError.SUSPEND_FAILURE });
      expect(fs.readFileSync(path.join(c.path, 'cgroup.freeze'), 'latin1').trim()).toBe('0');
      expect(c.events().frozen).toBe(false);
    } finally {
      conn.close();
      local.close();
      reader.kill('SIGKILL');
      await fsys.unmount();
      for (const x of containers) await x.remove();
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
