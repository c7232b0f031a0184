// The fault path against real kernels objects: block sizes, partial pages, sharing, races,
// I/O errors, rejected arguments, a pager that goes away, and fd hygiene.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { NativePager, PagerError, findPagerForFile } from '../../src/pager/native_pager';
import { FileMapping } from '../../src/client/mapping';
import { openFile, memfdPager, waitFor, ext, openFdCount, PAGE, socketPair } from './helpers';
import { mountStallfs, stallfsUnavailable } from '../support/fuse';

function randomBytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

describe('block sizes and layouts', () => {
  for (const bs of [1024, 2048, 4096, 8192, 65536]) {
    test(`block size ${bs}: extents, holes, unaligned tail; pages shared with pread`, () => {
      const blocks = 64;
      const backingData = randomBytes(blocks * bs, bs);
      const { backing, pager } = memfdPager(blocks * bs, bs);
      fs.writeSync(backing, backingData, 0, backingData.length, 0);
      try {
        // Logical blocks: [0,3) at phys 5, hole [3,7), [7,20) at phys 30 (an odd offset for
        // small blocks), hole, [25,30) at phys 1, then a size that ends mid-block and mid-page.
        const extents = [ext(0, 3, 5), ext(7, 20, 30), ext(25, 30, 1)];
        const size = 29 * bs + 123;
        const expected = Buffer.alloc(size);
        for (const e of extents) {
          const start = e.logicalStart * bs;
          const end = Math.min(e.logicalEnd * bs, size);
          backingData.copy(expected, start, Number(e.physicalBlock) * bs, Number(e.physicalBlock) * bs + (end - start));
        }
        const f = openFile(pager, `f${bs}`, 1, size, extents);
        // Read back to front in odd pieces so that read-ahead windows start everywhere.
        const got = Buffer.alloc(size);
        for (let off = size; off > 0; ) {
          const len = Math.min(off, 3 * PAGE + 17);
          off -= len;
          f.mapping.read(off, len).copy(got, off);
        }
        expect(got.equals(expected)).toBe(true);
        // The pages live in the memfd's page cache: pread sees them, zeros beyond the size.
        const viaFd = Buffer.alloc(size);
        fs.readSync(f.fd, viaFd, 0, size, 0);
        expect(viaFd.equals(expected)).toBe(true);
        const s = pager.stats();
        expect(s.failures).toBe(0);
        expect(s.faults).toBeGreaterThan(0);
        expect(s.bytesSupplied).toBeGreaterThan(0n);
        expect(s.bytesZeroed).toBeGreaterThan(0n);
        f.close();
      } finally {
        pager.stop();
        fs.closeSync(backing);
      }
    });
  }

  test('regular-file backing with dropCache, fixed read-ahead, two pager threads', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pager-'));
    const file = path.join(dir, 'image');
    const data = randomBytes(4 << 20, 7);
    fs.writeFileSync(file, data);
    const backing = fs.openSync(file, 'r');
    const pager = NativePager.create(backing, 4096, { threads: 2, readahead: 'fixed', dropCache: true });
    try {
      const f = openFile(pager, 'big', 9, data.length - 1000, [ext(0, 1024, 0)]);
      expect(f.mapping.read(0, data.length - 1000).equals(data.subarray(0, data.length - 1000))).toBe(true);
      f.close();
    } finally {
      pager.stop();
      fs.closeSync(backing);
      fs.rmSync(dir, { recursive: true });
    }
  });
});

describe('sharing and races', () => {
  test('two mappings of one inode: closing one leaves the other working', async () => {
    const { backing, pager } = memfdPager(1 << 20, 4096);
    const data = randomBytes(1 << 20, 3);
    fs.writeSync(backing, data, 0, data.length, 0);
    try {
      const one = openFile(pager, 'x', 5, 1 << 20, [ext(0, 256, 0)]);
      const two = openFile(pager, 'x', 5, 1 << 20, [ext(0, 256, 0)]);
      expect(pager.stats().files).toBe(1);
      expect(one.mapping.read(0, 8192).equals(data.subarray(0, 8192))).toBe(true);
      one.close();
      await new Promise((r) => setTimeout(r, 100));
      expect(pager.stats().files).toBe(1);
      expect(two.mapping.read(0, 1 << 20).equals(data)).toBe(true);
      expect(findPagerForFile(two.fd)).toBe(pager);
      two.close();
      await waitFor(() => pager.stats().files === 0, 5000, 'the file to be forgotten');
    } finally {
      pager.stop();
      fs.closeSync(backing);
    }
  });

  test('the same pages faulted from several threads at once (EEXIST path)', async () => {
    const { backing, pager } = memfdPager(8 << 20, 4096, { threads: 2 });
    const data = randomBytes(8 << 20, 11);
    fs.writeSync(backing, data, 0, data.length, 0);
    try {
      for (let round = 0; round < 5; round++) {
        const inode = 100 + round;
        // Two mappings (two uffds) and four worker-thread reads of the same range at once.
        const a = openFile(pager, 'r', inode, 8 << 20, [ext(0, 2048, 0)]);
        const b = openFile(pager, 'r', inode, 8 << 20, [ext(0, 2048, 0)]);
        const off = round * 4096 * 37;
        const reads = [a, b, a, b].map((f) => f.mapping.readAsync(off, 1 << 20));
        const sync = a.mapping.read(off + 4096, 4096);
        for (const r of await Promise.all(reads)) expect(r.equals(data.subarray(off, off + (1 << 20)))).toBe(true);
        expect(sync.equals(data.subarray(off + 4096, off + 8192))).toBe(true);
        a.close();
        b.close();
      }
      expect(pager.stats().failures).toBe(0);
    } finally {
      pager.stop();
      fs.closeSync(backing);
    }
  });
});

describe('I/O errors', () => {
  test('a backing that fails in the middle (truncated file): EIO on exactly those pages, never zeros', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pager-'));
    const file = path.join(dir, 'image');
    const data = randomBytes(16 * 4096, 5);
    fs.writeFileSync(file, data);
    const backing = fs.openSync(file, 'r+');
    const pager = NativePager.create(backing, 4096, { readahead: 'adaptive' });
    try {
      // File pages 4..7 live at the backing's end, which is then cut off: reads there fail.
      const extents = [ext(0, 4, 0), ext(4, 8, 12), ext(8, 12, 4)];
      const f = openFile(pager, 'bad', 1, 12 * 4096, extents);
      fs.ftruncateSync(backing, 12 * 4096);
      for (let page = 0; page < 12; page++) {
        const bad = page >= 4 && page < 8;
        if (bad) {
          expect(() => f.mapping.read(page * 4096, 4096)).toThrow(expect.objectContaining({ code: 'EIO' }));
        } else {
          const phys = page < 4 ? page : page - 4;
          expect(f.mapping.read(page * 4096, 4096).equals(data.subarray(phys * 4096, (phys + 1) * 4096))).toBe(true);
        }
      }
      // A failed page stays failed (never zeros); good data still reads.
      expect(() => f.mapping.read(5 * 4096 + 10, 10)).toThrow(expect.objectContaining({ code: 'EIO' }));
      // readInto: the same bytes into a buffer the caller keeps, the same EIO, the same range check.
      const into = Buffer.alloc(4096, 0xaa);
      expect(f.mapping.readInto(into, 9 * 4096)).toBe(4096);
      expect(into.equals(data.subarray(5 * 4096, 6 * 4096))).toBe(true);
      expect(() => f.mapping.readInto(into, 6 * 4096)).toThrow(expect.objectContaining({ code: 'EIO' }));
      expect(() => f.mapping.readInto(into, 11 * 4096 + 1)).toThrow(expect.objectContaining({ code: 'ERANGE' }));
      expect(f.mapping.readInto(into.subarray(0, 7), 12 * 4096 - 7)).toBe(7);
      expect(into.subarray(0, 7).equals(data.subarray(8 * 4096 - 7, 8 * 4096))).toBe(true);
      expect(f.mapping.read(8 * 4096, 4096).equals(data.subarray(4 * 4096, 5 * 4096))).toBe(true);
      expect(pager.stats().failures).toBe(4);
      f.close();
    } finally {
      pager.stop();
      fs.closeSync(backing);
      fs.rmSync(dir, { recursive: true });
    }
  });

  // A real failing backing: a FUSE file system of the tests' own (test/support/fuse/stallfs.c)
  // serving the data file, whose reads of chosen bytes fail with EIO in the kernel's read path
  // (device-mapper's error target, the usual tool, is not available on these machines).
  const noFuse = stallfsUnavailable();
  (noFuse === null ? test : test.skip)(
    `a backing on a file system that fails reads of chosen bytes with EIO: EIO on exactly those pages${noFuse === null ? '' : ` (skipped: ${noFuse})`}`,
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pager-eio-'));
      const file = path.join(dir, 'disk');
      const data = randomBytes(4 << 20, 9);
      fs.writeFileSync(file, data);
      // Bytes [1 MiB, 1 MiB + 64 KiB) fail: file pages 256..271.
      const fsys = await mountStallfs(file, { fail: [[1 << 20, (1 << 20) + (64 << 10)]] });
      try {
        const backing = fs.openSync(fsys.filePath, 'r');
        const pager = NativePager.create(backing, 4096);
        try {
          const f = openFile(pager, 'eio', 1, 4 << 20, [ext(0, 1024, 0)]);
          for (let page = 0; page < 1024; page++) {
            const bad = page >= 256 && page < 272;
            if (bad) expect(() => f.mapping.read(page * 4096, 4096)).toThrow(expect.objectContaining({ code: 'EIO' }));
            else expect(f.mapping.read(page * 4096, 4096).equals(data.subarray(page * 4096, (page + 1) * 4096))).toBe(true);
          }
          // A failed page stays failed: never zeros on a second look.
          expect(() => f.mapping.read(260 * 4096, 16)).toThrow(expect.objectContaining({ code: 'EIO' }));
          expect(fsys.counters().failed_reads).toBeGreaterThan(0);
          expect(pager.stats().failures).toBeGreaterThanOrEqual(16);
          f.close();
        } finally {
          pager.stop();
          fs.closeSync(backing);
        }
      } finally {
        await fsys.unmount();
        fs.rmSync(dir, { recursive: true });
      }
    },
  );
});

describe('arguments', () => {
  test('bad block sizes and extents are rejected with INVALID_ARGS before anything is created', () => {
    const { backing, pager } = memfdPager(64 * 1024, 1024);
    try {
      for (const bs of [0, 3, 1000, 2 << 20]) {
        expect(() => NativePager.create(backing, bs)).toThrow(expect.objectContaining({ status: -10 }));
      }
      const bad = [
        [ext(2, 2, 0)], // empty
        [ext(3, 2, 0)], // reversed
        [ext(0, 4, 0), ext(3, 5, 10)], // overlapping
        [ext(5, 6, 0), ext(0, 1, 1)], // not sorted
        [ext(0, 1, 64)], // just outside the backing (64 KiB of 1 KiB blocks)
        [ext(0, 2, 63)], // runs off the end
        [{ logicalStart: 0, logicalEnd: 1, physicalBlock: (1n << 64n) - 1n }], // overflows u64
      ];
      for (const extents of bad) {
        let err: unknown;
        try {
          pager.registerFile('bad', 1, 4096n, extents);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(PagerError);
        expect((err as PagerError).status).toBe(-10);
      }
      expect(pager.stats().files).toBe(0);
      expect(() => pager.registerFile('ok', 1, 4096n, [ext(0, 1, 63)])).not.toThrow();
      // Attaching something that is not a uffd, or to a file of no pager.
      const { fd } = pager.registerFile('ok', 1, 4096n, []);
      expect(() => pager.attachMapping(fd, fs.openSync('/dev/null', 'r'), 0x100000n, 4096n, 0n)).toThrow(
        expect.objectContaining({ status: -12 }),
      );
      const m = FileMapping.open(fd, 4096n);
      expect(() => pager.attachMapping(backing, m.uffdForPager(), m.address, m.length, 0n)).toThrow(
        expect.objectContaining({ status: -25 }),
      );
      m.close();
      fs.closeSync(fd);
    } finally {
      pager.stop();
      fs.closeSync(backing);
    }
    expect(() => pager.registerFile('late', 2, 1n, [])).toThrow(expect.objectContaining({ status: -20 }));
  });
});

describe('lifetime', () => {
  test('a mapping whose pager is gone fails with EPIPE within a second instead of hanging', async () => {
    const { backing, pager } = memfdPager(1 << 20, 4096);
    const sock = await socketPair('gone');
    try {
      const f = openFile(pager, 'gone', 1, 1 << 20, [ext(0, 256, 0)]);
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      f.mapping.watchPager((sock.client as any)._handle.fd);
      expect(f.mapping.read(0, 10).length).toBe(10); // served while the pager lives
      pager.stop();
      sock.serverSide.destroy();
      const started = Date.now();
      await expect(f.mapping.readAsync(512 * 1024, 4096)).rejects.toMatchObject({
        code: 'EPIPE',
        message: expect.stringContaining('pager is gone'),
      });
      expect(Date.now() - started).toBeLessThan(1000);
      expect(f.mapping.read(0, 10).length).toBe(10); // what was paged in stays readable
      f.close();
    } finally {
      sock.close();
      pager.stop();
      fs.closeSync(backing);
    }
  });

  test('no fd leak after many register/map/forget cycles', async () => {
    const { backing, pager } = memfdPager(1 << 20, 4096);
    try {
      const cycle = async (n: number) => {
        for (let i = 0; i < n; i++) {
          const f = openFile(pager, `c${i}`, 1000 + i, 3 * 4096 + 5, [ext(0, 3, i % 100)]);
          f.mapping.read(0, 3 * 4096 + 5);
          f.close();
        }
        await waitFor(() => pager.stats().files === 0 && pager.stats().attachments === 0, 5000, 'forgetting');
      };
      await cycle(5); // warm up (lazily created fds, worker threads)
      const before = openFdCount();
      await cycle(100);
      expect(openFdCount()).toBe(before);
    } finally {
      pager.stop();
      fs.closeSync(backing);
    }
  });
});
