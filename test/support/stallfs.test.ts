// The test FUSE file system itself: it serves the backing's bytes, fails the chosen range with
// EIO, and stalls GETATTR and READ until released, while other requests go on. Each stalled
// access runs in a child process (a stalled syscall would block this test's own thread).
import { spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { mountStallfs, stallfsUnavailable } from './fuse';

const reason = stallfsUnavailable();
const maybe = reason === null ? test : test.skip;
const why = reason === null ? '' : ` (skipped: ${reason})`;

/** Runs a small node script in a child; resolves with its stdout once it exits. */
function child(script: string): { done: Promise<{ code: number | null; out: string }>; exited: () => boolean } {
  const p = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let exited = false;
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<{ code: number | null; out: string }>((resolve) =>
    p.on('exit', (code) => {
      exited = true;
      resolve({ code, out });
    }),
  );
  return { done, exited: () => exited };
}

describe('stallfs (test FUSE file system)', () => {
  let dir: string;
  let backing: string;
  let bytes: Buffer;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stallfs-test-'));
    backing = path.join(dir, 'backing.bin');
    bytes = crypto.randomBytes(256 * 1024 + 123);
    fs.writeFileSync(backing, bytes);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  maybe(`serves the backing's bytes and fails the chosen range with EIO${why}`, async () => {
    const fsys = await mountStallfs(backing, { fail: [[65536, 65537]] });
    try {
      const fd = fs.openSync(fsys.filePath, 'r');
      try {
        expect(fs.fstatSync(fd).size).toBe(bytes.length);
        const head = Buffer.alloc(65536);
        expect(fs.readSync(fd, head, 0, head.length, 0)).toBe(head.length);
        expect(head.equals(bytes.subarray(0, 65536))).toBe(true);
        const tail = Buffer.alloc(4096);
        expect(fs.readSync(fd, tail, 0, tail.length, 128 * 1024)).toBe(4096);
        expect(tail.equals(bytes.subarray(128 * 1024, 128 * 1024 + 4096))).toBe(true);
        expect(() => fs.readSync(fd, Buffer.alloc(4096), 0, 4096, 65536)).toThrow(/EIO/);
        fsys.control('fail-clear');
        const mid = Buffer.alloc(4096);
        expect(fs.readSync(fd, mid, 0, 4096, 65536)).toBe(4096);
        expect(mid.equals(bytes.subarray(65536, 65536 + 4096))).toBe(true);
        expect(fsys.counters().failed_reads).toBeGreaterThan(0);
      } finally {
        fs.closeSync(fd);
      }
    } finally {
      await fsys.unmount();
    }
  });

  maybe(`stalls READ until released, and answers GETATTR meanwhile${why}`, async () => {
    const fsys = await mountStallfs(backing, { directIo: true });
    try {
      fsys.control('stall-read 1');
      const reader = child(
        `const fs=require('fs');const fd=fs.openSync(${JSON.stringify(fsys.filePath)},'r');` +
          `const b=Buffer.alloc(4096);fs.readSync(fd,b,0,4096,8192);process.stdout.write(b.toString('hex'))`,
      );
      await fsys.waitStalling(1);
      expect(reader.exited()).toBe(false);
      expect(fs.statSync(fsys.filePath).size).toBe(bytes.length); // GETATTR still answers
      fsys.control('release');
      const r = await reader.done;
      expect(r.code).toBe(0);
      expect(r.out).toBe(bytes.subarray(8192, 8192 + 4096).toString('hex'));
      expect(fsys.counters()).toMatchObject({ stalled_reads: 1, stalling: 0 });
    } finally {
      await fsys.unmount();
    }
  });

  maybe(`stalls GETATTR (fstat of an open file) until SIGUSR1${why}`, async () => {
    const fsys = await mountStallfs(backing);
    try {
      const statter = child(
        `const fs=require('fs');const fd=fs.openSync(${JSON.stringify(fsys.filePath)},'r');` +
          `process.stdout.write('opened\\n');setTimeout(()=>{process.stdout.write(String(fs.fstatSync(fd).size))},200)`,
      );
      await new Promise((r) => setTimeout(r, 50));
      fsys.control('stall-getattr 1');
      await fsys.waitStalling(1);
      expect(statter.exited()).toBe(false);
      process.kill(fsys.pid, 'SIGUSR1');
      const r = await statter.done;
      expect(r.code).toBe(0);
      expect(r.out).toBe(`opened\n${bytes.length}`);
    } finally {
      await fsys.unmount();
    }
  });

  maybe(`unmount ends the daemon in bounded time while a read is stalled${why}`, async () => {
    const fsys = await mountStallfs(backing, { stallRead: true, directIo: true });
    const reader = child(
      `const fs=require('fs');const fd=fs.openSync(${JSON.stringify(fsys.filePath)},'r');` +
        `try{fs.readSync(fd,Buffer.alloc(4096),0,4096,0);process.stdout.write('read')}catch(e){process.stdout.write(e.code)}`,
    );
    await fsys.waitStalling(1);
    await fsys.unmount();
    const r = await reader.done;
    expect(['read', 'ENOTCONN']).toContain(r.out);
    expect(fs.readFileSync('/proc/self/mounts', 'utf8')).not.toContain(fsys.mountpoint);
  });
});
