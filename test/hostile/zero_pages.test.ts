// Issue 12, "no holder can make another reader see zeros": a holder of a file's handle maps it
// WITHOUT a uffd (uid 65534, no capabilities) and touches pages no reader has read yet, or asks the
// kernel to populate them (MADV_POPULATE_READ); root reopens its handle read-write and fallocates.
// Each puts pages of zeros into the file's shared page cache where the pager has not filled it yet.
// A reader of the client library (another process than the holder and the server) must still read
// every byte right: its mapping is registered MISSING|MINOR, so such a page faults to the pager,
// which writes the right bytes over it before mapping it. On 4 KiB memfds here; on hugetlb ones in
// test/pager/huge_pages.test.ts (which measures the machine's huge page pool, so no other suite
// may use the pool while it runs).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PagerClientConnection } from '../../src/client';
import { holder } from '../support/zero_page_holder';
import { ServerProcess, TestImage, buildImage, removeImage } from './support';

interface Case {
  name: string;
  size: number;
  page: number;
  serverArgs: string[];
  skip?: string;
}

const CASES: Case[] = [{ name: '4 KiB memfd', size: 3 * (1 << 20) + 1000, page: 4096, serverArgs: ['--huge-pages', 'never'] }];

describe.each(CASES)('$name', (c) => {
  let img: TestImage;
  let svc: string;
  let server: ServerProcess;
  const run = c.skip ? test.skip : test;

  beforeAll(async () => {
    if (c.skip) return;
    img = buildImage([c.size, c.size, c.size], { seed: 1212 });
    svc = fs.mkdtempSync(path.join(os.tmpdir(), 'zero-pages-'));
    server = await ServerProcess.start(svc, { cli: true, cliArgs: c.serverArgs });
  });

  afterAll(async () => {
    await server?.stop();
    if (img) removeImage(img);
    if (svc) fs.rmSync(svc, { recursive: true, force: true });
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
