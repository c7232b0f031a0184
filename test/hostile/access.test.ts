// Who may connect, and what a client may do with what it is given: socket permissions, the uid
// allow-list, limits that answer NO_RESOURCES, and files that no client can write, truncate or
// grow under another client's reads.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PagerClientConnection, PagerCallError } from '../../src/client';
import * as runner from '../../src/gen/fuchsia_starnix_runner';
import { Channel } from '../../src/transport/channel';
import { Handle } from '../../src/transport/handle';
import { RawPeer, decodeReply, request } from './raw_peer';
import { DIST_HOSTILE, ServerProcess, TestImage, buildImage, expectFdsBack, removeImage, sleep, wellBehavedRead } from './support';

const NO_RESOURCES = -3;
let img: TestImage;
let tmp: string;

beforeAll(() => {
  img = buildImage([200_000, 50_000], { seed: 5 });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hostile-access-'));
  fs.chmodSync(tmp, 0o755); // so that uid 65534 can reach the image and the helpers (not the svc dir)
  fs.chmodSync(img.dir, 0o755);
  fs.chmodSync(img.image, 0o644);
}, 60_000);

afterAll(() => {
  if (img) removeImage(img);
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Runs the transport peer's connect mode as uid 65534: "connected" or "error CODE". */
function connectAs(uid: number, svcDir: string): string {
  const peer = path.join(DIST_HOSTILE, '..', 'transport', 'peer.js');
  return execFileSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, peer, 'connect', svcDir, runner.ManagerDiscoverableName], {
    encoding: 'utf8',
  }).trim();
}

test('service directory 0700 and sockets 0600: another uid cannot connect', async () => {
  const svc = path.join(tmp, 'svc-perm');
  const server = await ServerProcess.start(svc, { cli: true });
  try {
    expect(fs.statSync(svc).mode & 0o777).toBe(0o700);
    for (const name of [runner.ManagerDiscoverableName, 'starnix.pager.Mapper']) {
      const st = fs.statSync(path.join(svc, name));
      expect(st.isSocket()).toBe(true);
      expect(st.mode & 0o777).toBe(0o600);
    }
    expect(connectAs(65534, svc)).toBe('error EACCES');
    // Even with the folder opened up, the socket's own 0600 keeps uid 65534 out.
    fs.chmodSync(svc, 0o755);
    expect(connectAs(65534, svc)).toBe('error EACCES');
  } finally {
    await server.stop();
  }
});

test('uid allow-list: a uid not on it is hung up on; one on it is served', async () => {
  const svc = path.join(tmp, 'svc-allow');
  const server = await ServerProcess.start(svc, { allowUids: [0] });
  try {
    // The first pager sets up what pagers share for good (the close watcher's inotify instance):
    // part of the baseline.
    await wellBehavedRead(svc, img);
    const base = server.fdCount();
    // Give uid 65534 file-system access so that only the allow-list stands in its way.
    fs.chmodSync(svc, 0o755);
    for (const name of [runner.ManagerDiscoverableName, 'starnix.pager.Mapper']) fs.chmodSync(path.join(svc, name), 0o666);
    const script = [
      `const { PagerClientConnection } = require(${JSON.stringify(path.join(DIST_HOSTILE, '..', '..', 'src', 'client'))});`,
      `const fs = require('fs');`,
      `const c = PagerClientConnection.connect(${JSON.stringify(svc)});`,
      `const p = c.createPager(fs.openSync(${JSON.stringify(img.image)}, 'r'), ${img.blockSize});`,
      `p.registerFile({ name: 'x', inode: ${img.files[0].ino}, size: 4096n, extents: [] })`,
      `  .then(() => console.log('served'), (e) => console.log('refused ' + (e.status ?? e.code ?? e.message)))`,
      `  .finally(() => { p.close(); c.close(); });`,
    ].join('\n');
    const out = execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script], {
      encoding: 'utf8',
      env: { ...process.env, STARNIX_PAGER_LOG: 'error' },
      timeout: 10_000,
    }).trim();
    expect(out).toMatch(/^refused /);
    expect(out).not.toBe('served');
    await wellBehavedRead(svc, img); // root (uid 0) is on the list
    await expectFdsBack(server, base, 'a refused uid');
  } finally {
    await server.stop();
  }
});

test('limits: files per pager and pagers per connection answer NO_RESOURCES; freeing one makes room', async () => {
  const svc = path.join(tmp, 'svc-limits');
  const server = await ServerProcess.start(svc, { limits: { filesPerPager: 3, pagersPerConnection: 2 } });
  const client = PagerClientConnection.connect(svc);
  try {
    const pager = client.createPager(fs.openSync(img.image, 'r'), img.blockSize);
    const f = img.files[0];
    const held = [];
    for (let i = 0; i < 3; i++) held.push(await pager.registerFile({ name: `f${i}`, inode: 100 + i, size: f.size, extents: f.extents }));
    await expect(pager.registerFile({ name: 'f3', inode: 103, size: f.size, extents: f.extents })).rejects.toMatchObject({ status: NO_RESOURCES });
    held.pop()!.close();
    await sleep(100); // the close reaches the pager through inotify
    const again = await pager.registerFile({ name: 'f3', inode: 103, size: f.size, extents: f.extents });
    const m = await again.map();
    expect(m.read(0, 1000).equals(f.data.subarray(0, 1000))).toBe(true);
    m.close();
    again.close();
    for (const h of held) h.close();
    // Pagers per connection: the third live one is refused with a NO_RESOURCES epitaph.
    const second = client.createPager(fs.openSync(img.image, 'r'), img.blockSize);
    await second.registerFile({ name: 's', inode: 1, size: 10n, extents: [] }).then((x) => x.close());
    const third = client.createPager(fs.openSync(img.image, 'r'), img.blockSize);
    await expect(third.registerFile({ name: 't', inode: 1, size: 10n, extents: [] })).rejects.toMatchObject({ status: NO_RESOURCES });
    expect(PagerCallError).toBeDefined();
    second.close();
    pager.close();
    third.close();
  } finally {
    client.close();
    await server.stop();
  }
});

test('a client cannot write, truncate, grow or remap writable a file another client reads', async () => {
  const svc = path.join(tmp, 'svc-write');
  const server = await ServerProcess.start(svc);
  const f = img.files[1];
  const reader = PagerClientConnection.connect(svc);
  const attacker = PagerClientConnection.connect(svc);
  try {
    const rp = reader.createPager(fs.openSync(img.image, 'r'), img.blockSize);
    const rf = await rp.registerFile({ name: f.path, inode: f.ino, size: f.size, extents: f.extents });
    const rm = await rf.map();
    expect(rm.read(0, Number(f.size)).equals(f.data)).toBe(true);
    // The attacker's handle to the very same file (same pager, same inode).
    const af = await rp.registerFile({ name: f.path, inode: f.ino, size: f.size, extents: f.extents });
    const fd = af.handle.fd;
    const attempts: Record<string, string> = {};
    const attempt = (what: string, fn: () => unknown) => {
      try {
        fn();
        attempts[what] = 'SUCCEEDED';
      } catch (e) {
        attempts[what] = (e as NodeJS.ErrnoException).code ?? String(e);
      }
    };
    attempt('write()', () => fs.writeSync(fd, Buffer.from('evil'), 0, 4, 0));
    attempt('ftruncate() shrink', () => fs.ftruncateSync(fd, 10));
    attempt('ftruncate() grow', () => fs.ftruncateSync(fd, Number(f.size) * 2));
    attempt('reopen /proc/self/fd/N O_RDWR + write', () => {
      const rw = fs.openSync(`/proc/self/fd/${fd}`, 'r+');
      try {
        fs.writeSync(rw, Buffer.from('evil'), 0, 4, 0);
      } finally {
        fs.closeSync(rw);
      }
    });
    attempt('reopen /proc/self/fd/N O_WRONLY|O_TRUNC', () => fs.closeSync(fs.openSync(`/proc/self/fd/${fd}`, 'w')));
    // mmap PROT_WRITE MAP_SHARED: python's mmap module does exactly that on an inherited fd.
    attempt('mmap PROT_WRITE MAP_SHARED', () =>
      execFileSync('python3', ['-c', 'import mmap; m = mmap.mmap(3, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE); m[0:4] = b"evil"'], {
        stdio: ['ignore', 'ignore', 'pipe', fd],
      }),
    );
    // Root passes mode 0444, so the write seal (F_SEAL_FUTURE_WRITE, added after the pager's
    // own fill mapping exists) is what refuses a read-write reopen's writes; the reader's bytes
    // must be untouched.
    const readerSees = rm.read(0, Number(f.size));
    const corrupted = !readerSees.equals(f.data);
    expect({ attempts, readerBytesCorrupted: corrupted }).toEqual({
      attempts: Object.fromEntries(Object.entries(attempts).map(([k, v]) => [k, v === 'SUCCEEDED' ? 'a refusal' : v])),
      readerBytesCorrupted: false,
    });
    const fresh = await rf.map();
    expect(fresh.read(0, Number(f.size)).equals(f.data)).toBe(true);
    expect(fs.fstatSync(rf.handle.fd).size).toBe(Number(f.size));
    fresh.close();
    rm.close();
    af.close();
    rf.close();
    rp.close();
  } finally {
    reader.close();
    attacker.close();
    await server.stop();
  }
});
