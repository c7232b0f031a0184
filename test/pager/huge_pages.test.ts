// Files on 2 MiB hugetlb pages: everything the 4 KiB path promises, on huge pages. Holes read as
// zeros (no UFFDIO_ZEROPAGE on hugetlb), a partial last page, EIO for a page that cannot be read
// (a whole huge page: poison granularity), reservation up front (no SIGBUS for lack of pages),
// pages back to the pool when the last holder goes, no writes, one shared copy, EPIPE when the
// pager is gone, and 'auto' / 'always' / 'never'. The suite grows vm.nr_hugepages itself (root)
// and puts the old value back; without root or pages it is skipped with the reason.
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FileMapping } from '../../src/client/mapping';
import { NativePager, PagerError } from '../../src/pager/native_pager';
import { growPool, HugePool, meminfoHuge } from '../support/hugetlb_pool';
import { holder } from '../support/zero_page_holder';
import { openFile, memfdPager, ext, waitFor, socketPair } from './helpers';

const HUGE = 2 << 20;
const POOL_PAGES = 40;

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n + 3);
  for (let i = 0; i < n; i += 4) b.writeUInt32LE(Math.imul(i + seed, 2654435761) >>> 0, i);
  return b.subarray(0, n);
}

// Decided at load time: the reason is in the skipped suite's name.
let pool: HugePool | string = 'not tried';
if (process.getuid?.() === 0) {
  pool = growPool(POOL_PAGES);
  if (typeof pool !== 'string') pool.restore(); // grown again in beforeAll, for the suite's lifetime only
} else {
  pool = 'not root: vm.nr_hugepages cannot be set';
}
const describeHuge = typeof pool === 'string' ? describe.skip : describe;
const suiteName = typeof pool === 'string' ? `huge pages (skipped: ${pool})` : 'huge pages';

describeHuge(suiteName, () => {
  let held: HugePool;
  beforeAll(() => {
    const p = growPool(POOL_PAGES);
    if (typeof p === 'string') throw new Error(`the huge page pool could not be grown: ${p}`);
    held = p;
  });
  afterAll(() => held?.restore());

  test('always: holes, extents at odd offsets and a partial last page read back; pages are 2 MiB; counters say so', () => {
    for (const bs of [1024, 4096]) {
      const blocks = (6 * HUGE) / bs;
      const { backing, pager } = memfdPager(blocks * bs, bs, { hugePages: 'always' });
      const data = pattern(blocks * bs, bs);
      fs.writeSync(backing, data, 0, data.length, 0);
      try {
        // Data, a hole of a whole huge page and more, data at an odd physical block, a size ending mid-page.
        const per = HUGE / bs;
        const extents = [ext(0, per + 3, 1), ext(2 * per + 10, 3 * per + 7, 3 * per + 1), ext(3 * per + 9, 4 * per, 5)];
        const size = 3 * HUGE + 5 * bs + 77;
        const expected = Buffer.alloc(size);
        for (const e of extents) {
          const start = e.logicalStart * bs;
          const end = Math.min(e.logicalEnd * bs, size);
          data.copy(expected, start, Number(e.physicalBlock) * bs, Number(e.physicalBlock) * bs + (end - start));
        }
        const f = openFile(pager, `f${bs}`, 1, size, extents);
        expect(f.mapping.pageSize).toBe(HUGE);
        expect(f.mapping.length).toBe(BigInt(4 * HUGE));
        // Back to front, in pieces, so that windows start everywhere.
        const got = Buffer.alloc(size);
        for (let off = size; off > 0; ) {
          const len = Math.min(off, 700 * 1024 + 13);
          off -= len;
          f.mapping.read(off, len).copy(got, off);
        }
        expect(got.equals(expected)).toBe(true);
        const s = pager.stats();
        expect(s).toMatchObject({ hugeFiles: 1, hugeFallbacks: 0, failures: 0 });
        expect(s.bytesZeroed).toBeGreaterThan(BigInt(HUGE)); // the hole and the tail, copied from zeros
        // Huge faults: a few per file, not one per 4 KiB.
        expect(s.faults).toBeLessThanOrEqual(8);
        f.close();
      } finally {
        pager.stop();
        fs.closeSync(backing);
      }
    }
  });

  test('the pool reserves the file at registration; the pages go back when the last holder goes', async () => {
    const { backing, pager } = memfdPager(8 * HUGE, 4096, { hugePages: 'always' });
    try {
      const before = meminfoHuge();
      const f = openFile(pager, 'r', 1, 5 * HUGE - 1, [ext(0, (5 * HUGE) / 4096, 0)]);
      const registered = meminfoHuge();
      // 5 huge pages reserved by the pager's mapping (no MAP_NORESERVE), none used yet.
      expect(registered.reserved - before.reserved).toBe(5);
      expect(before.free - registered.free).toBe(0);
      f.mapping.read(0, 5 * HUGE - 1);
      const read = meminfoHuge();
      // Now in use, and no longer merely reserved: one copy, whoever maps it.
      expect(before.free - read.free).toBe(5);
      expect(read.reserved - before.reserved).toBe(0);
      // A second mapping of the same file shares those pages: no more leave the pool.
      const second = FileMapping.open(f.fd, BigInt(5 * HUGE - 1));
      pager.attachMapping(f.fd, second.uffdForPager(), second.address, second.length, 0n);
      const supplied = pager.stats().bytesSupplied;
      expect(second.read(0, 5 * HUGE - 1).equals(f.mapping.read(0, 5 * HUGE - 1))).toBe(true);
      expect(pager.stats().bytesSupplied).toBe(supplied);
      expect(before.free - meminfoHuge().free).toBe(5);
      second.close();
      f.close();
      await waitFor(() => pager.stats().files === 0, 5000, 'the file to be forgotten');
      await waitFor(() => meminfoHuge().free >= before.free && meminfoHuge().reserved <= before.reserved, 5000, 'the huge pages back in the pool');
    } finally {
      pager.stop();
      fs.closeSync(backing);
    }
  });

  test('auto: small files and a short pool get 4 KiB pages; always: NO_RESOURCES; never: 4 KiB', () => {
    const { backing, pager } = memfdPager(8 * HUGE, 4096, { hugePages: 'auto', hugeThreshold: 4 * HUGE });
    try {
      const small = openFile(pager, 'small', 1, 4 * HUGE - 1, []);
      expect(small.mapping.pageSize).toBe(4096);
      const big = openFile(pager, 'big', 2, 4 * HUGE, []);
      expect(big.mapping.pageSize).toBe(HUGE);
      // More than the pool has free: auto falls back, and counts it.
      const tooBig = (meminfoHuge().free - meminfoHuge().reserved + 8) * HUGE;
      const fallback = openFile(pager, 'too big', 3, tooBig, []);
      expect(fallback.mapping.pageSize).toBe(4096);
      expect(pager.stats()).toMatchObject({ files: 3, hugeFiles: 1, hugeFallbacks: 1 });
      for (const f of [small, big, fallback]) f.close();
    } finally {
      pager.stop();
      fs.closeSync(backing);
    }
    const always = memfdPager(HUGE, 4096, { hugePages: 'always' });
    try {
      const tooBig = BigInt((meminfoHuge().free - meminfoHuge().reserved + 8) * HUGE);
      let err: unknown;
      try {
        always.pager.registerFile('too big', 1, tooBig, []);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PagerError);
      expect((err as PagerError).status).toBe(-3); // ZX_ERR_NO_RESOURCES
      expect((err as PagerError).message).toMatch(/huge page pool/);
      // A tiny file still gets a whole huge page under always.
      const tiny = openFile(always.pager, 'tiny', 2, 10, [ext(0, 1, 0)]);
      expect(tiny.mapping.pageSize).toBe(HUGE);
      tiny.close();
    } finally {
      always.pager.stop();
      fs.closeSync(always.backing);
    }
    const never = memfdPager(HUGE, 4096, { hugePages: 'never' });
    try {
      const f = openFile(never.pager, 'n', 1, HUGE, []);
      expect(f.mapping.pageSize).toBe(4096);
      f.close();
    } finally {
      never.pager.stop();
      fs.closeSync(never.backing);
    }
  });

  test('a page that cannot be read fails with EIO, a whole huge page at a time; the others read', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'huge-eio-'));
    const file = path.join(dir, 'backing');
    const data = pattern(4 * HUGE, 9);
    fs.writeFileSync(file, data);
    const backing = fs.openSync(file, 'r+');
    const pager = NativePager.create(backing, 4096, { hugePages: 'always' });
    try {
      const per = HUGE / 4096;
      // File huge page 1 lives in the backing's last huge page, which is then cut to 4 KiB short.
      const f = openFile(pager, 'bad', 1, 3 * HUGE, [ext(0, per, 0), ext(per, 2 * per, 3 * per), ext(2 * per, 3 * per, per)]);
      fs.ftruncateSync(backing, 4 * HUGE - 4096);
      expect(f.mapping.read(0, 4096).equals(data.subarray(0, 4096))).toBe(true);
      // Only the last 4 KiB of file page 1 are missing, yet all of it fails: poison is per huge page.
      expect(() => f.mapping.read(HUGE, 16)).toThrow(expect.objectContaining({ code: 'EIO' }));
      expect(() => f.mapping.read(HUGE + 5000, 16)).toThrow(expect.objectContaining({ code: 'EIO' }));
      expect(() => f.mapping.read(2 * HUGE - 4096, 16)).toThrow(expect.objectContaining({ code: 'EIO' }));
      expect(f.mapping.read(2 * HUGE, HUGE).equals(data.subarray(HUGE, 2 * HUGE))).toBe(true);
      expect(pager.stats().failures).toBeGreaterThanOrEqual(1);
      f.close();
    } finally {
      pager.stop();
      fs.closeSync(backing);
      fs.rmSync(dir, { recursive: true });
    }
  });

  test('no client can write, resize or remap the file writable', () => {
    const { backing, pager } = memfdPager(2 * HUGE, 4096, { hugePages: 'always' });
    const data = pattern(2 * HUGE, 5);
    fs.writeSync(backing, data, 0, data.length, 0);
    try {
      const f = openFile(pager, 'ro', 1, 2 * HUGE, [ext(0, (2 * HUGE) / 4096, 0)]);
      const attempts: Record<string, string> = {};
      const attempt = (what: string, fn: () => unknown) => {
        try {
          fn();
          attempts[what] = 'SUCCEEDED';
        } catch (e) {
          attempts[what] = (e as NodeJS.ErrnoException).code ?? 'refused';
        }
      };
      attempt('write()', () => fs.writeSync(f.fd, Buffer.from('evil'), 0, 4, 0));
      attempt('ftruncate() shrink', () => fs.ftruncateSync(f.fd, HUGE));
      attempt('ftruncate() grow', () => fs.ftruncateSync(f.fd, 8 * HUGE));
      attempt('reopen O_RDWR + write', () => {
        const rw = fs.openSync(`/proc/self/fd/${f.fd}`, 'r+');
        try {
          fs.writeSync(rw, Buffer.from('evil'), 0, 4, 0);
        } finally {
          fs.closeSync(rw);
        }
      });
      attempt('mmap PROT_WRITE MAP_SHARED of a read-write reopen', () =>
        execFileSync('python3', ['-c', `import mmap, os; fd = os.open("/proc/self/fd/3", os.O_RDWR); m = mmap.mmap(fd, ${HUGE}, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE); m[0:4] = b"evil"`], {
          stdio: ['ignore', 'ignore', 'pipe', f.fd],
        }),
      );
      expect(Object.values(attempts).filter((v) => v === 'SUCCEEDED')).toEqual([]);
      expect(f.mapping.read(0, 2 * HUGE).equals(data)).toBe(true);
      f.close();
    } finally {
      pager.stop();
      fs.closeSync(backing);
    }
  });

  // Issue 12 on huge pages (the 4 KiB half, against a server process: test/hostile/zero_pages.test.ts;
  // here because this suite measures the pool, which no other suite may use meanwhile).
  test('a holder as uid 65534 touching or populating huge pages without a uffd, or root fallocating them, never makes a reader read zeros', () => {
    const size = 5 * HUGE + 1000;
    const { backing, pager } = memfdPager(6 * HUGE, 4096, { hugePages: 'always' });
    const data = pattern(6 * HUGE, 12);
    fs.writeSync(backing, data, 0, data.length, 0);
    const expected = data.subarray(0, size);
    try {
      const cases: [string, (fd: number, reader: ReturnType<typeof openFile>) => void][] = [
        ['touch', (fd) => expect(holder('touch', fd, size, HUGE, 0, false)).toEqual({ uid: 65534, pages: 6, sum: 0 })],
        ['populate', (fd, reader) => {
          expect(reader.mapping.read(0, 4096).equals(expected.subarray(0, 4096))).toBe(true);
          expect(holder('populate', fd, size, HUGE, 3 * HUGE, false)).toMatchObject({ uid: 65534, sum: 0 });
        }],
        ['fallocate', (fd, reader) => {
          expect(reader.mapping.read(0, 4096).equals(expected.subarray(0, 4096))).toBe(true);
          expect(holder('fallocate', fd, size, HUGE, HUGE, true)).toMatchObject({ uid: 0 });
        }],
      ];
      cases.forEach(([what, act], i) => {
        const extents = [ext(0, Math.ceil(size / 4096), 0)];
        const reader = openFile(pager, `zero-${what}`, 10 + i, size, extents);
        const held = pager.registerFile(`zero-${what}`, 10 + i, BigInt(size), extents);
        try {
          act(held.fd, reader);
          expect([what, reader.mapping.read(0, size).equals(expected)]).toEqual([what, true]);
          const second = FileMapping.open(held.fd, BigInt(size));
          pager.attachMapping(held.fd, second.uffdForPager(), second.address, second.length, 0n);
          expect([what, second.read(0, size).equals(expected)]).toEqual([what, true]);
          second.close();
        } finally {
          reader.close();
          fs.closeSync(held.fd);
        }
      });
      expect(pager.stats().foreignPages).toBeGreaterThan(0);
    } finally {
      pager.stop();
      fs.closeSync(backing);
    }
  });

  test('a mapping whose pager is gone fails with EPIPE for pages it lacks; pages it had still read', async () => {
    const { backing, pager } = memfdPager(4 * HUGE, 4096, { hugePages: 'always' });
    const data = pattern(4 * HUGE, 3);
    fs.writeSync(backing, data, 0, data.length, 0);
    const sock = await socketPair('huge-gone');
    try {
      const f = openFile(pager, 'gone', 1, 4 * HUGE, [ext(0, (4 * HUGE) / 4096, 0)]);
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      f.mapping.watchPager((sock.client as any)._handle.fd);
      expect(f.mapping.read(0, 10).equals(data.subarray(0, 10))).toBe(true);
      pager.stop();
      sock.serverSide.destroy();
      const started = Date.now();
      await expect(f.mapping.readAsync(3 * HUGE, 4096)).rejects.toMatchObject({ code: 'EPIPE' });
      expect(Date.now() - started).toBeLessThan(5000);
      expect(f.mapping.read(100, 10).equals(data.subarray(100, 110))).toBe(true);
      f.close();
    } finally {
      sock.close();
      pager.stop();
      fs.closeSync(backing);
    }
  });
});

describeHuge(`${suiteName}: the CLI`, () => {
  let held: HugePool;
  let tmp: string;
  beforeAll(() => {
    const p = growPool(POOL_PAGES);
    if (typeof p === 'string') throw new Error(`the huge page pool could not be grown: ${p}`);
    held = p;
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'huge-cli-'));
  });
  afterAll(() => {
    held?.restore();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('cat --huge-pages always: the bytes, on 2 MiB pages; never: 4 KiB; a bad mode is a usage error', () => {
    const src = path.join(tmp, 'src');
    fs.mkdirSync(src);
    const content = pattern(5 * HUGE + 999, 21);
    fs.writeFileSync(path.join(src, 'f.bin'), content);
    const image = path.join(tmp, 'img');
    execFileSync('mkfs.ext4', ['-q', '-F', '-d', src, image, '24M']);
    const CLI = path.join(__dirname, '..', '..', 'bin', 'starnix-pager');
    const run = (mode: string) => {
      const out = path.join(tmp, `out-${mode}`);
      const fd = fs.openSync(out, 'w');
      try {
        const r = spawnSync(CLI, ['cat', '--huge-pages', mode, '--log-level', 'info', image, '/f.bin'], { stdio: ['ignore', fd, 'pipe'] });
        return { status: r.status as number, stderr: String(r.stderr), bytes: fs.readFileSync(out) };
      } finally {
        fs.closeSync(fd);
      }
    };
    const always = run('always');
    expect(always.status).toBe(0);
    expect(always.bytes.equals(content)).toBe(true);
    expect(always.stderr).toMatch(/mapped.*pages=2 MiB huge pages/);
    const never = run('never');
    expect(never.status).toBe(0);
    expect(never.bytes.equals(content)).toBe(true);
    expect(never.stderr).toMatch(/mapped.*pages=4 KiB/);
    const bad = run('sometimes');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--huge-pages is auto, always or never/);
  });
});
