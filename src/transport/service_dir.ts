// The service directory: the Linux stand-in for a component's /svc. A discoverable protocol is a
// listening SOCK_SEQPACKET socket named after it, e.g. <svcDir>/fuchsia.starnix.runner.Manager;
// each accepted connection is one Channel speaking that protocol.
//
// Access control is the file system's (directory 0700, socket 0600: only our uid and root can
// connect) plus an optional allow-list of peer uids checked with SO_PEERCRED.
//
// One listener per protocol and directory: a listener holds an exclusive flock on
// <svcDir>/.<protocolName>.lock while it lives (the kernel drops it when the process dies, so a
// crash never leaves it held). Without it, two servers starting at once on a stale socket could
// both replace it, and the first would be left listening on a socket file no longer there.
import * as fs from 'fs';
import * as path from 'path';
import { native } from '../native';
import { logger } from '../log';
import { Channel, ChannelOptions } from './channel';
import { Handle } from './handle';

export interface PeerCredentials {
  uid: number;
  gid: number;
  pid: number;
}

export interface ServiceListenerOptions {
  /** Peer uids allowed to connect; others are logged and closed. Default: no uid check. */
  allowUids?: number[];
}

/** A service-directory operation failed; `code` is the errno code (ENOENT, EADDRINUSE, ...). */
export class ServiceDirError extends Error {
  readonly code: string;
  readonly path: string;

  constructor(code: string, socketPath: string, message: string) {
    super(message);
    this.name = 'ServiceDirError';
    this.code = code;
    this.path = socketPath;
  }
}

interface NativeAcceptor {
  start(): void;
  pause(): void;
  close(): void;
  ref(): void;
  unref(): void;
}

const ACCEPT_EVENT_CONNECTIONS = 0;
const ACCEPT_EVENT_FAILED = 1;
const ACCEPT_EVENT_SHED = 2;
/** After accept fails for want of fds (EMFILE), wait this long before accepting again. */
const ACCEPT_RETRY_MS = 100;

function socketPathFor(svcDir: string, protocolName: string): string {
  if (protocolName === '' || protocolName === '.' || protocolName === '..' || protocolName.includes('/') || protocolName.includes('\0')) {
    throw new ServiceDirError('EINVAL', path.join(svcDir, protocolName), `not a protocol name (a file name in ${svcDir}): ${JSON.stringify(protocolName)}`);
  }
  return path.join(svcDir, protocolName);
}

/**
 * Creates svcDir 0700 when missing. An existing one must be ours: a directory owned by another
 * uid, or one that others may write, lets them replace our sockets with their own (and receive
 * our clients, with everything those send), so it is refused with EACCES, never used.
 */
function ensureServiceDir(svcDir: string): void {
  if (!fs.existsSync(svcDir)) {
    fs.mkdirSync(svcDir, { recursive: true, mode: 0o700 });
    fs.chmodSync(svcDir, 0o700); // the umask may have taken bits away, never added: make it exact
    logger.info(`service dir ${svcDir}: created, mode 0700`, { dir: svcDir });
    return;
  }
  const st = fs.statSync(svcDir);
  if (!st.isDirectory()) throw new ServiceDirError('ENOTDIR', svcDir, `service dir ${svcDir} exists and is not a directory`);
  const euid = process.geteuid?.() ?? st.uid;
  if (st.uid !== euid) {
    throw new ServiceDirError('EACCES', svcDir, `service dir ${svcDir} is owned by uid ${st.uid}, not by this server's uid ${euid}: refusing to serve in it (its owner could replace the sockets)`);
  }
  if ((st.mode & 0o022) !== 0) {
    throw new ServiceDirError('EACCES', svcDir, `service dir ${svcDir} has mode ${(st.mode & 0o777).toString(8)}: others may write it and replace its sockets; refusing to serve in it (chmod go-w)`);
  }
}

function errnoCode(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
}

/**
 * Binds the socket, replacing a stale one (a socket file nobody listens on: connect is refused)
 * but never a live one. Returns the listening fd.
 */
function bindReplacingStale(socketPath: string): number {
  try {
    return native.listenSocket(socketPath) as number;
  } catch (e) {
    if (errnoCode(e) !== 'EADDRINUSE') {
      throw new ServiceDirError(errnoCode(e), socketPath, `cannot listen on ${socketPath}: ${(e as Error).message}`);
    }
  }
  const st = fs.lstatSync(socketPath);
  if (!st.isSocket()) {
    throw new ServiceDirError('EEXIST', socketPath, `cannot listen on ${socketPath}: it exists and is not a socket`);
  }
  try {
    const probe = native.connectSocket(socketPath) as number;
    fs.closeSync(probe);
    throw new ServiceDirError('EADDRINUSE', socketPath, `cannot listen on ${socketPath}: a live listener already serves it`);
  } catch (e) {
    if (e instanceof ServiceDirError) throw e;
    if (errnoCode(e) !== 'ECONNREFUSED') {
      // EAGAIN (its backlog is full) and anything else: somebody is there, or we cannot tell.
      throw new ServiceDirError('EADDRINUSE', socketPath, `cannot listen on ${socketPath}: in use (${(e as Error).message})`);
    }
  }
  logger.info(`service socket ${socketPath}: stale (connection refused), replacing it`, { path: socketPath });
  fs.unlinkSync(socketPath);
  try {
    return native.listenSocket(socketPath) as number;
  } catch (e) {
    throw new ServiceDirError(errnoCode(e), socketPath, `cannot listen on ${socketPath}: ${(e as Error).message}`);
  }
}

function lockPathFor(svcDir: string, protocolName: string): string {
  return path.join(svcDir, `.${protocolName}.lock`);
}

/** Takes the protocol's lock file, writing our pid into it; EADDRINUSE naming the holder otherwise. */
function takeListenerLock(lockPath: string, socketPath: string): number {
  let fd: number;
  try {
    fd = native.lockFile(lockPath) as number;
  } catch (e) {
    const code = errnoCode(e);
    if (code !== 'EAGAIN' && code !== 'EWOULDBLOCK') {
      throw new ServiceDirError(code, socketPath, `cannot listen on ${socketPath}: cannot take ${lockPath}: ${(e as Error).message}`);
    }
    let holder = '';
    try {
      const pid = fs.readFileSync(lockPath, 'utf8').trim();
      if (/^\d+$/.test(pid)) holder = ` (pid ${pid})`;
    } catch {
      // Unreadable: say nothing about who.
    }
    throw new ServiceDirError('EADDRINUSE', socketPath, `cannot listen on ${socketPath}: another process serves it${holder}, holding ${lockPath}`);
  }
  try {
    fs.ftruncateSync(fd, 0);
    fs.writeSync(fd, `${process.pid}\n`, 0);
  } catch {
    // The pid is only for the message above; the lock is what counts.
  }
  return fd;
}

/** A protocol being served in a service directory. close() stops accepting and removes the socket. */
export class ServiceListener {
  readonly path: string;
  readonly protocolName: string;
  private readonly acceptor: NativeAcceptor;
  private readonly socketIdentity: { dev: number; ino: number };
  private readonly lockFd: number;
  private readonly allowUids?: ReadonlySet<number>;
  private readonly onChannel: (ch: Channel, peer: PeerCredentials) => void;
  private connections = 0;
  private retryTimer?: NodeJS.Timeout;
  private isClosed = false;

  /** Use listenService(). */
  constructor(socketPath: string, protocolName: string, onChannel: (ch: Channel, peer: PeerCredentials) => void, opts: ServiceListenerOptions) {
    this.path = socketPath;
    this.protocolName = protocolName;
    this.onChannel = onChannel;
    this.allowUids = opts.allowUids ? new Set(opts.allowUids) : undefined;
    this.lockFd = takeListenerLock(lockPathFor(path.dirname(socketPath), protocolName), socketPath);
    let fd = -1;
    try {
      fd = bindReplacingStale(socketPath);
      const st = fs.statSync(socketPath);
      this.socketIdentity = { dev: st.dev, ino: st.ino };
      this.acceptor = new native.NativeAcceptor(fd, this.onAcceptEvent.bind(this)) as NativeAcceptor;
    } catch (e) {
      if (fd >= 0) fs.closeSync(fd);
      fs.closeSync(this.lockFd);
      throw e;
    }
    try {
      this.acceptor.start();
    } catch (e) {
      this.acceptor.close(); // closes the listening fd
      fs.closeSync(this.lockFd);
      throw e;
    }
    logger.info(`service ${protocolName}: listening on ${socketPath}`, { path: socketPath });
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Stops accepting and removes the socket file (only if it is still ours). Idempotent. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.acceptor.close();
    try {
      const st = fs.lstatSync(this.path);
      if (st.dev === this.socketIdentity.dev && st.ino === this.socketIdentity.ino) fs.unlinkSync(this.path);
    } catch {
      // Already removed: nothing to do.
    }
    fs.closeSync(this.lockFd); // last: the next listener may now take over
    logger.info(`service ${this.protocolName}: closed ${this.path}`, { path: this.path });
  }

  /** Lets the process exit while the listener is open. */
  unref(): this {
    if (!this.isClosed) this.acceptor.unref();
    return this;
  }

  ref(): this {
    if (!this.isClosed) this.acceptor.ref();
    return this;
  }

  private onAcceptEvent(kind: number, payload: number[] | number): void {
    if (kind === ACCEPT_EVENT_SHED) {
      // Out of fds: the acceptor took these connections with its reserve fd and closed them.
      const shed = payload as number[];
      const who: string[] = [];
      for (let i = 0; i < shed.length; i += 3) who.push(`uid ${shed[i + 1]} pid ${shed[i + 2]}`);
      const errno = shed[0] === 24 ? 'EMFILE' : shed[0] === 23 ? 'ENFILE' : `errno ${shed[0]}`;
      logger.warn(`service ${this.protocolName}: out of file descriptors (${errno}): closed ${who.length} new connection(s) at once: ${who.join(', ')}`, {
        path: this.path,
      });
      return;
    }
    if (kind === ACCEPT_EVENT_FAILED) {
      logger.error(`service ${this.protocolName}: accept failed (errno ${payload as number}); retrying in ${ACCEPT_RETRY_MS} ms`, {
        path: this.path,
      });
      this.retryTimer = setTimeout(() => {
        if (!this.isClosed) this.acceptor.start();
      }, ACCEPT_RETRY_MS);
      this.retryTimer.unref();
      return;
    }
    if (kind !== ACCEPT_EVENT_CONNECTIONS) return;
    const batch = payload as number[];
    for (let i = 0; i < batch.length; i += 4) {
      const [fd, uid, gid, pid] = [batch[i], batch[i + 1], batch[i + 2], batch[i + 3]];
      if (this.isClosed) {
        fs.closeSync(fd);
        continue;
      }
      this.accept(fd, { uid, gid, pid });
    }
  }

  private accept(fd: number, peer: PeerCredentials): void {
    this.connections += 1;
    const name = `${this.protocolName}#${this.connections}`;
    if (this.allowUids && !this.allowUids.has(peer.uid)) {
      logger.warn(`service ${this.protocolName}: refused connection from uid ${peer.uid} pid ${peer.pid}: uid not allowed`, {
        channel: name,
      });
      fs.closeSync(fd);
      return;
    }
    logger.info(`service ${this.protocolName}: connection ${name} from uid ${peer.uid} pid ${peer.pid}`, { channel: name });
    const ch = Channel.fromHandle(new Handle(fd), { name });
    try {
      this.onChannel(ch, peer);
    } catch (e) {
      logger.error(`service ${this.protocolName}: handler failed for ${name}, closing it: ${(e as Error).stack ?? String(e)}`, {
        channel: name,
      });
      ch.close();
    }
  }
}

/**
 * Serves protocolName in svcDir: binds <svcDir>/<protocolName> (directory created 0700 when
 * missing, socket 0600) and calls onChannel for every accepted connection. A stale socket file is
 * replaced; a live listener is not (ServiceDirError, code EADDRINUSE).
 */
export function listenService(
  svcDir: string,
  protocolName: string,
  onChannel: (ch: Channel, peer: PeerCredentials) => void,
  opts: ServiceListenerOptions = {},
): ServiceListener {
  const socketPath = socketPathFor(svcDir, protocolName);
  ensureServiceDir(svcDir);
  return new ServiceListener(socketPath, protocolName, onChannel, opts);
}

/** Connects to protocolName in svcDir. ServiceDirError naming the path when nothing listens there. */
export function connectService(svcDir: string, protocolName: string, opts: ChannelOptions = {}): Channel {
  const socketPath = socketPathFor(svcDir, protocolName);
  let fd: number;
  try {
    fd = native.connectSocket(socketPath) as number;
  } catch (e) {
    const code = errnoCode(e);
    const why =
      code === 'ENOENT'
        ? 'no such socket (is the service running?)'
        : code === 'ECONNREFUSED'
          ? 'nothing listens on it (stale socket)'
          : code === 'EACCES'
            ? 'permission denied'
            : code === 'EAGAIN'
              ? 'the listener is not accepting (backlog full)'
              : (e as Error).message;
    throw new ServiceDirError(code, socketPath, `cannot connect to ${socketPath}: ${why}`);
  }
  const ch = Channel.fromHandle(new Handle(fd), { name: opts.name ?? `${protocolName}-client`, maxQueuedBytes: opts.maxQueuedBytes, maxQueuedHandles: opts.maxQueuedHandles });
  logger.debug(`service ${protocolName}: connected to ${socketPath}`, { channel: ch.name });
  return ch;
}
