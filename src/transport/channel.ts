// A channel: the Linux stand-in for a Zircon channel, one AF_UNIX SOCK_SEQPACKET socket.
// One message is one datagram; its handles travel as fds in SCM_RIGHTS, in order.
//
// The socket work happens in the native addon (native/channel.cc): it polls the fd with libuv,
// drains every readable message in one go and hands the batch to onNativeEvent(); writes go
// straight to sendmsg and are queued natively only when the socket is full.
import { EventEmitter } from 'events';
import * as fs from 'fs';
import { native } from '../native';
import { logger } from '../log';
import { Handle } from './handle';
import { MAX_MESSAGE_BYTES, MAX_MESSAGE_HANDLES } from '../fidl/message';
import { ZX, statusName } from '../zx_status';

/** A channel operation failed; `status` is the zx status (negative, see spec/protocol.md). */
export class ChannelError extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(`${message} (${statusName(status)})`);
    this.name = 'ChannelError';
    this.status = status;
  }
}

export interface ChannelOptions {
  /** Used in every log line about the channel; default `ch<pid>.<n>`. */
  name?: string;
  /** Bytes that may wait in the write queue for a slow reader before the channel is closed. */
  maxQueuedBytes?: number;
  /** Handles (fds) that may wait in the write queue; each is one of our fds until sent. */
  maxQueuedHandles?: number;
  /** Sees every message sent or received (a recorder, see src/record); none by default. */
  tap?: ChannelTap;
}

/**
 * An observer of a channel's traffic (the FIDL recorder). It is called before a sent message's
 * handles move and before a received one is delivered, with the fds still open, and must not
 * throw or keep the fds.
 */
export interface ChannelTap {
  message(direction: 'in' | 'out', bytes: Uint8Array, fds: readonly number[]): void;
  /** The tap for a channel that came through this one (same peer), speaking `protocol`. */
  derive(protocol: string): ChannelTap;
}

/** Default cap on the write queue: a slow reader cannot make us hold more than this. */
export const DEFAULT_MAX_QUEUED_BYTES = 4 << 20;
/**
 * Default cap on the fds in the write queue: the byte cap alone let a peer that never reads
 * make us hold tens of thousands of fds (one per small reply), past RLIMIT_NOFILE (20000 here).
 * High enough for a client that pipelines a few thousand handle-carrying calls at once.
 */
export const DEFAULT_MAX_QUEUED_HANDLES = 4096;

// native/channel.cc's event kinds and send() results.
const EVENT_MESSAGES = 0;
const EVENT_CLOSED = 1;
const EVENT_WARNING = 2;
const SEND_QUEUE_OVERFLOW = 2;

let channelCount = 0;
function defaultName(): string {
  channelCount += 1;
  return `ch${process.pid}.${channelCount}`;
}

/**
 * Inodes of the sockets of every open Channel of this process. A server refuses a handle whose
 * peer is one of them (a client feeding the server's own endpoints back to it: they would never
 * hang up, and whatever they hold would never be freed).
 */
const ownSocketInodes = new Map<number, number>(); // inode -> count (a released fd may be wrapped again)

function noteInode(inode: number, delta: number): void {
  const n = (ownSocketInodes.get(inode) ?? 0) + delta;
  if (n <= 0) ownSocketInodes.delete(inode);
  else ownSocketInodes.set(inode, n);
}

/** True if `inode` is the socket of an open Channel of this process. */
export function isOwnChannelInode(inode: number): boolean {
  return ownSocketInodes.has(inode);
}

/** A chain of budgets for write queues (native/channel.cc's NativeQueueBudget). */
export type QueueBudget = object;

interface NativeChannel {
  start(): void;
  setQueueBudget(budget: QueueBudget): boolean;
  send(bytes: Uint8Array, fds: number[] | undefined): number;
  close(dropQueued?: boolean): void;
  release(): number;
  ref(): void;
  unref(): void;
  queuedBytes(): number;
  lastErrno(): number;
}

/**
 * Events: 'message' (bytes: Buffer, handles: Handle[], batched: boolean) — the listener owns the
 * handles and must close the ones it does not keep; `batched` says that other messages arrived
 * with this one and are delivered right after it (in the same macrotask); 'close' () — once, whether the peer closed, the socket failed,
 * or close() was called. Messages that arrive while no 'message' listener is attached are dropped
 * and their handles closed.
 */
export class Channel extends EventEmitter {
  readonly name: string;
  /** The observer of this channel's traffic, if any (see ChannelOptions.tap); set it before start(). */
  tap: ChannelTap | undefined;
  private readonly nativeChannel: NativeChannel;
  private readonly onNativeEventBound: (kind: number, a: unknown, b: unknown) => void;
  private isClosed = false;
  private inode = -1;
  private whyClosed = 0;
  private droppedWithoutListener = 0;

  private constructor(fd: number, opts: ChannelOptions) {
    super();
    this.name = opts.name ?? defaultName();
    this.tap = opts.tap;
    const maxQueued = opts.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    const maxQueuedHandles = opts.maxQueuedHandles ?? DEFAULT_MAX_QUEUED_HANDLES;
    // The native side holds this function weakly while idle: keep it alive as long as we are.
    this.onNativeEventBound = this.onNativeEvent.bind(this);
    this.nativeChannel = new native.NativeChannel(fd, this.onNativeEventBound, maxQueued, maxQueuedHandles) as NativeChannel;
    const inode = native.socketInode(fd) as number;
    if (inode > 0) {
      this.inode = inode;
      noteInode(inode, 1);
    }
  }

  /** Forgets this channel's socket in the registry of our own sockets (it is closed or moved). */
  private forgetInode(): void {
    if (this.inode > 0) noteInode(this.inode, -1);
    this.inode = -1;
  }

  /**
   * Charges what this channel queues for a slow peer to `budget` too (a chain: connection, uid,
   * server) from now on; overflowing it closes the channel as overflowing its own caps does. Only
   * while nothing is queued; false otherwise.
   */
  setQueueBudget(budget: QueueBudget): boolean {
    return !this.isClosed && this.nativeChannel.setQueueBudget(budget);
  }

  /** A connected pair (socketpair): what one end sends, the other receives. */
  static pair(names?: [string, string]): [Channel, Channel] {
    const [a, b] = native.socketPair() as [number, number];
    const base = defaultName();
    return [
      new Channel(a, { name: names?.[0] ?? `${base}a` }),
      new Channel(b, { name: names?.[1] ?? `${base}b` }),
    ];
  }

  /** A connected pair as bare handles, e.g. a client_end to keep and a server_end to send. */
  static pairHandles(): [Handle, Handle] {
    const [a, b] = native.socketPair() as [number, number];
    return [new Handle(a), new Handle(b)];
  }

  /**
   * Takes ownership of h's fd, which must be a SOCK_SEQPACKET socket. On failure (WRONG_TYPE for
   * another kind of fd, BAD_HANDLE for an invalid handle) the handle is closed all the same.
   */
  static fromHandle(h: Handle, opts: ChannelOptions = {}): Channel {
    if (!(h instanceof Handle) || !h.valid) throw new ChannelError(ZX.BAD_HANDLE, 'fromHandle: handle is closed or was moved');
    const fd = h.take();
    try {
      return new Channel(fd, opts);
    } catch (e) {
      closeFdQuietly(fd);
      const err = e as NodeJS.ErrnoException;
      const status = err.code === 'EWRONGTYPE' || err.code === 'ENOTSOCK' ? ZX.WRONG_TYPE : ZX.BAD_HANDLE;
      throw new ChannelError(status, `fromHandle: fd ${fd} cannot be a channel: ${err.message}`);
    }
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Bytes waiting in the write queue for the peer to read (0 when the socket keeps up). */
  get queuedBytes(): number {
    return this.isClosed ? 0 : this.nativeChannel.queuedBytes();
  }

  /** Begins delivering 'message' and 'close' events; attach listeners first. Idempotent. */
  start(): void {
    if (this.isClosed) return;
    this.nativeChannel.start();
  }

  /**
   * Sends one message and moves the handles: after the call they are invalid, whatever happened.
   * Throws ChannelError: OUT_OF_RANGE (over 65536 bytes or 64 handles), BAD_HANDLE (a closed or
   * repeated handle, or this channel is closed), PEER_CLOSED, NO_RESOURCES (the write queue overflowed
   * its cap in bytes or in handles: the channel is closed).
   */
  send(bytes: Uint8Array, handles: Handle[]): void {
    const problem = this.checkSend(bytes, handles);
    if (problem !== null) {
      for (const h of handles) if (h instanceof Handle) h.close();
      throw problem;
    }
    if (this.tap !== undefined) this.tap.message('out', bytes, handles.map((h) => h.fd));
    const fds = handles.length === 0 ? undefined : handles.map((h) => h.take());
    const result = this.nativeChannel.send(bytes, fds);
    if (result >= 0 && result !== SEND_QUEUE_OVERFLOW) return;
    if (result === SEND_QUEUE_OVERFLOW) {
      const queued = this.nativeChannel.queuedBytes();
      logger.error(`channel ${this.name}: closing, the peer does not read: ${queued} bytes already queued, a cap (bytes or handles) reached`, {
        channel: this.name,
      });
      this.closeNow();
      throw new ChannelError(ZX.NO_RESOURCES, `channel ${this.name}: write queue over its cap (${queued} bytes queued)`);
    }
    if (result === ZX.PEER_CLOSED) throw new ChannelError(result, `channel ${this.name}: peer closed`);
    const errno = this.nativeChannel.lastErrno();
    if (result === ZX.INTERNAL) {
      logger.error(`channel ${this.name}: sendmsg failed with errno ${errno}`, { channel: this.name });
    }
    throw new ChannelError(result, `channel ${this.name}: send failed (errno ${errno})`);
  }

  /**
   * Closes the channel (the peer sees PEER_CLOSED once it has read what was sent) and emits 'close'
   * on the next tick. Idempotent. Messages still in the write queue are sent first: the socket stays
   * open, writing only, until they are, the peer goes away, or 10 s pass; meanwhile the peer's sends
   * fail with PEER_CLOSED. That wait does not keep the process alive.
   */
  close(): void {
    this.closeWith(false);
  }

  /** close(), dropping whatever is still queued (the peer was judged not to read). */
  private closeNow(): void {
    this.closeWith(true);
  }

  private closeWith(dropQueued: boolean): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.forgetInode();
    this.nativeChannel.close(dropQueued);
    logger.debug(`channel ${this.name}: closed`, { channel: this.name });
    process.nextTick(() => this.emit('close'));
  }

  /**
   * Moves the socket out as a Handle (to send this channel in a message). The channel is closed
   * afterwards without a 'close' event. BAD_STATE while messages still wait in the write queue.
   */
  toHandle(): Handle {
    if (this.isClosed) throw new ChannelError(ZX.BAD_HANDLE, `channel ${this.name} is closed`);
    const fd = this.nativeChannel.release();
    if (fd < 0) throw new ChannelError(ZX.BAD_STATE, `channel ${this.name}: messages still queued, cannot move it`);
    this.isClosed = true;
    this.forgetInode();
    return new Handle(fd);
  }

  /** Lets the process exit while this channel is open (like net.Socket.unref). */
  unref(): this {
    if (!this.isClosed) this.nativeChannel.unref();
    this.refd = false;
    return this;
  }

  ref(): this {
    if (!this.isClosed) this.nativeChannel.ref();
    this.refd = true;
    return this;
  }

  /** Whether this channel keeps the process alive (ref(), the default) or not (unref()). */
  get holdsProcess(): boolean {
    return this.refd;
  }

  private refd = true;

  private checkSend(bytes: Uint8Array, handles: Handle[]): ChannelError | null {
    if (this.isClosed) {
      return this.whyClosed === ZX.PEER_CLOSED
        ? new ChannelError(ZX.PEER_CLOSED, `channel ${this.name}: peer closed`)
        : new ChannelError(ZX.BAD_HANDLE, `channel ${this.name} is closed`);
    }
    if (!(bytes instanceof Uint8Array)) return new ChannelError(ZX.INVALID_ARGS, 'send: bytes must be a Uint8Array');
    if (bytes.byteLength > MAX_MESSAGE_BYTES) {
      return new ChannelError(ZX.OUT_OF_RANGE, `channel ${this.name}: message of ${bytes.byteLength} bytes, limit ${MAX_MESSAGE_BYTES}`);
    }
    if (handles.length > MAX_MESSAGE_HANDLES) {
      return new ChannelError(ZX.OUT_OF_RANGE, `channel ${this.name}: message with ${handles.length} handles, limit ${MAX_MESSAGE_HANDLES}`);
    }
    // At most 64 handles: a scan of the ones before is cheaper than building a Set per message.
    for (let i = 0; i < handles.length; i++) {
      const h = handles[i];
      if (!(h instanceof Handle) || !h.valid || handles.indexOf(h) < i) {
        return new ChannelError(ZX.BAD_HANDLE, `channel ${this.name}: handle ${i} is closed, moved or repeated`);
      }
    }
    return null;
  }

  private onNativeEvent(kind: number, a: unknown, b: unknown): void {
    if (kind === EVENT_MESSAGES) {
      this.deliver(a as Array<Buffer | number[] | undefined>);
    } else if (kind === EVENT_CLOSED) {
      if (this.isClosed) return;
      this.isClosed = true;
      this.forgetInode();
      this.whyClosed = a as number;
      if (this.whyClosed === ZX.PEER_CLOSED) {
        logger.debug(`channel ${this.name}: peer closed`, { channel: this.name });
      } else {
        logger.warn(`channel ${this.name}: closed: ${String(b)}`, { channel: this.name, status: statusName(this.whyClosed) });
      }
      this.emit('close');
    } else if (kind === EVENT_WARNING) {
      logger.warn(`channel ${this.name}: ${String(a)}`, { channel: this.name });
    }
  }

  private deliver(batch: Array<Buffer | number[] | undefined>): void {
    // Told to listeners: a server answering a lone request at once saves a round trip's latency,
    // while one answering each of many queued requests at once would wake its peer once per reply.
    const batched = batch.length > 2;
    for (let i = 0; i < batch.length; i += 2) {
      const bytes = batch[i] as Buffer;
      const fds = batch[i + 1] as number[] | undefined;
      // A listener may close the channel mid-batch: what follows is dropped, handles closed.
      if (this.isClosed || this.listenerCount('message') === 0) {
        if (fds) for (const fd of fds) closeFdQuietly(fd);
        if (!this.isClosed) this.noteDropped(fds?.length ?? 0);
        continue;
      }
      if (this.tap !== undefined) this.tap.message('in', bytes, fds ?? []);
      this.emit('message', bytes, fds ? fds.map((fd) => new Handle(fd)) : [], batched);
    }
  }

  private noteDropped(handleCount: number): void {
    this.droppedWithoutListener += 1;
    if (this.droppedWithoutListener === 1) {
      logger.warn(`channel ${this.name}: message arrived with no 'message' listener; dropped, ${handleCount} handle(s) closed`, {
        channel: this.name,
      });
    }
  }
}

function closeFdQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // Already closed: nothing leaks.
  }
}
