// Handle inspection and the codec's object check, on real fds of every kind we can make here.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Channel } from '../../src/transport/channel';
import { Handle } from '../../src/transport/handle';
import {
  handleInfo,
  handleObjectCheck,
  ZX_OBJ_TYPE_CHANNEL,
  ZX_OBJ_TYPE_EVENTPAIR,
  ZX_OBJ_TYPE_JOB,
  ZX_OBJ_TYPE_NONE,
  ZX_OBJ_TYPE_VMO,
  ZX_RIGHT_READ,
  ZX_RIGHT_SAME_RIGHTS,
  ZX_RIGHT_WRITE,
} from '../../src/transport/handle_info';
import { addSeals, createMemfd, F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_WRITE, getSeals } from '../../src/transport/memfd';

const RW = ZX_RIGHT_READ | ZX_RIGHT_WRITE;
let dir: string;
const opened: Handle[] = [];
function open(p: string, flags: string | number): Handle {
  const h = new Handle(fs.openSync(p, flags));
  opened.push(h);
  return h;
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'handle-info-'));
});
afterAll(() => {
  for (const h of opened) h.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('memfd: kind, size, rights; it can be a VMO, not a channel', () => {
  const m = createMemfd('ext4!info', 12345);
  expect(handleInfo(m)).toEqual({ kind: 'memfd', readable: true, writable: true, size: 12345n });
  expect(handleObjectCheck(m, ZX_OBJ_TYPE_VMO, RW)).toBe(0);
  expect(handleObjectCheck(m, ZX_OBJ_TYPE_CHANNEL, 0)).toBe(-12);
  // A read-only open of the same memfd (how a client gets its own description) lacks WRITE.
  const ro = open(`/proc/self/fd/${m.fd}`, 'r');
  expect(handleInfo(ro)).toMatchObject({ kind: 'memfd', readable: true, writable: false });
  expect(handleObjectCheck(ro, ZX_OBJ_TYPE_VMO, ZX_RIGHT_READ)).toBe(0);
  expect(handleObjectCheck(ro, ZX_OBJ_TYPE_VMO, RW)).toBe(-30);
  expect(handleObjectCheck(ro, ZX_OBJ_TYPE_VMO, ZX_RIGHT_SAME_RIGHTS)).toBe(0);
  m.close();
});

test('memfd seals are real: a write-sealed memfd refuses writes', () => {
  const m = createMemfd('sealed', 4096);
  fs.writeSync(m.fd, Buffer.from('before'), 0, 6, 0);
  addSeals(m, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_SEAL);
  expect(getSeals(m)).toBe(F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_SEAL);
  expect(() => fs.writeSync(m.fd, Buffer.from('after'), 0, 5, 0)).toThrow(/EPERM/);
  expect(() => addSeals(m, 0x4)).toThrow(/EPERM/);
  const unsealable = createMemfd('plain', 0, { allowSealing: false });
  expect(() => addSeals(unsealable, F_SEAL_WRITE)).toThrow(/EPERM/);
  m.close();
  unsealable.close();
});

test('createMemfd reports bad names and sizes', () => {
  expect(() => createMemfd('x'.repeat(300))).toThrow(/memfd_create.*EINVAL/);
  expect(() => createMemfd('neg', -1)).toThrow(/non-negative integer/);
});

test('regular file, directory, char and block devices, FIFO, O_PATH', () => {
  const file = path.join(dir, 'image');
  fs.writeFileSync(file, Buffer.alloc(8192));
  const ro = open(file, 'r');
  expect(handleInfo(ro)).toEqual({ kind: 'file', readable: true, writable: false, size: 8192n });
  expect(handleObjectCheck(ro, ZX_OBJ_TYPE_VMO, ZX_RIGHT_READ)).toBe(0);
  expect(handleObjectCheck(ro, ZX_OBJ_TYPE_VMO, ZX_RIGHT_WRITE)).toBe(-30);
  const wo = open(file, 'a');
  expect(handleInfo(wo)).toMatchObject({ kind: 'file', readable: false, writable: true });
  expect(handleObjectCheck(wo, ZX_OBJ_TYPE_VMO, ZX_RIGHT_READ)).toBe(-30);

  const d = open(dir, 'r');
  expect(handleInfo(d).kind).toBe('dir');
  expect(handleObjectCheck(d, ZX_OBJ_TYPE_VMO, 0)).toBe(-12);

  const nul = open('/dev/null', 'r+');
  expect(handleInfo(nul)).toEqual({ kind: 'chardev', readable: true, writable: true });
  expect(handleObjectCheck(nul, ZX_OBJ_TYPE_VMO, 0)).toBe(-12);

  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const pipe = open(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  expect(handleInfo(pipe).kind).toBe('pipe');

  const pathOnly = open(file, 0o10000000); // O_PATH: names the file, cannot read it
  expect(handleInfo(pathOnly)).toMatchObject({ kind: 'file', readable: false, writable: false });
  expect(handleObjectCheck(pathOnly, ZX_OBJ_TYPE_VMO, ZX_RIGHT_READ)).toBe(-30);
});

test('a block device is a VMO candidate', () => {
  const loop = ['/dev/loop0', '/dev/loop1'].find((p) => fs.existsSync(p));
  if (loop === undefined) {
    console.warn('no loop device on this machine: block device case not checked');
    return;
  }
  const b = open(loop, 'r');
  const info = handleInfo(b);
  expect(info.kind).toBe('blockdev');
  expect(typeof info.size).toBe('bigint'); // BLKGETSIZE64: 0 for a detached loop device
  expect(handleObjectCheck(b, ZX_OBJ_TYPE_VMO, ZX_RIGHT_READ)).toBe(0);
});

test('sockets: a channel end is a CHANNEL and nothing else fits one', () => {
  const [a, b] = Channel.pairHandles();
  expect(handleInfo(a)).toEqual({ kind: 'socket-seqpacket', readable: true, writable: true });
  expect(handleObjectCheck(a, ZX_OBJ_TYPE_CHANNEL, RW)).toBe(0);
  expect(handleObjectCheck(a, ZX_OBJ_TYPE_VMO, 0)).toBe(-12);
  // Types without a Linux stand-in (JOB, EVENTPAIR) and NONE take any fd.
  expect(handleObjectCheck(a, ZX_OBJ_TYPE_JOB, 0)).toBe(0);
  expect(handleObjectCheck(a, ZX_OBJ_TYPE_EVENTPAIR, 0)).toBe(0);
  expect(handleObjectCheck(a, ZX_OBJ_TYPE_NONE, 0)).toBe(0);
  a.close();
  b.close();
});

test('a closed handle is BAD_HANDLE; duplicate() is a second fd for the same file', () => {
  const m = createMemfd('dup', 10);
  const copy = m.duplicate();
  expect(copy.fd).not.toBe(m.fd);
  fs.writeSync(m.fd, Buffer.from('shared'), 0, 6, 0);
  m.close();
  expect(handleObjectCheck(m, ZX_OBJ_TYPE_VMO, 0)).toBe(-11);
  const back = Buffer.alloc(6);
  fs.readSync(copy.fd, back, 0, 6, 0);
  expect(back.toString()).toBe('shared');
  expect(handleInfo(copy).size).toBe(10n);
  copy.close();
});
