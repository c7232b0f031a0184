// Issue 12, "no holder can make another reader see zeros": a holder of a file's handle maps it
// WITHOUT a uffd (uid 65534, no capabilities) and touches pages no reader has read yet, or asks the
// kernel to populate them (MADV_POPULATE_READ); root reopens its handle read-write and fallocates.
// Each puts pages of zeros into the file's shared page cache where the pager has not filled it yet.
// A reader of the client library (another process than the holder and the server) must still read
// every byte right: its mapping is registered MISSING|MINOR, so such a page faults to the pager,
// which writes the right bytes over it before mapping it. Both on 4 KiB memfds and on hugetlb
// ones (the suite grows vm.nr_hugepages itself and is skipped with the reason when it cannot).
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PagerClientConnection } from '../../src/client';
import { growPool, HugePool } from '../support/hugetlb_pool';
import { ServerProcess, TestImage, buildImage, removeImage } from './support';

const HUGE = 2 << 20;

// Run with the handle as fd 3: ACTION is "touch" (MAP_SHARED read-only, no uffd, one byte read
// per page at a stride of PAGE from FROM on), "populate" (the same range, MADV_POPULATE_READ), or
// "fallocate" (root: reopen /proc/self/fd/3 O_RDWR, fallocate(fd, 0, FROM, SIZE - FROM)). Prints
// JSON: the uid, how many pages it touched, and the sum of the bytes it read there (0: it saw, and
// so made, zero pages).
const HOLDER = String.raw`
import json, mmap, os, sys
action, size, page, start = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
out = {"uid": os.getuid(), "pages": 0, "sum": 0}
if action == "fallocate":
    fd = os.open("/proc/self/fd/3", os.O_RDWR)
    os.posix_fallocate(fd, start, size - start)
    out["pages"] = (size - start + page - 1) // page
else:
    m = mmap.mmap(3, size, mmap.MAP_SHARED, mmap.PROT_READ)
    if action == "populate":
        m.madvise(22, start - start % mmap.PAGESIZE, size - (start - start % mmap.PAGESIZE))  # MADV_POPULATE_READ
    for at in range(start, size, page):
        out["sum"] += m[at]
        out["pages"] += 1
print(json.dumps(out))
`;

function holder(action: 'touch' | 'populate' | 'fallocate', fd: number, size: number, page: number, from: number, asRoot: boolean): { uid: number; pages: number; sum: number } {
  const who = asRoot ? [] : ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all'];
  const argv = [...who, '/usr/bin/python3', '-c', HOLDER, action, String(size), String(page), String(from)];
  const out = execFileSync(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe', fd], encoding: 'utf8' });
  return JSON.parse(out);
}

interface Case {
  name: string;
  size: number;
  page: number;
  serverArgs: string[];
  skip?: string;
}

// Decided at load time: the reason is in the skipped test's name.
let pool: HugePool | string = 'not root: vm.nr_hugepages cannot be set';
if (process.getuid?.() === 0) {
  pool = growPool(24);
  if (typeof pool !== 'string') pool.restore(); // grown again in beforeAll, for the suite's lifetime
}
const CASES: Case[] = [
  { name: '4 KiB memfd', size: 3 * (1 << 20) + 1000, page: 4096, serverArgs: ['--huge-pages', 'never'] },
  {
    name: 'hugetlb memfd',
    size: 5 * HUGE + 1000,
    page: HUGE,
    serverArgs: ['--huge-pages', 'always'],
    skip: typeof pool === 'string' ? pool : undefined,
  },
];

describe.each(CASES)('$name', (c) => {
  let img: TestImage;
  let svc: string;
  let server: ServerProcess;
  let held: HugePool | undefined;
  const run = c.skip ? test.skip : test;

  beforeAll(async () => {
    if (c.skip) return;
    if (c.page === HUGE) {
      const p = growPool(24);
      if (typeof p === 'string') throw new Error(`the huge page pool could not be grown: ${p}`);
      held = p;
    }
    img = buildImage([c.size, c.size, c.size], { seed: 1212 });
    svc = fs.mkdtempSync(path.join(os.tmpdir(), 'zero-pages-'));
    server = await ServerProcess.start(svc, { cli: true, cliArgs: c.serverArgs });
  });

  afterAll(async () => {
    await server?.stop();
    if (img) removeImage(img);
    if (svc) fs.rmSync(svc, { recursive: true, force: true });
    held?.restore();
  });

  // One file per test: each registers the inode afresh, so no page of it is filled before.
  async function attack(fileIndex: number, act: (heldFd: number, readFirst: () => void) => void): Promise<void> {
    const f = img.files[fileIndex];
    const conn = PagerClientConnection.connect(svc);
    try {
      const pager = conn.createPager(fs.openSync(img.image, 'r'), img.blockSize);
      const reader = await pager.registerFile({ name: f.path, inode: f.ino, size: f.size, extents: f.extents });
      const heldHandle = await pager.registerFile({ name: f.path, inode: f.ino, size: f.size, extents: f.extents });
      const mapping = await reader.map();
      try {
        act(heldHandle.handle.fd, () => expect(mapping.read(0, c.page).equals(f.data.subarray(0, c.page))).toBe(true));
        // Every byte right, in this mapping and in a fresh one (of the same process: another than
        // the holder's and the server's).
        expect(mapping.read(0, Number(f.size)).equals(f.data)).toBe(true);
        const second = await heldHandle.map();
        expect(second.read(0, Number(f.size)).equals(f.data)).toBe(true);
        second.close();
      } finally {
        mapping.close();
        heldHandle.close();
        reader.close();
        pager.close();
      }
    } finally {
      conn.close();
    }
    expect(server.alive).toBe(true);
  }

  run(`${c.skip ? `(skipped: ${c.skip}) ` : ''}a holder as uid 65534 maps its handle without a uffd and touches every page before a reader does: the reader reads every byte right`, async () => {
    await attack(0, (fd) => {
      const seen = holder('touch', fd, c.size, c.page, 0, false);
      expect(seen.uid).toBe(65534);
      expect(seen.pages).toBe(Math.ceil(c.size / c.page));
      expect(seen.sum).toBe(0); // it saw zeros: the pages are in the shared cache, unfilled
    });
  });

  run(`${c.skip ? `(skipped: ${c.skip}) ` : ''}a holder as uid 65534 populates (MADV_POPULATE_READ) the pages ahead of a reader that has begun: the reader reads every byte right`, async () => {
    await attack(1, (fd, readFirst) => {
      readFirst(); // the first page (and its read-ahead) filled by the pager
      const seen = holder('populate', fd, c.size, c.page, Math.floor(c.size / 2), false);
      expect(seen.uid).toBe(65534);
      expect(seen.sum).toBe(0);
    });
  });

  run(`${c.skip ? `(skipped: ${c.skip}) ` : ''}root reopens its handle read-write and fallocates the file (issue item 7): the reader reads every byte right`, async () => {
    await attack(2, (fd, readFirst) => {
      readFirst();
      const done = holder('fallocate', fd, c.size, c.page, c.page, true);
      expect(done.uid).toBe(0);
    });
  });
});
