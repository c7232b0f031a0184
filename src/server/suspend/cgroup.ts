// A container on Linux: a cgroup v2 directory, handed over as an fd (the JOB handle). Its
// processes are stopped and resumed with cgroup v2's freezer: `cgroup.freeze` (write 1 or 0) and
// the `frozen` and `populated` keys of `cgroup.events`, which the kernel updates when every task
// has stopped (or the last one left) and signals with POLLPRI on an open fd of the file.
// Everything goes through /proc/self/fd/N/..., so an O_PATH fd of the directory is enough and no
// path is trusted: the files are those of the directory the peer opened.
import * as fs from 'fs';
import { Handle } from '../../transport/handle';
import { NativeFdWatcher, POLL_PRIORITIZED, watchFd } from '../../transport/eventpair';

/** statfs f_type of a cgroup v2 file system (linux/magic.h). */
export const CGROUP2_SUPER_MAGIC = 0x63677270;

export class CgroupError extends Error {
  /** The errno code (EACCES, ENOENT, ...) when a system call failed. */
  readonly code?: string;

  constructor(message: string, code?: string) {
    super(message);
    this.name = 'CgroupError';
    this.code = code;
  }
}

export interface CgroupEvents {
  populated: boolean;
  frozen: boolean;
}

export class Cgroup {
  private constructor(
    private readonly handle: Handle,
    /** The cgroup's id: its directory's inode number, unique while the system runs. */
    readonly id: string,
    /** Where the directory is, as this process sees it (for logs and the frozen-cgroup ledger). */
    readonly path: string,
  ) {}

  /** Takes ownership of h. Throws CgroupError (h closed) when it is not a cgroup v2 directory. */
  static fromHandle(h: Handle): Cgroup {
    try {
      const proc = `/proc/self/fd/${h.fd}`;
      const st = fs.statSync(proc, { bigint: true });
      if (!st.isDirectory()) throw new CgroupError('the container job is not a directory');
      const sfs = fs.statfsSync(proc);
      if (sfs.type !== CGROUP2_SUPER_MAGIC) {
        throw new CgroupError(`the container job is a directory on a file system of type 0x${sfs.type.toString(16)}, not cgroup2`);
      }
      return new Cgroup(h, st.ino.toString(), fs.readlinkSync(proc));
    } catch (e) {
      h.close();
      if (e instanceof CgroupError) throw e;
      const err = e as NodeJS.ErrnoException;
      throw new CgroupError(`the container job cannot be inspected: ${err.message}`, err.code);
    }
  }

  /** Opens a cgroup directory by path (the CLI, the tests). */
  static open(path: string): Cgroup {
    const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    return Cgroup.fromHandle(new Handle(fd));
  }

  /** A file of this cgroup, through the directory fd. */
  file(name: string): string {
    return `/proc/self/fd/${this.handle.fd}/${name}`;
  }

  /** Writes cgroup.freeze. Throws CgroupError with the errno code (EACCES, ENOENT, ...). */
  setFrozen(frozen: boolean): void {
    writeFreeze(this.file('cgroup.freeze'), frozen, this.path);
  }

  readEvents(): CgroupEvents {
    return parseEvents(readSmall(this.file('cgroup.events'), this.path));
  }

  /** The pids of the processes in this cgroup (not its children). */
  pids(): number[] {
    return readSmall(this.file('cgroup.procs'), this.path)
      .split('\n')
      .filter((l) => l !== '')
      .map(Number);
  }

  /** Watches cgroup.events; onChange gets the current events at once and after every change. */
  watchEvents(onChange: (events: CgroupEvents) => void, onError: (e: CgroupError) => void): CgroupEventsWatch {
    return new CgroupEventsWatch(this.file('cgroup.events'), this.path, onChange, onError);
  }

  close(): void {
    this.handle.close();
  }
}

/**
 * An open fd of a cgroup.events file and a poll for POLLPRI on it. The kernel raises POLLPRI once
 * the file changed since this fd last read it, so reading after the poll starts misses nothing.
 */
export class CgroupEventsWatch {
  private fd: number;
  private watcher: NativeFdWatcher | null;
  private readonly buffer = Buffer.alloc(256);

  constructor(
    file: string,
    private readonly where: string,
    private readonly onChange: (events: CgroupEvents) => void,
    private readonly onError: (e: CgroupError) => void,
  ) {
    try {
      this.fd = fs.openSync(file, fs.constants.O_RDONLY);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new CgroupError(`${where}: cannot open cgroup.events: ${err.message}`, err.code);
    }
    this.watcher = watchFd(this.fd, (status) => {
      if (status < 0) {
        this.close();
        this.onError(new CgroupError(`${where}: polling cgroup.events failed (libuv status ${status})`));
        return;
      }
      this.readAndReport();
    });
    this.watcher.start(POLL_PRIORITIZED);
    // Reported after the caller has its handle on this watch (it may close it from onChange).
    setImmediate(() => this.readAndReport());
  }

  close(): void {
    if (this.watcher === null) return;
    this.watcher.close();
    this.watcher = null;
    fs.closeSync(this.fd);
    this.fd = -1;
  }

  private readAndReport(): void {
    if (this.watcher === null) return;
    let text: string;
    try {
      const n = fs.readSync(this.fd, this.buffer, 0, this.buffer.length, 0);
      text = this.buffer.toString('latin1', 0, n);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      this.close();
      this.onError(new CgroupError(`${this.where}: reading cgroup.events failed: ${err.message}`, err.code));
      return;
    }
    this.onChange(parseEvents(text));
  }
}

function parseEvents(text: string): CgroupEvents {
  const events: CgroupEvents = { populated: false, frozen: false };
  for (const line of text.split('\n')) {
    const [key, value] = line.split(' ');
    if (key === 'populated') events.populated = value === '1';
    if (key === 'frozen') events.frozen = value === '1';
  }
  return events;
}

function readSmall(file: string, where: string): string {
  try {
    return fs.readFileSync(file, 'latin1');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new CgroupError(`${where}: cannot read ${file.slice(file.lastIndexOf('/') + 1)}: ${err.message}`, err.code);
  }
}

/** Writes "1" or "0" to a cgroup.freeze file (by path: also used for recovery after a crash). */
export function writeFreeze(file: string, frozen: boolean, where = file): void {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_WRONLY);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new CgroupError(`${where}: cannot open cgroup.freeze for writing: ${err.message}`, err.code);
  }
  try {
    fs.writeSync(fd, frozen ? '1' : '0');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new CgroupError(`${where}: writing ${frozen ? 1 : 0} to cgroup.freeze failed: ${err.message}`, err.code);
  } finally {
    fs.closeSync(fd);
  }
}
