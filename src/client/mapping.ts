// A client's view of a paged file: the file mapped read-only, with a uffd the pager serves.
// Reads copy out of the mapping; a page the pager failed (SIGBUS) becomes an Error with code
// 'EIO', or 'EPIPE' once the pager is known to be gone.
//
// Caveat: read()/pread() on the file's fd do not page anything in: for pages not yet paged in
// they return zeros. Read through a FileMapping. Likewise every mmap of a pager file must be
// registered with a uffd that the pager serves (FileMapping does both).
import { native } from '../native';

export class FileMapping {
  /** Where the file is mapped, and how many bytes (the size rounded up to pages). */
  readonly address: bigint;
  readonly length: bigint;
  /** True if only a user-mode-only uffd could be had (kernel-side accesses would fail). */
  readonly userModeOnly: boolean;
  /** The file's page size: 4096, or 2 MiB when the pager gave it huge pages (a hugetlb memfd). */
  readonly pageSize: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  private inner: any;
  private readonly size: bigint;

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  private constructor(inner: any, size: bigint) {
    this.inner = inner;
    this.address = inner.address;
    this.length = inner.length;
    this.userModeOnly = inner.userModeOnly;
    this.pageSize = inner.pageSize;
    this.size = size;
  }

  /**
   * Maps ceil(size/page) pages of fileFd read-only (MAP_PRIVATE: a shared mapping of a
   * read-only handle cannot be registered with a uffd) and registers them with a new uffd
   * (userfaultfd(2), else /dev/userfaultfd) for MISSING faults, with UFFD_FEATURE_POISON.
   * fileFd is dup'ed; the caller keeps its own.
   */
  static open(fileFd: number, size: bigint): FileMapping {
    return new FileMapping(new native.Mapping(fileFd, size), size);
  }

  /**
   * The mapping of an empty file: there is no page to map (mmap refuses length 0), so nothing
   * is mapped and no uffd is made; reads of zero bytes succeed, any other read is out of range.
   */
  static empty(): FileMapping {
    const nothing = {
      address: 0n,
      length: 0n,
      userModeOnly: false,
      pageSize: 4096,
      read: () => Buffer.alloc(0),
      readAsync: () => Promise.resolve(Buffer.alloc(0)),
      readInto: () => 0,
      readIntoAsync: () => Promise.resolve(0),
      writeTo: () => Promise.resolve(0),
      uffdForPager: () => {
        throw new Error('an empty file has no mapping to hand to the pager');
      },
      watchPager: () => undefined,
      close: () => undefined,
    };
    return new FileMapping(nothing, 0n);
  }

  /** A dup of the uffd, for the pager (the mapping keeps its own copy). */
  uffdForPager(): number {
    return this.live().uffdForPager();
  }

  /** Watches a dup of the socket to the pager: when it hangs up, every page still missing is
   *  poisoned, so that readers fail ('EPIPE') instead of waiting forever. */
  watchPager(fd: number): void {
    this.live().watchPager(fd);
  }

  /** Copies [offset, offset+length) out of the mapping (on this thread). */
  read(offset: bigint | number, length: number): Buffer {
    this.check(offset, length);
    return this.live().read(offset, length);
  }

  /** Copies target.length bytes from offset into target (a buffer the caller reuses: no
   *  allocation per call, which for large reads is most of read()'s cost). Returns target.length. */
  readInto(target: Uint8Array, offset: bigint | number): number {
    this.check(offset, target.length);
    return this.live().readInto(target, offset);
  }

  /** The same as read() on a libuv worker thread, leaving the JS thread free while pages come in.
   *  The new buffer is filled in place (one copy, no staging buffer); for large sequential reads
   *  readIntoAsync() into buffers you reuse, or writeTo() an fd, is faster still: every new buffer
   *  is fresh memory, which costs about as much to fault in as the page the pager supplies. */
  readAsync(offset: bigint | number, length: number): Promise<Buffer> {
    try {
      this.check(offset, length);
      return this.live().readAsync(offset, length);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** readInto() on a libuv worker thread: copies target.length bytes from offset into target and
   *  resolves to target.length. Leave target alone until the promise settles. */
  readIntoAsync(target: Uint8Array, offset: bigint | number): Promise<number> {
    try {
      this.check(offset, target.length);
      return this.live().readIntoAsync(target, offset);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Writes [offset, offset+length) to the file descriptor fd with write(2) straight from the
   * mapping, on a libuv worker thread: no buffer and no copy in this process. Each 4 MiB is paged
   * in (touched, in user mode) before it is written, so it works with a user-mode-only uffd too,
   * and every byte is paged in even when fd is /dev/null. Resolves to the bytes written. A page
   * the pager could not read rejects with code 'EIO' ('EPIPE' if the pager is gone); a failure of
   * the output itself rejects with its errno code and `syscall: 'write'` (e.g. 'EPIPE' when the
   * reader of a pipe went away). Either error carries `bytesWritten`.
   */
  writeTo(fd: number, offset: bigint | number, length: bigint | number): Promise<number> {
    try {
      this.check(offset, Number(length));
      return this.live().writeTo(fd, offset, length);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Unmaps (once no async read uses the range), then closes the uffd and the watcher. */
  close(): void {
    if (this.inner === null) return;
    const inner = this.inner;
    this.inner = null;
    inner.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  private live(): any {
    if (this.inner === null) {
      const e = new Error('the mapping is closed') as NodeJS.ErrnoException;
      e.code = 'EBADF';
      throw e;
    }
    return this.inner;
  }

  private check(offset: bigint | number, length: number): void {
    const off = BigInt(offset);
    if (!Number.isInteger(length) || length < 0 || off < 0n || off + BigInt(length) > this.size) {
      const e = new RangeError(`read [${off}, +${length}) outside the file (${this.size} bytes)`) as RangeError & {
        code?: string;
      };
      e.code = 'ERANGE';
      throw e;
    }
  }
}
