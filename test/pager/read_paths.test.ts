// The client's ways of reading a large range: readAsync (a new buffer filled in place),
// readIntoAsync (a buffer the caller reuses) and writeTo (write(2) straight from the mapping to an
// fd). Each must give the file's bytes, page everything in (also for an output that ignores its
// input), and report a page the pager could not read as EIO; writeTo tells a failed output
// (syscall 'write') from a failed page.
import { execFileSync, spawn } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { NativePager } from '../../src/pager/native_pager';
import { openFile, memfdPager, ext } from './helpers';

const MiB = 1 << 20;

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 4) b.writeUInt32LE((Math.imul(i + seed, 2654435761) >>> 0), i);
  return b;
}

describe('large reads', () => {
  const size = 24 * MiB + 1234; // ends mid-page
  let backing: number;
  let pager: NativePager;
  let data: Buffer;
  let dir: string;

  beforeAll(() => {
    ({ backing, pager } = memfdPager(32 * MiB, 4096));
    data = pattern(32 * MiB, 7);
    fs.writeSync(backing, data, 0, data.length, 0);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'read-paths-'));
  });
  afterAll(() => {
    pager.stop();
    fs.closeSync(backing);
    fs.rmSync(dir, { recursive: true });
  });

  test('readAsync and readIntoAsync give the bytes; readIntoAsync fills the caller\'s buffer', async () => {
    const f = openFile(pager, 'a', 1, size, [ext(0, 6200, 1)]);
    try {
      const expected = data.subarray(4096, 4096 + size);
      const whole = await f.mapping.readAsync(0, size);
      expect(whole.length).toBe(size);
      expect(whole.equals(expected)).toBe(true);
      const buf = Buffer.alloc(3 * MiB, 0xee);
      const target = buf.subarray(MiB, 2 * MiB);
      await expect(f.mapping.readIntoAsync(target, 5 * MiB + 7)).resolves.toBe(MiB);
      expect(target.equals(expected.subarray(5 * MiB + 7, 6 * MiB + 7))).toBe(true);
      expect(buf[MiB - 1]).toBe(0xee);
      expect(buf[2 * MiB]).toBe(0xee);
      await expect(f.mapping.readIntoAsync(target, size - MiB + 1)).rejects.toMatchObject({ code: 'ERANGE' });
    } finally {
      f.close();
    }
  });

  test('writeTo a file and a pipe gives the bytes; to /dev/null it still pages everything in', async () => {
    const f = openFile(pager, 'w', 2, size, [ext(0, 6200, 1)]);
    try {
      const expected = data.subarray(4096, 4096 + size);
      const out = path.join(dir, 'out');
      const fd = fs.openSync(out, 'w');
      try {
        await expect(f.mapping.writeTo(fd, 0, size)).resolves.toBe(size);
      } finally {
        fs.closeSync(fd);
      }
      expect(fs.readFileSync(out).equals(expected)).toBe(true);

      // A pipe that fills up (64 KiB): the write waits for its reader. Non-blocking, as Node makes
      // a pipe on stdout: the worker polls on EAGAIN.
      const fifo = path.join(dir, 'fifo');
      execFileSync('mkfifo', [fifo]);
      const reader = spawn('sha256sum', [fifo], { stdio: ['ignore', 'pipe', 'ignore'] });
      const sum = new Promise<string>((resolve) => {
        let s = '';
        reader.stdout.on('data', (d) => (s += d));
        reader.on('close', () => resolve(s.split(' ')[0]));
      });
      const pipeFd = await openWriteEnd(fifo);
      try {
        await expect(f.mapping.writeTo(pipeFd, 1000, size - 1000)).resolves.toBe(size - 1000);
      } finally {
        fs.closeSync(pipeFd);
      }
      expect(await sum).toBe(createHash('sha256').update(expected.subarray(1000)).digest('hex'));
    } finally {
      f.close();
    }

    // /dev/null reads nothing it is given: the pages must come in all the same.
    const g = openFile(pager, 'n', 3, size, [ext(0, 6200, 1)]);
    try {
      const before = pager.stats().bytesSupplied;
      const devnull = fs.openSync('/dev/null', 'w');
      try {
        await expect(g.mapping.writeTo(devnull, 0, size)).resolves.toBe(size);
      } finally {
        fs.closeSync(devnull);
      }
      expect(pager.stats().bytesSupplied - before).toBeGreaterThanOrEqual(BigInt(size));
      // Every page is now in the memfd's cache: pread (which pages nothing in) sees the bytes.
      const viaFd = Buffer.alloc(size);
      fs.readSync(g.fd, viaFd, 0, size, 0);
      expect(viaFd.equals(data.subarray(4096, 4096 + size))).toBe(true);
    } finally {
      g.close();
    }
  });

  test('writeTo a pipe whose reader is gone rejects EPIPE from write; nothing else is wrong', async () => {
    const f = openFile(pager, 'p', 4, size, [ext(0, 6200, 1)]);
    const fifo = path.join(dir, 'fifo-closed');
    execFileSync('mkfifo', [fifo]);
    const r = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const w = fs.openSync(fifo, fs.constants.O_WRONLY);
    try {
      fs.closeSync(r);
      await expect(f.mapping.writeTo(w, 0, size)).rejects.toMatchObject({ code: 'EPIPE', syscall: 'write', bytesWritten: 0 });
      // The mapping still reads.
      expect((await f.mapping.readAsync(0, 4096)).equals(data.subarray(4096, 8192))).toBe(true);
    } finally {
      fs.closeSync(w);
      f.close();
    }
  });
});

/** Opens a FIFO's write end once its reader (a child) has opened the other. */
async function openWriteEnd(fifo: string): Promise<number> {
  for (let i = 0; ; i++) {
    try {
      return fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENXIO' || i > 500) throw e;
      await new Promise((res) => setTimeout(res, 10));
    }
  }
}

test('writeTo reports a page the pager could not read as EIO (not an output error), after the good bytes', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'read-paths-eio-'));
  const file = path.join(dir, 'backing');
  const data = pattern(16 * 4096, 3);
  fs.writeFileSync(file, data);
  const backing = fs.openSync(file, 'r+');
  const pager = NativePager.create(backing, 4096, { readahead: 'adaptive' });
  try {
    // File pages 4..7 live at the backing's end, which is then cut off: reads there fail.
    const f = openFile(pager, 'bad', 1, 12 * 4096, [ext(0, 4, 0), ext(4, 8, 12), ext(8, 12, 4)]);
    fs.ftruncateSync(backing, 12 * 4096);
    const out = path.join(dir, 'out');
    const fd = fs.openSync(out, 'w');
    try {
      const err = await f.mapping.writeTo(fd, 0, 12 * 4096).then(() => null, (e) => e);
      expect(err).toMatchObject({ code: 'EIO', bytesWritten: 0 });
      expect(err.syscall).toBeUndefined();
      // A range that ends before the bad pages writes fine.
      await expect(f.mapping.writeTo(fd, 0, 4 * 4096)).resolves.toBe(4 * 4096);
    } finally {
      fs.closeSync(fd);
    }
    expect(fs.readFileSync(out).equals(data.subarray(0, 4 * 4096))).toBe(true);
    f.close();
  } finally {
    pager.stop();
    fs.closeSync(backing);
    fs.rmSync(dir, { recursive: true });
  }
});
