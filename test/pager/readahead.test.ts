// Read-ahead split into jobs that other pager threads fill: a sequential reader's large windows
// go partly to the job queue. These check that a job that fails never turns into zeros, that a
// fault waiting on another thread's job is served, and that the seed's fixed mode still works.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { NativePager } from '../../src/pager/native_pager';
import { openFile, ext, PAGE } from './helpers';

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 4) b.writeUInt32LE((Math.imul(i + seed, 2654435761) ^ seed) >>> 0, i);
  return b;
}

const MiB = 1 << 20;

for (const threads of [1, 2, 3]) {
  test(`${threads} thread(s): a backing error inside a read-ahead job is EIO on exactly those pages, the rest reads right`, () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pager-ra-'));
    const file = path.join(dir, 'image');
    const size = 8 * MiB;
    const data = pattern(size, threads);
    fs.writeFileSync(file, Buffer.concat([data, Buffer.alloc(64 * 1024, 0xee)]));
    const backing = fs.openSync(file, 'r+');
    const pager = NativePager.create(backing, PAGE, { readahead: 'adaptive', threads, dropCache: false });
    try {
      // File [5 MiB, 5 MiB + 64 KiB) lives at the backing's end, then cut off: a sequential
      // reader's window there is large, so those pages fall to a read-ahead job.
      const bad0 = (5 * MiB) / PAGE;
      const bad1 = bad0 + 16;
      const blocks = size / PAGE;
      const extents = [ext(0, bad0, 0), ext(bad0, bad1, blocks), ext(bad1, blocks, bad1)];
      const f = openFile(pager, 'ra', 1, size, extents);
      fs.ftruncateSync(backing, size);
      for (let page = 0; page < blocks; page++) {
        if (page >= bad0 && page < bad1) {
          expect(() => f.mapping.read(page * PAGE, PAGE)).toThrow(expect.objectContaining({ code: 'EIO' }));
        } else {
          const got = f.mapping.read(page * PAGE, PAGE);
          if (!got.equals(data.subarray(page * PAGE, (page + 1) * PAGE))) throw new Error(`wrong bytes in page ${page}`);
        }
      }
      expect(pager.stats().failures).toBe(16);
      f.close();
    } finally {
      pager.stop();
      fs.closeSync(backing);
      fs.rmSync(dir, { recursive: true });
    }
  });
}

for (const readahead of ['adaptive', 'fixed'] as const) {
  test(`${readahead}: two mappings read one file at once (faults on pages another mapping's job is filling)`, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pager-ra2-'));
    const file = path.join(dir, 'image');
    const size = 16 * MiB;
    const data = pattern(size, 7);
    fs.writeFileSync(file, data);
    const backing = fs.openSync(file, 'r');
    const pager = NativePager.create(backing, PAGE, { readahead, threads: 2, dropCache: false });
    try {
      const a = openFile(pager, 'two', 1, size, [ext(0, size / PAGE, 0)]);
      const b = openFile(pager, 'two', 1, size, [ext(0, size / PAGE, 0)]);
      // Both front to back on libuv threads, 1 MiB at a time, b a little behind a.
      const reads: Promise<void>[] = [];
      for (const [m, delay] of [[a.mapping, 0], [b.mapping, 1]] as const) {
        reads.push(
          (async () => {
            await new Promise((r) => setTimeout(r, delay));
            for (let off = 0; off < size; off += MiB) {
              const got = await m.readAsync(off, MiB);
              if (!got.equals(data.subarray(off, off + MiB))) throw new Error(`wrong bytes at ${off}`);
            }
          })(),
        );
      }
      await Promise.all(reads);
      expect(pager.stats().failures).toBe(0);
      expect(pager.stats().bytesSupplied).toBe(BigInt(size)); // every page filled once
      a.close();
      b.close();
    } finally {
      pager.stop();
      fs.closeSync(backing);
      fs.rmSync(dir, { recursive: true });
    }
  });
}

// A reader that walks a mapping backwards must get windows too: glibc's memcpy of a few MiB
// on x86-64 touches the first page, then the last, then walks down to the first (measured).
// Before windows could grow backwards, such a reader cost one fault (one round trip) per page.
for (const threads of [1, 2]) {
  test(`adaptive, ${threads} thread(s): backward readers get windows behind them; far-apart faults still get one page`, () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pager-back-'));
    const file = path.join(dir, 'image');
    const size = 16 * MiB;
    const blocks = size / PAGE;
    const data = pattern(size, 11 + threads);
    fs.writeFileSync(file, data);
    const backing = fs.openSync(file, 'r');
    const pager = NativePager.create(backing, PAGE, { readahead: 'adaptive', threads, dropCache: false });
    try {
      const check = (m: { read(off: number, n: number): Buffer }, page: number) => {
        const got = m.read(page * PAGE, PAGE);
        if (!got.equals(data.subarray(page * PAGE, (page + 1) * PAGE))) throw new Error(`wrong bytes in page ${page}`);
      };
      // Last page to first, one page at a time.
      let f = openFile(pager, 'back', 1, size, [ext(0, blocks, 0)]);
      let before = pager.stats();
      for (let page = blocks - 1; page >= 0; page--) check(f.mapping, page);
      let after = pager.stats();
      expect(after.bytesSupplied - before.bytesSupplied).toBe(BigInt(size)); // every page once
      expect(after.faults - before.faults).toBeLessThan(blocks / 32);
      f.close();

      // memcpy's order, 4 MiB at a time: the chunk's first page, then its last page down to its second.
      const chunk = (4 * MiB) / PAGE;
      f = openFile(pager, 'memcpy', 2, size, [ext(0, blocks, 0)]);
      before = pager.stats();
      for (let c = 0; c < blocks; c += chunk) {
        check(f.mapping, c);
        for (let page = c + chunk - 1; page > c; page--) check(f.mapping, page);
      }
      after = pager.stats();
      expect(after.bytesSupplied - before.bytesSupplied).toBe(BigInt(size));
      expect(after.faults - before.faults).toBeLessThan(blocks / 32);
      f.close();

      // Descending but 1 MiB apart: not a stream, so each fault fills its own page only.
      f = openFile(pager, 'far', 3, size, [ext(0, blocks, 0)]);
      before = pager.stats();
      const far = [];
      for (let page = blocks - 1 - 7; page > 0; page -= MiB / PAGE) far.push(page);
      for (const page of far) check(f.mapping, page);
      after = pager.stats();
      expect(after.faults - before.faults).toBe(far.length);
      expect(after.bytesSupplied - before.bytesSupplied).toBe(BigInt(far.length * PAGE));
      f.close();
      expect(pager.stats().failures).toBe(0);
    } finally {
      pager.stop();
      fs.closeSync(backing);
      fs.rmSync(dir, { recursive: true });
    }
  });
}
