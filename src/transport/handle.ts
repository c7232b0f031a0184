// A Handle owns one file descriptor: the Linux stand-in for a Zircon handle.
// It closes its fd exactly once. Putting a handle into a message moves it (take()), after
// which this object is invalid and the fd belongs to the kernel's in-flight message.
import * as fs from 'fs';

export class Handle {
  private fdValue: number;

  constructor(fd: number) {
    // At most INT_MAX: the addon refuses larger numbers rather than wrap 2**32 + n to fd n.
    if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) throw new RangeError(`not a file descriptor: ${fd}`);
    this.fdValue = fd;
  }

  /** The fd, while this handle still owns it. */
  get fd(): number {
    if (this.fdValue < 0) throw new Error('handle is closed or was moved');
    return this.fdValue;
  }

  get valid(): boolean {
    return this.fdValue >= 0;
  }

  /** Gives up ownership and returns the fd; the caller must close it (or send it). */
  take(): number {
    const fd = this.fd;
    this.fdValue = -1;
    return fd;
  }

  /**
   * A second handle to the same object (a new fd for the same open file description,
   * close-on-exec): like zx_handle_duplicate with the same rights. This handle stays valid.
   */
  duplicate(): Handle {
    // Loaded here, not at the top: handle.ts stays usable where the addon is not built.
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const { native } = require('../native') as typeof import('../native');
    return new Handle(native.dupFd(this.fd) as number);
  }

  /** Closes the fd; a second call does nothing. */
  close(): void {
    if (this.fdValue < 0) return;
    const fd = this.fdValue;
    this.fdValue = -1;
    fs.closeSync(fd);
  }
}
