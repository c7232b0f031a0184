// The threat model of docs/hardening.md ("Holders of another uid"): a holder of a file's handle
// that runs as another uid than the server (here 65534, without capabilities) cannot make the file
// writable in any way, so it cannot fallocate() zeros into it, write, resize, punch holes or change
// its mode; a second reader keeps reading the right bytes. Root and the server's own uid are out of
// scope: they can ptrace the server anyway (see the doc).
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PagerClientConnection } from '../../src/client';
import { ServerProcess, TestImage, buildImage, removeImage } from './support';

let img: TestImage;
let svc: string;
let server: ServerProcess;

beforeAll(async () => {
  img = buildImage([300_000], { seed: 12 });
  svc = fs.mkdtempSync(path.join(os.tmpdir(), 'other-uid-'));
  server = await ServerProcess.start(svc);
});

afterAll(async () => {
  await server?.stop();
  if (img) removeImage(img);
  if (svc) fs.rmSync(svc, { recursive: true, force: true });
});

// Run as uid 65534 with the handle as fd 3: every way to write into the file, each answered with
// its errno name ("ok" would be a hole in the claim).
const ATTACKS = String.raw`
import errno, json, mmap, os
out = {}
def attempt(name, fn):
    try:
        fn()
        out[name] = "ok"
    except OSError as e:
        out[name] = errno.errorcode.get(e.errno, str(e.errno))
def reopen_rdwr_fallocate():
    fd = os.open("/proc/self/fd/3", os.O_RDWR)
    os.posix_fallocate(fd, 0, 65536)
attempt("reopen /proc/self/fd/3 O_RDWR, then fallocate", reopen_rdwr_fallocate)
attempt("reopen /proc/self/fd/3 O_WRONLY", lambda: os.open("/proc/self/fd/3", os.O_WRONLY))
attempt("fallocate on the handle", lambda: os.posix_fallocate(3, 0, 65536))
attempt("write on the handle", lambda: os.pwrite(3, b"evil", 0))
attempt("ftruncate on the handle", lambda: os.ftruncate(3, 4096))
attempt("fchmod 0666 on the handle", lambda: os.fchmod(3, 0o666))
attempt("fchown to itself", lambda: os.fchown(3, os.getuid(), os.getgid()))
attempt("mmap PROT_WRITE MAP_SHARED", lambda: mmap.mmap(3, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE))
def punch_through_shared_mapping():
    m = mmap.mmap(3, 4096, mmap.MAP_SHARED, mmap.PROT_READ)
    m.madvise(mmap.MADV_REMOVE, 0, 4096)
attempt("madvise(MADV_REMOVE) on a shared read-only mapping", punch_through_shared_mapping)
print(json.dumps({"uid": os.getuid(), "results": out}))
`;

test('a holder running as another uid cannot reopen its handle writable, fallocate, write, resize or chmod it; another reader reads right', async () => {
  const f = img.files[0];
  const conn = PagerClientConnection.connect(svc);
  try {
    const pager = conn.createPager(fs.openSync(img.image, 'r'), img.blockSize);
    const reader = await pager.registerFile({ name: f.path, inode: f.ino, size: f.size, extents: f.extents });
    const mapping = await reader.map();
    expect(mapping.read(0, 65536).equals(f.data.subarray(0, 65536))).toBe(true); // some pages in, most not
    const held = await pager.registerFile({ name: f.path, inode: f.ino, size: f.size, extents: f.extents });
    const out = execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '/usr/bin/python3', '-c', ATTACKS], {
      stdio: ['ignore', 'pipe', 'pipe', held.handle.fd],
      encoding: 'utf8',
    });
    const report = JSON.parse(out) as { uid: number; results: Record<string, string> };
    expect(report.uid).toBe(65534);
    expect(report.results).toEqual({
      'reopen /proc/self/fd/3 O_RDWR, then fallocate': 'EACCES',
      'reopen /proc/self/fd/3 O_WRONLY': 'EACCES',
      'fallocate on the handle': 'EBADF',
      'write on the handle': 'EBADF',
      'ftruncate on the handle': 'EINVAL',
      'fchmod 0666 on the handle': 'EPERM',
      'fchown to itself': 'EPERM',
      'mmap PROT_WRITE MAP_SHARED': 'EACCES',
      'madvise(MADV_REMOVE) on a shared read-only mapping': 'EACCES',
    });
    // The first reader's pages, and a fresh reader's (every page, most paged in only now).
    expect(mapping.read(0, Number(f.size)).equals(f.data)).toBe(true);
    const second = await held.map();
    expect(second.read(0, Number(f.size)).equals(f.data)).toBe(true);
    second.close();
    mapping.close();
    held.close();
    reader.close();
    pager.close();
  } finally {
    conn.close();
  }
});
