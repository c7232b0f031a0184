// Handle inspection and the codec's object check, on real fds of every kind we can make here.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Channel } from '../../src/transport/channel';
import { Handle } from '../../src/transport/handle';
import * as dgram from 'dgram';
import {
  handleInfo,
  handleObjectCheck,
  ZX_OBJ_TYPE_CHANNEL,
  ZX_OBJ_TYPE_COUNTER,
  ZX_OBJ_TYPE_EVENT,
  ZX_OBJ_TYPE_EVENTPAIR,
  ZX_OBJ_TYPE_JOB,
  ZX_OBJ_TYPE_NONE,
  ZX_OBJ_TYPE_PAGER,
  ZX_OBJ_TYPE_PROCESS,
  ZX_OBJ_TYPE_SOCKET,
  ZX_OBJ_TYPE_STREAM,
  ZX_OBJ_TYPE_THREAD,
  ZX_OBJ_TYPE_VMAR,
  ZX_OBJ_TYPE_VMO,
  ZX_RIGHT_DUPLICATE,
  ZX_RIGHT_EXECUTE,
  ZX_RIGHT_INSPECT,
  ZX_RIGHT_MAP,
  ZX_RIGHT_READ,
  ZX_RIGHT_RESIZE,
  ZX_RIGHT_SAME_RIGHTS,
  ZX_RIGHT_SIGNAL,
  ZX_RIGHT_SIGNAL_PEER,
  ZX_RIGHT_TRANSFER,
  ZX_RIGHT_WAIT,
  ZX_RIGHT_WRITE,
} from '../../src/transport/handle_info';
import { createEventFd, createEventPair, createSocketPair, openProcess } from '../../src/transport/stand_ins';
import { FileMapping } from '../../src/client/mapping';
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

test('sockets: a channel end is a CHANNEL and nothing else', () => {
  const [a, b] = Channel.pairHandles();
  expect(handleInfo(a)).toEqual({ kind: 'socket-seqpacket', readable: true, writable: true });
  expect(handleObjectCheck(a, ZX_OBJ_TYPE_CHANNEL, RW)).toBe(0);
  expect(handleObjectCheck(a, ZX_OBJ_TYPE_VMO, 0)).toBe(-12);
  expect(handleObjectCheck(a, ZX_OBJ_TYPE_JOB, 0)).toBe(-12);
  expect(handleObjectCheck(a, ZX_OBJ_TYPE_EVENTPAIR, 0)).toBe(-12);
  expect(handleObjectCheck(a, ZX_OBJ_TYPE_NONE, 0)).toBe(0);
  a.close();
  b.close();
});

// The README's stand-in table, row by row: each fd kind against every object type the project's
// libraries and the corpus use. An fd fits its own row's types and no other.
describe('the stand-in table: which fd can be which zx object', () => {
  const SAME = ZX_RIGHT_SAME_RIGHTS;
  const types: Record<string, number> = {
    VMO: ZX_OBJ_TYPE_VMO, STREAM: ZX_OBJ_TYPE_STREAM, CHANNEL: ZX_OBJ_TYPE_CHANNEL, SOCKET: ZX_OBJ_TYPE_SOCKET,
    EVENTPAIR: ZX_OBJ_TYPE_EVENTPAIR, EVENT: ZX_OBJ_TYPE_EVENT, COUNTER: ZX_OBJ_TYPE_COUNTER, JOB: ZX_OBJ_TYPE_JOB,
    PROCESS: ZX_OBJ_TYPE_PROCESS, THREAD: ZX_OBJ_TYPE_THREAD, VMAR: ZX_OBJ_TYPE_VMAR, PAGER: ZX_OBJ_TYPE_PAGER,
  };
  function fits(h: Handle): string[] {
    return Object.entries(types).filter(([, t]) => handleObjectCheck(h, t, SAME) === 0).map(([n]) => n);
  }
  const cgroup2 = findCgroup2();
  const track = <T extends Handle | Handle[]>(x: T): T => {
    for (const h of Array.isArray(x) ? x : [x]) opened.push(h);
    return x;
  };

  test('memfd, regular file, block device: VMO (and STREAM)', () => {
    expect(fits(track(createMemfd('t', 1)))).toEqual(['VMO', 'STREAM']);
    const f = path.join(dir, 'plain');
    fs.writeFileSync(f, 'x');
    expect(fits(open(f, 'r'))).toEqual(['VMO', 'STREAM']);
  });
  test('AF_UNIX SEQPACKET: CHANNEL; STREAM: SOCKET; DGRAM: EVENTPAIR', () => {
    expect(fits(track(Channel.pairHandles())[0])).toEqual(['CHANNEL']);
    expect(fits(track(createSocketPair())[0])).toEqual(['SOCKET']);
    expect(fits(track(createEventPair())[0])).toEqual(['EVENTPAIR']);
  });
  test('a socket of another family is none of them, even of the right socket type', () => {
    // A UDP socket is SOCK_DGRAM but not AF_UNIX: not an eventpair.
    const udp = dgram.createSocket('udp4');
    udp.bind(0, '127.0.0.1');
    return new Promise<void>((resolve) => udp.once('listening', () => {
      const fd = (udp as unknown as { _handle: { fd: number } })._handle.fd;
      expect(fd).toBeGreaterThanOrEqual(0);
      const h = new Handle(fd);
      expect(handleObjectCheck(h, ZX_OBJ_TYPE_EVENTPAIR, SAME)).toBe(-12);
      expect(handleObjectCheck(h, ZX_OBJ_TYPE_NONE, SAME)).toBe(0);
      h.take(); // the socket still belongs to node's dgram object
      udp.close(() => resolve());
    }));
  });
  test('eventfd: EVENT and COUNTER; its count is untouched by the check', () => {
    const e = track(createEventFd(5));
    expect(fits(e)).toEqual(['EVENT', 'COUNTER']);
    const count = Buffer.alloc(8);
    expect(fs.readSync(e.fd, count, 0, 8, null)).toBe(8);
    expect(count.readBigUInt64LE(0)).toBe(5n);
  });
  test('other anonymous-inode fds (userfaultfd, timerfd, epoll, inotify) are no event', () => {
    const uffd = findUffd();
    if (uffd !== null) expect(fits(track(uffd))).toEqual([]);
    // Node's own epoll (and any timerfd, inotify, signalfd it holds) share the eventfd's inode.
    const anon = anonFdsOfThisProcess();
    expect(anon.length).toBeGreaterThan(0); // node's epoll at least
    for (const fd of anon) {
      const h = new Handle(fd);
      expect(fits(h)).toEqual([]);
      h.take(); // not ours to close
    }
  });
  test('a directory: JOB only on cgroup2, read-only or O_PATH', () => {
    expect(fits(open(dir, 'r'))).toEqual([]);
    if (cgroup2 === null) {
      console.warn('no cgroup2 mount found: the JOB row is checked only for refusals');
      return;
    }
    expect(fits(open(cgroup2, 'r'))).toEqual(['JOB']);
    expect(fits(open(cgroup2, 0o10000000))).toEqual(['JOB']); // O_PATH
  });
  test('a pidfd: PROCESS and THREAD', () => {
    const pidfd = pidfdOfSelf();
    expect(fits(track(pidfd))).toEqual(['PROCESS', 'THREAD']);
  });
  test('char devices, FIFOs: nothing but an untyped zx.Handle', () => {
    const nul = open('/dev/null', 'r');
    expect(fits(nul)).toEqual([]);
    expect(handleObjectCheck(nul, ZX_OBJ_TYPE_NONE, SAME)).toBe(0);
  });
});

describe('rights that an fd can answer for', () => {
  test('READ and WRITE follow the open mode; MAP needs a readable VMO', () => {
    const f = path.join(dir, 'rights');
    fs.writeFileSync(f, Buffer.alloc(4096));
    const ro = open(f, 'r');
    const wo = open(f, 'a');
    expect(handleObjectCheck(ro, ZX_OBJ_TYPE_VMO, ZX_RIGHT_READ | ZX_RIGHT_MAP)).toBe(0);
    expect(handleObjectCheck(wo, ZX_OBJ_TYPE_VMO, ZX_RIGHT_MAP)).toBe(-30);
    expect(handleObjectCheck(wo, ZX_OBJ_TYPE_VMO, ZX_RIGHT_WRITE)).toBe(0);
    const [a, b] = createEventPair();
    expect(handleObjectCheck(a, ZX_OBJ_TYPE_EVENTPAIR, ZX_RIGHT_MAP)).toBe(-30);
    expect(handleObjectCheck(a, ZX_OBJ_TYPE_EVENTPAIR, RW | ZX_RIGHT_SIGNAL | ZX_RIGHT_SIGNAL_PEER | ZX_RIGHT_WAIT)).toBe(0);
    a.close();
    b.close();
  });
  test('WRITE and RESIZE are missing on a memfd sealed against them, even through a read-write fd', () => {
    const m = createMemfd('sealed-rights', 4096);
    expect(handleObjectCheck(m, ZX_OBJ_TYPE_VMO, ZX_RIGHT_WRITE | ZX_RIGHT_RESIZE)).toBe(0);
    addSeals(m, F_SEAL_SHRINK);
    expect(handleObjectCheck(m, ZX_OBJ_TYPE_VMO, ZX_RIGHT_RESIZE)).toBe(-30);
    expect(handleObjectCheck(m, ZX_OBJ_TYPE_VMO, ZX_RIGHT_WRITE)).toBe(0);
    addSeals(m, F_SEAL_WRITE);
    expect(handleObjectCheck(m, ZX_OBJ_TYPE_VMO, ZX_RIGHT_WRITE)).toBe(-30);
    expect(handleObjectCheck(m, ZX_OBJ_TYPE_VMO, ZX_RIGHT_READ | ZX_RIGHT_MAP)).toBe(0);
    m.close();
  });
  test('an O_PATH fd has DUPLICATE, TRANSFER and INSPECT, but not WAIT or READ', () => {
    const p = open(dir, 0o10000000);
    expect(handleObjectCheck(p, ZX_OBJ_TYPE_NONE, ZX_RIGHT_DUPLICATE | ZX_RIGHT_TRANSFER | ZX_RIGHT_INSPECT)).toBe(0);
    expect(handleObjectCheck(p, ZX_OBJ_TYPE_NONE, ZX_RIGHT_WAIT)).toBe(-30);
    expect(handleObjectCheck(p, ZX_OBJ_TYPE_NONE, ZX_RIGHT_READ)).toBe(-30);
  });
  test('rights with no meaning for an fd (EXECUTE, GET_PROPERTY, MANAGE_JOB) are taken as held', () => {
    const m = createMemfd('unchecked', 1);
    expect(handleObjectCheck(m, ZX_OBJ_TYPE_VMO, ZX_RIGHT_EXECUTE | (1 << 6) | (1 << 16))).toBe(0);
    m.close();
  });
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

/** A directory on a cgroup2 file system, from /proc/self/mounts; null if none is mounted. */
function findCgroup2(): string | null {
  for (const line of fs.readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
    const [, where, type] = line.split(' ');
    if (type === 'cgroup2') return where;
  }
  return null;
}

/** A userfaultfd (a FileMapping's, duplicated for the pager), or null where none is allowed. */
function findUffd(): Handle | null {
  const m = createMemfd('uffd-probe', 4096);
  try {
    const mapping = FileMapping.open(m.fd, 4096n);
    const uffd = new Handle(mapping.uffdForPager());
    mapping.close();
    return uffd;
  } catch {
    return null;
  } finally {
    m.close();
  }
}

/** Anonymous-inode fds that node itself holds other than eventfds: its epoll at least. */
function anonFdsOfThisProcess(): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc/self/fd')) {
    let link: string;
    try {
      link = fs.readlinkSync(`/proc/self/fd/${name}`);
    } catch {
      continue;
    }
    if (link === 'anon_inode:[eventpoll]' || link === 'anon_inode:[timerfd]' || link === 'anon_inode:inotify' || link === 'anon_inode:[signalfd]') out.push(Number(name));
  }
  return out;
}

/** A pidfd of this process. */
function pidfdOfSelf(): Handle {
  return openProcess(process.pid);
}
