// fd arguments of the addon are whole Numbers in [0, INT_MAX]; anything else is a TypeError.
// Before issue 18 they went through Int32Value(), which wraps 2**32 + n to n: dupFd(2**32 + n)
// duplicated fd n, and a send of [2**32 + n] sent and then closed the unrelated fd n.
import * as fs from 'fs';
import { native } from '../../src/native';
import { Handle } from '../../src/transport/handle';
import { FileMapping } from '../../src/client/mapping';
import { createMemfdForTests } from '../../src/pager/native_pager';
import { openFdCount } from './helpers';

const WRAPS = 2 ** 32; // Int32Value(2**32 + n) === n
const NOT_FDS: unknown[] = [-1, 1.5, NaN, Infinity, 2 ** 31, WRAPS, '3', 3n, null];

/** The addon's errors come from Node's realm, not jest's: check the name, not the constructor. */
function expectTypeError(fn: () => unknown): void {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect((error as Error | undefined)?.name).toBe('TypeError');
}

function isOpen(fd: number): boolean {
  try {
    fs.fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

describe('fd numbers from JavaScript', () => {
  test('dupFd, fdInfo, getSeals: 2**32 + n is not fd n, and no other non-fd number is taken', () => {
    const victim = fs.openSync('/dev/null', 'r');
    try {
      const before = openFdCount();
      expectTypeError(() => native.dupFd(WRAPS + victim));
      expectTypeError(() => native.fdInfo(WRAPS + victim));
      expectTypeError(() => native.getSeals(WRAPS + victim));
      for (const bad of NOT_FDS) expectTypeError(() => native.dupFd(bad));
      expect(openFdCount()).toBe(before);
      // The largest fd number is still a number the addon takes (and the kernel refuses).
      expect(() => native.dupFd(2 ** 31 - 1)).toThrow(/EBADF/);
    } finally {
      fs.closeSync(victim);
    }
  });

  test('send with a handle of 2**32 + n: TypeError, fd n left open, the valid handles consumed', () => {
    const [a, b] = native.socketPair() as [number, number];
    const channel = new native.NativeChannel(a, () => undefined, 1 << 20, 64);
    const victim = fs.openSync('/dev/null', 'r');
    const passed = fs.openSync('/dev/null', 'r');
    try {
      expectTypeError(() => channel.send(new Uint8Array(16), [passed, WRAPS + victim]));
      expect(isOpen(victim)).toBe(true);
      // The send owns the handles it was given: the valid one is closed, not leaked.
      expect(isOpen(passed)).toBe(false);
      for (const bad of NOT_FDS) expectTypeError(() => channel.send(new Uint8Array(16), [bad]));
      expect(isOpen(victim)).toBe(true);
    } finally {
      fs.closeSync(victim);
      channel.close();
      fs.closeSync(b);
    }
  });

  test('Mapping and watchPager: 2**32 + n is not fd n', () => {
    const memfd = createMemfdForTests('m', 8192);
    try {
      expectTypeError(() => FileMapping.open(WRAPS + memfd, 8192n));
      const mapping = FileMapping.open(memfd, 8192n);
      try {
        const [s1, s2] = native.socketPair() as [number, number];
        expectTypeError(() => mapping.watchPager(WRAPS + s1));
        expectTypeError(() => mapping.watchPager(-1));
        fs.closeSync(s1);
        fs.closeSync(s2);
      } finally {
        mapping.close();
      }
    } finally {
      fs.closeSync(memfd);
    }
  });

  test('Handle takes only fd numbers', () => {
    for (const bad of [-1, 1.5, NaN, 2 ** 31, WRAPS + 3]) expect(() => new Handle(bad)).toThrow(RangeError);
  });
});

describe('other whole-number arguments of the addon', () => {
  test('pidfdOpen(2**32 + pid) is not pid (it opened the process `pid`), and unixSocketPair(2**32 + 1) is not SOCK_STREAM', () => {
    const before = openFdCount();
    for (const bad of [WRAPS + process.pid, -1, 0, 1.5, '1']) expectTypeError(() => native.pidfdOpen(bad));
    for (const bad of [WRAPS + 1, WRAPS + 5, -1, 1.5]) expectTypeError(() => native.unixSocketPair(bad));
    expect(openFdCount()).toBe(before);
    const pidfd = native.pidfdOpen(process.pid) as number; // the plain case still works
    expect(isOpen(pidfd)).toBe(true);
    fs.closeSync(pidfd);
  });
});
