// Manager and Pager answers to bad or unsupported requests: each gets its documented answer
// (an epitaph on the new Pager channel, a zx.Status error, a SuspendError), and the service
// goes on serving well-behaved clients.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PagerCallError, PagerClientConnection } from '../../src/client';
import * as fidl from '../../src/fidl';
import { FidlPeerClosedError } from '../../src/fidl';
import * as runner from '../../src/gen/fuchsia_starnix_runner';
import { EmbeddedService } from '../../src/server/service';
import { ZX } from '../../src/zx_status';
import { Channel } from '../../src/transport/channel';
import { EventPair, ZX_USER_SIGNAL_0 } from '../../src/transport/eventpair';
import { connectService } from '../../src/transport/service_dir';
import { Handle } from '../../src/transport/handle';
import { createMemfd } from '../../src/transport/memfd';
import { createEventPair } from '../../src/transport/stand_ins';

let svc: EmbeddedService;
let client: PagerClientConnection;
let tmp: string;

beforeEach(() => {
  svc = EmbeddedService.start();
  client = PagerClientConnection.connect(svc.svcDir);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'manager-test-'));
});
afterEach(() => {
  client.close();
  svc.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** The status a pager channel was closed with, seen by its first RegisterFile. */
async function epitaphOf(pager: ReturnType<PagerClientConnection['createPager']>): Promise<number> {
  try {
    await pager.registerFile({ name: 'f', inode: 1, size: 1n, extents: [] });
  } catch (e) {
    if (e instanceof FidlPeerClosedError) return e.status;
    throw e;
  }
  throw new Error('the pager channel was not closed');
}

/** A well-behaved client still gets its bytes. */
async function stillServes(): Promise<void> {
  const backing = createMemfd('ok', 4096);
  fs.writeSync(backing.fd, Buffer.from('alive'), 0, 5, 0);
  const pager = client.createPager(backing, 4096);
  const f = await pager.registerFile({ name: 'ok', inode: 9, size: 5n, extents: [{ logicalStart: 0, logicalEnd: 1, physicalBlock: 0n }] });
  const m = await f.map();
  expect(m.read(0, 5).toString()).toBe('alive');
  m.close();
  f.close();
  pager.close();
}

describe('CreatePager refusals close the new Pager channel with an epitaph', () => {
  test.each([
    ['block size 0', 0, ZX.INVALID_ARGS],
    ['block size 3 (not a power of two)', 3, ZX.INVALID_ARGS],
    ['block size 2 MiB (over 1 MiB)', 2 * 1024 * 1024, ZX.INVALID_ARGS],
  ])('%s', async (_what, blockSize, status) => {
    const pager = client.createPager(createMemfd('b', 4096), blockSize);
    expect(await epitaphOf(pager)).toBe(status);
    await stillServes();
  });

  // The client library checks handles as declared before sending (a pipe is no VMO), so these
  // come from a client that does not check: the server refuses them itself.
  function uncheckedCreatePager(backing: Handle): runner.PagerClient {
    const manager = new runner.ManagerClient(connectService(svc.svcDir, runner.ManagerDiscoverableName), { handleCheck: null });
    const [clientEnd, serverEnd] = Channel.pairHandles();
    manager.createPager({ backingVmo: backing, blockSize: 4096n, pager: serverEnd });
    uncheckedManagers.push(manager);
    return new runner.PagerClient(Channel.fromHandle(clientEnd));
  }
  const uncheckedManagers: runner.ManagerClient[] = [];
  afterAll(() => {
    for (const m of uncheckedManagers) m.close();
  });
  async function refusal(pager: runner.PagerClient): Promise<unknown> {
    const err = await pager.registerFile({ name: 'f', inodeNum: 1, size: 1n, extents: [] }).catch((e: unknown) => e);
    return (err as { status?: number }).status;
  }

  test('a pipe as backing_vmo: WRONG_TYPE', async () => {
    const [r, w] = pipe();
    w.close();
    expect(await refusal(uncheckedCreatePager(r))).toBe(ZX.WRONG_TYPE);
    await stillServes();
  });

  test('a directory as backing_vmo: WRONG_TYPE', async () => {
    const dir = new Handle(fs.openSync(tmp, 'r'));
    expect(await refusal(uncheckedCreatePager(dir))).toBe(ZX.WRONG_TYPE);
  });

  test('a write-only file as backing_vmo: ACCESS_DENIED', async () => {
    const file = new Handle(fs.openSync(path.join(tmp, 'wo'), 'w'));
    expect(await refusal(uncheckedCreatePager(file))).toBe(ZX.ACCESS_DENIED);
  });

  test('the client library refuses a pipe as backing_vmo before sending, and closes every handle', () => {
    const [r, w] = pipe();
    const fd = r.fd;
    expect(() => client.createPager(r, 4096)).toThrow(expect.objectContaining({ code: 'incorrect_handle_type' }));
    expect(r.valid).toBe(false);
    expect(() => fs.fstatSync(fd)).toThrow(/EBADF/);
    w.close();
  });

  test('missing backing_vmo or block_size: INVALID_ARGS', async () => {
    for (const req of [{ blockSize: 4096n }, { backingVmo: createMemfd('b', 4096) }]) {
      const [clientEnd, serverEnd] = Channel.pairHandles();
      client.managerClient.createPager({ ...req, pager: serverEnd });
      const pager = new runner.PagerClient(Channel.fromHandle(clientEnd));
      await expect(pager.registerFile({ name: 'f', inodeNum: 1, size: 1n, extents: [] })).rejects.toMatchObject({ status: ZX.INVALID_ARGS });
    }
    await stillServes();
  });
});

describe('RegisterFile refusals are zx.Status errors; the pager keeps serving', () => {
  const cases: [string, bigint, runner.PagerExtent[]][] = [
    ['overlapping extents', 8192n, [{ logicalStart: 0, logicalEnd: 2, physicalBlock: 0n }, { logicalStart: 1, logicalEnd: 2, physicalBlock: 4n }]],
    ['extents out of order', 8192n, [{ logicalStart: 1, logicalEnd: 2, physicalBlock: 0n }, { logicalStart: 0, logicalEnd: 1, physicalBlock: 4n }]],
    ['an empty extent', 8192n, [{ logicalStart: 1, logicalEnd: 1, physicalBlock: 0n }]],
    ['an extent past the backing', 8192n, [{ logicalStart: 0, logicalEnd: 2, physicalBlock: 15n }]],
    ['block arithmetic overflowing 64 bits', 8192n, [{ logicalStart: 0, logicalEnd: 1, physicalBlock: 0xffffffffffffffffn }]],
  ];
  test.each(cases)('%s: INVALID_ARGS', async (_what, size, extents) => {
    const pager = client.createPager(createMemfd('b', 16 * 4096), 4096);
    await expect(pager.registerFile({ name: 'bad', inode: 3, size, extents })).rejects.toMatchObject({ status: ZX.INVALID_ARGS });
    expect(svc.service.stats().files).toBe(0);
    // The same pager still registers a good file.
    const f = await pager.registerFile({ name: 'good', inode: 4, size: 10n, extents: [] });
    f.close();
    pager.close();
  });

  test('a request without its fields: INVALID_ARGS', async () => {
    const pager = client.createPager(createMemfd('b', 4096), 4096);
    const r = await pager.client.registerFile({ name: 'x' });
    expect(r).toEqual({ ok: false, error: ZX.INVALID_ARGS });
    pager.close();
  });

  test('the client sees PagerCallError with the status', async () => {
    const pager = client.createPager(createMemfd('b', 4096), 4096);
    const e = await pager.registerFile({ name: 'x', inode: 1, size: 1n, extents: [{ logicalStart: 2, logicalEnd: 1, physicalBlock: 0n }] }).catch((x) => x);
    expect(e).toBeInstanceOf(PagerCallError);
    expect(e.status).toBe(ZX.INVALID_ARGS);
    pager.close();
  });
});

describe('the other Manager methods have defined answers on Linux (the cgroup cases: suspend.test.ts)', () => {
  test('SuspendContainer without a container job: error SUSPEND_FAILURE', async () => {
    const r = await client.managerClient.suspendContainer({ suspendDebounceDuration: 10n });
    expect(r).toEqual({ ok: false, error: runner.SuspendError.SUSPEND_FAILURE });
  });

  test('RegisterWakeWatcher: success, and AWAKE (USER_0) is raised on the watcher at once', async () => {
    const [a, b] = EventPair.createHandles();
    await expect(client.managerClient.registerWakeWatcher({ watcher: b })).resolves.toBeUndefined();
    const mine = EventPair.fromHandle(a);
    await expect(mine.waitFor(ZX_USER_SIGNAL_0, 5000)).resolves.toBe(ZX_USER_SIGNAL_0);
    mine.close();
  });

  test('RegisterWakeWatcher with a channel end where an eventpair is declared: refused before it is sent, handle closed', async () => {
    const [a, b] = Channel.pairHandles();
    const err = await client.managerClient.registerWakeWatcher({ watcher: b }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(fidl.FidlEncodeError);
    expect((err as fidl.FidlEncodeError).code).toBe('incorrect_handle_type');
    expect(b.valid).toBe(false); // closed, as bindings close what they cannot send
    a.close();
    await stillServes();
  });

  test('one-way wake methods are accepted and ignored; the connection stays usable', async () => {
    client.managerClient.addWakeSource({ name: 'w', handle: createMemfd('h', 0), signals: 1 });
    client.managerClient.removeWakeSource({ handle: createMemfd('h', 0) });
    client.managerClient.proxyWakeChannel({ name: 'p' });
    await stillServes();
  });
});

function pipe(): [Handle, Handle] {
  // Node has no pipe(2); a FIFO opened both ways gives the two ends of a pipe.
  const fifo = path.join(tmp, 'fifo');
  require('child_process').execFileSync('mkfifo', [fifo]);
  const r = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const w = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  return [new Handle(r), new Handle(w)];
}
