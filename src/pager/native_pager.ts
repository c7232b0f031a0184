// The pager core (native/pager_core.cc) as a typed TypeScript class: the seed's `Pager` on Linux.
// A NativePager serves the files of one backing (an ext4 image as memfd, regular file or block
// device). registerFile gives out read-only memfd handles; a client that maps one hands its
// uffd over (attachMapping) and the pager's native threads page the file in on demand.
import * as fs from 'fs';
import { native } from '../native';
import { logger } from '../log';

/** A failure with the zx status to put on the wire. */
export class PagerError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'PagerError';
    this.status = status;
  }
}

export interface PagerOptions {
  /** Native pager threads (named pager-N). Default 2 (the seed used 1): read-ahead beyond a
   *  fault's first 512 KiB is queued as jobs that an idle thread fills, so a sequential reader's
   *  window fills on both cores. */
  threads?: number;
  /** 'fixed': 128 KiB per fault, as the seed. 'adaptive' (default, measured faster for
   *  sequential reads and no slower for random ones): one page on a random fault, doubling from
   *  128 KiB up to 8 MiB while faults form a stream, forward (filled ahead of the fault) or
   *  backward (filled behind it: glibc's memcpy walks a large source from its end). */
  readahead?: 'fixed' | 'adaptive';
  /** posix_fadvise(DONTNEED) on the backing after copying (as the seed). Default true;
   *  never applied to a memfd backing (that would discard the data). */
  dropCache?: boolean;
  /** Record every window the threads fill into per-thread rings, for drainTrace() (--trace). */
  trace?: boolean;
  /** 2 MiB hugetlb pages for a file: 'never' (default of this class), 'auto' (files of at least
   *  hugeThreshold bytes, when the pool has room; else 4 KiB pages), 'always' (registration fails
   *  with NO_RESOURCES when the pool lacks the file's pages). The service defaults to 'auto'. */
  hugePages?: 'never' | 'auto' | 'always';
  /** 'auto' only: the smallest file that gets huge pages, in bytes. Default 64 MiB. */
  hugeThreshold?: number;
}

/** 'auto' gives huge pages to files of at least this many bytes (native/pager_core.h; why: README, "Huge pages"). */
export const DEFAULT_HUGE_THRESHOLD = 64 * 1024 * 1024;
export const HUGE_PAGE_SIZE = 2 * 1024 * 1024;

/**
 * The pages a file of `size` bytes gets from a pager with hugePages 'auto' right now: huge when it
 * is at least the threshold and the pool has its pages free and unreserved (/proc/meminfo).
 */
export function pagesUnderAuto(size: bigint, threshold = DEFAULT_HUGE_THRESHOLD): { kind: 'huge' | '4k'; why: string } {
  if (size < BigInt(threshold)) return { kind: '4k', why: `smaller than the ${threshold >> 20} MiB threshold` };
  const need = Number((size + BigInt(HUGE_PAGE_SIZE) - 1n) / BigInt(HUGE_PAGE_SIZE));
  let free = 0;
  try {
    const text = fs.readFileSync('/proc/meminfo', 'utf8');
    const get = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
    free = get('HugePages_Free') - get('HugePages_Rsvd');
  } catch {
    free = 0;
  }
  if (free >= need) return { kind: 'huge', why: `${need} huge pages needed, ${free} free in the pool` };
  return { kind: '4k', why: `${need} huge pages needed, only ${free} free in the pool (vm.nr_hugepages)` };
}

/** One window a pager thread filled (native/trace_ring.h's VmoRead), timestamps CLOCK_BOOTTIME ns. */
export interface VmoReadRecord {
  beginNs: bigint;
  endNs: bigint;
  attachment: number;
  offset: bigint;
  length: bigint;
  bytesCopied: bigint;
  bytesZeroed: bigint;
  inode: number;
  /** The window of a fault whose reader waits on it (not a read-ahead job). */
  faultWindow: boolean;
  /** Stopped at a page that could not be read. */
  failed: boolean;
  /** ... which was the fault's own page: that read failed with EIO. */
  poisoned: boolean;
}

export interface TracedThread {
  /** Index of the pager thread, and its Linux tid. */
  index: number;
  tid: number;
  /** Records lost to a full ring since the pager started. */
  dropped: number;
  records: VmoReadRecord[];
}

const VMO_READ_BYTES = 64;

/** Blocks [logicalStart, logicalEnd) of the file, stored from physicalBlock on. */
export interface Extent {
  logicalStart: number;
  logicalEnd: number;
  physicalBlock: bigint;
}

export interface PagerStats {
  files: number;
  faults: number;
  bytesSupplied: bigint;
  bytesZeroed: bigint;
  failures: number;
  attachments: number;
  /** Files registered now that have 2 MiB huge pages. */
  hugeFiles: number;
  /** Registrations that wanted huge pages and got 4 KiB ones (the pool was short). */
  hugeFallbacks: number;
  /** Pages found in the page cache without the pager having filled them (a holder mapped its
   *  handle without a uffd and touched them, or root fallocated them): written over with the right
   *  bytes before any reader got them. */
  foreignPages: number;
}

type ForgottenCallback = (inode: number, name: string) => void;

// Live pagers, for findPagerForFile.
const livePagers = new Set<NativePager>();

function rethrow(e: unknown): never {
  const err = e as { status?: unknown; message?: string };
  if (typeof err?.status === 'number') throw new PagerError(err.status, String(err.message));
  throw e;
}

export class NativePager {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  private readonly inner: any;
  private readonly forgottenCallbacks: ForgottenCallback[] = [];
  private stopped = false;

  private constructor(backingFd: number, blockSize: number, opts: PagerOptions) {
    // The native side posts events from its threads; this runs on the JS thread.
    const onEvent = (kind: string, a: string | number, b: string) => {
      if (kind === 'log') {
        logger.log(String(a), `pager: ${b}`);
      } else if (kind === 'forgotten') {
        for (const cb of this.forgottenCallbacks) {
          try {
            cb(a as number, b);
          } catch (e) {
            logger.error(`pager: onFileForgotten callback threw: ${String(e)}`);
          }
        }
      }
    };
    try {
      this.inner = new native.Pager(backingFd, blockSize, { ...opts }, onEvent);
    } catch (e) {
      rethrow(e);
    }
  }

  /** Starts a pager over backingFd, which is dup'ed (the caller keeps and closes its own). */
  static create(backingFd: number, blockSize: number, opts: PagerOptions = {}): NativePager {
    const pager = new NativePager(backingFd, blockSize, opts);
    livePagers.add(pager);
    return pager;
  }

  /**
   * Registers an inode; returns a NEW read-only open file description of its memfd (the caller
   * owns the fd). For an inode already known, returns another handle to the same file and
   * ignores the new size and extents (as the seed); they are still validated.
   */
  registerFile(name: string, inode: number, size: bigint, extents: Extent[]): { fd: number; created: boolean } {
    try {
      return this.inner.registerFile(name, inode, size, extents);
    } catch (e) {
      rethrow(e);
    }
  }

  /**
   * Serves the faults of a client's mapping [address, address+length) of the file behind
   * fileFd (only inspected), from file offset `offset`. Takes ownership of uffdFd, also when
   * it throws. Returns the attachment's id.
   */
  attachMapping(fileFd: number, uffdFd: number, address: bigint, length: bigint, offset: bigint): number {
    try {
      return this.inner.attachMapping(fileFd, uffdFd, address, length, offset);
    } catch (e) {
      rethrow(e);
    }
  }

  /** Stops serving an attachment and closes its uffd. Unknown ids are ignored (an attachment
   *  is detached by itself when its file is forgotten). */
  detachMapping(id: number): void {
    this.inner.detachMapping(id);
  }

  /** False once the attachment is gone: detached, its file forgotten, or the pager stopped. */
  isAttached(id: number): boolean {
    return this.inner.isAttached(id);
  }

  stats(): PagerStats {
    return this.inner.stats();
  }

  /** Takes what the threads recorded since the last call (a pager created with trace: true). */
  drainTrace(): TracedThread[] {
    const threads = this.inner.drainTrace() as { tid: number; dropped: number; records: Buffer }[];
    return threads.map((t, index) => ({ index, tid: t.tid, dropped: t.dropped, records: parseVmoReads(t.records) }));
  }

  /** Bytes of this pager's files in memory (one fstat per file). */
  residentBytes(): bigint {
    return this.inner.residentBytes();
  }

  /** Called on the JS thread when a file is forgotten: every handle and mapping is gone. */
  onFileForgotten(cb: ForgottenCallback): void {
    this.forgottenCallbacks.push(cb);
  }

  /** True if fd is a handle to one of this pager's files (same st_dev/st_ino). */
  ownsFile(fd: number): boolean {
    return !this.stopped && this.inner.ownsFile(fd);
  }

  /** Tells the native threads to end (without waiting: one may be in a read of a backing that does
   *  not answer), fails faults still queued, lets go of every file and mapping. Returns at once;
   *  the threads and the pager's own fds go as the last thread leaves. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    livePagers.delete(this);
    this.inner.stop();
  }

  /** After stop(): true once the native pager is gone (its last thread left, its fds closed). A
   *  thread inside a read of a backing that never answers keeps it until the read ends. */
  get freed(): boolean {
    return this.stopped && (this.inner.freed() as boolean);
  }

  /** Calls done once the stopped pager is freed: soon after stop() (its threads wake and leave),
   *  or, with a thread stuck in a read of its backing, when that read ends. Looks again with a
   *  backoff from 5 ms to 1 s; the timer does not keep the process alive. */
  whenFreed(done: () => void): void {
    let delay = 5;
    const look = (): void => {
      if (this.freed) {
        done();
        return;
      }
      setTimeout(look, delay).unref();
      delay = Math.min(delay * 2, 1000);
    };
    look();
  }
}

function parseVmoReads(buf: Buffer): VmoReadRecord[] {
  const out: VmoReadRecord[] = [];
  for (let at = 0; at + VMO_READ_BYTES <= buf.length; at += VMO_READ_BYTES) {
    const flags = buf.readUInt32LE(at + 60);
    out.push({
      beginNs: buf.readBigUInt64LE(at),
      endNs: buf.readBigUInt64LE(at + 8),
      attachment: Number(buf.readBigUInt64LE(at + 16)),
      offset: buf.readBigUInt64LE(at + 24),
      length: buf.readBigUInt64LE(at + 32),
      bytesCopied: buf.readBigUInt64LE(at + 40),
      bytesZeroed: buf.readBigUInt64LE(at + 48),
      inode: buf.readUInt32LE(at + 56),
      faultWindow: (flags & 1) !== 0,
      failed: (flags & 2) !== 0,
      poisoned: (flags & 4) !== 0,
    });
  }
  return out;
}

/** CLOCK_BOOTTIME in ns: the clock of the pager threads' trace records (and of the whole trace). */
export function traceClockNs(): bigint {
  return native.traceClockNs() as bigint;
}

/** The live pager whose file fileFd is a handle to, if any (undefined also for a bad fd). The fd is
 *  a client's: it is never fstat'ed here (a FUSE file whose daemon stalls GETATTR would freeze the
 *  JavaScript thread); each pager compares cached attributes (statx AT_STATX_DONT_SYNC). */
export function findPagerForFile(fileFd: number): NativePager | undefined {
  for (const pager of livePagers) {
    if (pager.ownsFile(fileFd)) return pager;
  }
  return undefined;
}

/** A plain memfd of `size` bytes (for tests and benchmarks that want a memfd backing). */
export function createMemfdForTests(name: string, size: number): number {
  return native.pagerCreateMemfd(name, size);
}
