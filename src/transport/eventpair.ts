// An event pair: the Linux stand-in for a Zircon eventpair, one end of an AF_UNIX SOCK_DGRAM
// socket pair. This module is the signal encoding both sides use (the server and any runner
// written in TypeScript); the README's "Event pairs on Linux" section says the same in words,
// for a runner in another language.
//
// The encoding. Every datagram is one signal change of the *receiving* end, exactly 8 bytes:
//     u32 clear_mask (little-endian) · u32 set_mask (little-endian)
// The receiver's signals become (signals & ~clear_mask) | set_mask, applied in the order the
// datagrams arrive, from 0 when the pair is made: zx_object_signal_peer(clear, set) is "send one
// datagram". Only the bits an eventpair peer may change are allowed: EVENTPAIR_SIGNALED (1<<3) and
// USER_0..USER_7 (1<<24 .. 1<<31); a sender never sends others and a receiver ignores (and counts)
// a datagram that is not 8 bytes or carries other bits. clear = set = 0 is a no-op, used to ask
// the kernel whether the peer still exists.
//
// PEER_CLOSED (1<<2). A datagram socket pair tells the survivor nothing when one end closes
// (poll shows no hang-up, measured on 6.18); the next send fails with ECONNREFUSED (then
// ENOTCONN). So a sender learns PEER_CLOSED from its send, and a receiver that must know sends
// the no-op. On Zircon PEER_CLOSED is asserted at once; here it is asserted when discovered.
//
// Back-pressure. The kernel queues at most net.unix.max_dgram_qlen datagrams (10 by default) for
// a reader; past that a send would block. Signal changes compose, (c1,s1) then (c2,s2) being
// (c1|c2, (s1 & ~c2) | s2), so a sender keeps at most one pending change per end, folded, and
// sends it when the socket is writable again: a peer that never reads costs one 8-byte slot.
import { EventEmitter } from 'events';
import { native } from '../native';
import { logger } from '../log';
import { Handle } from './handle';
import { createEventPair } from './stand_ins';
import { ZX } from '../zx_status';

export const EVENTPAIR_DATAGRAM_BYTES = 8;

/** zx_signals_t bits of an eventpair (zircon/types.h). */
export const ZX_EVENTPAIR_PEER_CLOSED = 1 << 2;
export const ZX_EVENTPAIR_SIGNALED = 1 << 3;
export const ZX_USER_SIGNAL_0 = 1 << 24;
export const ZX_USER_SIGNAL_1 = 1 << 25;
export const ZX_USER_SIGNAL_ALL = 0xff000000;
/** The bits a peer may set or clear (zx_object_signal_peer on an eventpair). */
export const EVENTPAIR_PEER_SIGNALS = (ZX_EVENTPAIR_SIGNALED | ZX_USER_SIGNAL_ALL) >>> 0;

export interface SignalChange {
  clear: number;
  set: number;
}

/** The 8 bytes of one signal change. Throws RangeError for bits a peer may not change. */
export function encodeSignalChange(clear: number, set: number): Buffer {
  checkMask(clear, 'clear');
  checkMask(set, 'set');
  const b = Buffer.alloc(EVENTPAIR_DATAGRAM_BYTES);
  b.writeUInt32LE(clear >>> 0, 0);
  b.writeUInt32LE(set >>> 0, 4);
  return b;
}

/** One datagram's change, or null when it is not a valid one (wrong length, other bits). */
export function decodeSignalChange(datagram: Uint8Array): SignalChange | null {
  if (datagram.byteLength !== EVENTPAIR_DATAGRAM_BYTES) return null;
  const view = new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  const clear = view.getUint32(0, true);
  const set = view.getUint32(4, true);
  if (((clear | set) & ~EVENTPAIR_PEER_SIGNALS) !== 0) return null;
  return { clear, set };
}

/** Signals after one change. */
export function applySignalChange(signals: number, change: SignalChange): number {
  return ((signals & ~change.clear) | change.set) >>> 0;
}

/** One change with the effect of `first` then `second`. */
export function composeSignalChanges(first: SignalChange, second: SignalChange): SignalChange {
  return { clear: (first.clear | second.clear) >>> 0, set: ((first.set & ~second.clear) | second.set) >>> 0 };
}

function checkMask(mask: number, what: string): void {
  if (!Number.isInteger(mask) || mask < 0 || mask > 0xffffffff || ((mask & ~EVENTPAIR_PEER_SIGNALS) >>> 0) !== 0) {
    throw new RangeError(`${what} mask 0x${(mask >>> 0).toString(16)}: an eventpair peer may change only SIGNALED (1<<3) and USER_0..7 (1<<24..1<<31)`);
  }
}

// libuv poll bits (native/fd_watch.cc).
export const POLL_READABLE = 1;
export const POLL_WRITABLE = 2;
export const POLL_DISCONNECT = 4;
export const POLL_PRIORITIZED = 8;

export interface NativeFdWatcher {
  start(events: number): void;
  stop(): void;
  close(): void;
  ref(): void;
  unref(): void;
}

/** A libuv poll of an fd owned elsewhere; close it before the fd. */
export function watchFd(fd: number, onEvent: (status: number, events: number) => void): NativeFdWatcher {
  const watcher = new native.FdWatcher(fd, onEvent) as NativeFdWatcher;
  // The addon holds onEvent weakly except while the watcher is started (a strong reference from
  // the native side would keep an owner that forgets close() alive for ever). Nothing else may
  // hold the closure, so between a stop() and the next start() a GC could collect it, and that
  // start() or a later stop() then threw N-API's "Invalid argument" / "Unknown failure" (seen in
  // SuspendContainer). The watcher object itself keeps it for as long as the watcher lives.
  Object.defineProperty(watcher, 'onEvent', { value: onEvent, enumerable: false });
  return watcher;
}

const ECONNREFUSED = 111;
const ENOTCONN = 107;
const ECONNRESET = 104;
const EPIPE = 32;
const EAGAIN = 11;
const PEER_GONE = new Set([ECONNREFUSED, ENOTCONN, ECONNRESET, EPIPE]);

/**
 * One end of an event pair. `signals` is what the peer has asserted on this end (folded from the
 * datagrams read so far, plus PEER_CLOSED once a send found the peer gone). Reading starts with
 * start() (or waitFor()); a 'signals' event (signals: number) follows every change, one per
 * datagram. Events: 'signals', 'peer-closed' (once), 'close'.
 */
export class EventPair extends EventEmitter {
  readonly name: string;
  private handle: Handle;
  private watcher: NativeFdWatcher | null = null;
  private watching = 0;
  private state = 0;
  private pending: SignalChange | null = null;
  private peerGone = false;
  private malformed = 0;
  private refd = true;

  private constructor(handle: Handle, name: string) {
    super();
    this.handle = handle;
    this.name = name;
  }

  /** A connected pair. */
  static create(names: [string, string] = ['eventpair.a', 'eventpair.b']): [EventPair, EventPair] {
    const [a, b] = EventPair.createHandles();
    return [new EventPair(a, names[0]), new EventPair(b, names[1])];
  }

  /** A connected pair as bare handles, e.g. one to keep and one to send. */
  static createHandles(): [Handle, Handle] {
    return createEventPair();
  }

  /** Takes ownership of h (a SOCK_DGRAM socket: the codec's EVENTPAIR check says so). */
  static fromHandle(h: Handle, name = 'eventpair'): EventPair {
    return new EventPair(h, name);
  }

  get closed(): boolean {
    return !this.handle.valid;
  }

  get fd(): number {
    return this.handle.fd;
  }

  /** What the peer has asserted on this end, as far as read; PEER_CLOSED once known. */
  get signals(): number {
    return (this.state | (this.peerGone ? ZX_EVENTPAIR_PEER_CLOSED : 0)) >>> 0;
  }

  get peerClosed(): boolean {
    return this.peerGone;
  }

  /** Datagrams that were not valid signal changes (ignored). */
  get malformedCount(): number {
    return this.malformed;
  }

  /** Starts reading the peer's signal changes as they arrive. Idempotent. */
  start(): this {
    if (this.closed) return this;
    this.readAvailable();
    this.updateWatch();
    return this;
  }

  /**
   * zx_object_signal_peer: asks the peer's end to clear then set bits. Returns ZX.OK (sent or,
   * when the peer's queue is full, folded into the one pending change), ZX.PEER_CLOSED, or
   * ZX.BAD_HANDLE for a closed end. Throws RangeError for bits a peer may not change.
   */
  signalPeer(clear: number, set: number): number {
    const change = { clear: clear >>> 0, set: set >>> 0 };
    const bytes = encodeSignalChange(change.clear, change.set);
    if (this.closed) return ZX.BAD_HANDLE;
    if (this.peerGone) return ZX.PEER_CLOSED;
    if (this.pending !== null) {
      this.pending = composeSignalChanges(this.pending, change);
      return ZX.OK;
    }
    return this.sendNow(bytes, change);
  }

  /**
   * Whether the peer still exists, asked of the kernel with a no-op change (see the encoding).
   * false for a closed end.
   */
  probePeer(): boolean {
    if (this.closed || this.peerGone) return false;
    if (this.pending !== null) return this.flushPending();
    return this.sendNow(encodeSignalChange(0, 0), { clear: 0, set: 0 }) === ZX.OK;
  }

  /** Resolves with the signals once any bit of `mask` is asserted (reading starts if needed). */
  waitFor(mask: number, timeoutMs?: number): Promise<number> {
    this.start();
    if ((this.signals & mask) !== 0) return Promise.resolve(this.signals);
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const check = (s: number) => {
        if ((s & mask) === 0) return;
        done();
        resolve(s);
      };
      const onClose = () => {
        done();
        reject(new Error(`eventpair ${this.name} closed while waiting for 0x${(mask >>> 0).toString(16)}`));
      };
      const done = () => {
        if (timer) clearTimeout(timer);
        this.off('signals', check);
        this.off('close', onClose);
      };
      this.on('signals', check);
      this.once('close', onClose);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          done();
          reject(new Error(`eventpair ${this.name}: timed out after ${timeoutMs} ms waiting for 0x${(mask >>> 0).toString(16)} (signals 0x${this.signals.toString(16)})`));
        }, timeoutMs);
      }
    });
  }

  /** Moves the fd out (to send this end in a message); this object is closed afterwards. */
  toHandle(): Handle {
    this.stopWatch();
    const h = new Handle(this.handle.take());
    this.emit('close');
    return h;
  }

  unref(): this {
    this.refd = false;
    this.watcher?.unref();
    return this;
  }

  close(): void {
    if (this.closed) return;
    this.stopWatch();
    this.handle.close();
    this.emit('close');
  }

  private sendNow(bytes: Buffer, change: SignalChange): number {
    const r = native.sendDatagram(this.handle.fd, bytes) as number;
    if (r === 0) return ZX.OK;
    const errno = -r;
    if (errno === EAGAIN) {
      this.pending = change;
      this.updateWatch();
      return ZX.OK;
    }
    if (PEER_GONE.has(errno)) {
      this.notePeerGone();
      return ZX.PEER_CLOSED;
    }
    logger.warn(`eventpair ${this.name}: send failed with errno ${errno}`);
    return ZX.INTERNAL;
  }

  /** Sends the pending change if the socket takes it; false when the peer is gone. */
  private flushPending(): boolean {
    if (this.pending === null) return !this.peerGone;
    const change = this.pending;
    const r = native.sendDatagram(this.handle.fd, encodeSignalChange(change.clear, change.set)) as number;
    if (r === 0) {
      this.pending = null;
      this.updateWatch();
      return true;
    }
    if (-r === EAGAIN) return true;
    if (PEER_GONE.has(-r)) this.notePeerGone();
    return false;
  }

  private notePeerGone(): void {
    if (this.peerGone) return;
    this.peerGone = true;
    this.pending = null;
    this.updateWatch();
    this.emit('signals', this.signals);
    this.emit('peer-closed');
  }

  private readAvailable(): void {
    if (this.closed) return;
    for (;;) {
      const got = native.recvDatagrams(this.handle.fd, 64) as Buffer[] | number;
      if (typeof got === 'number') {
        if (PEER_GONE.has(-got)) this.notePeerGone();
        else logger.warn(`eventpair ${this.name}: recv failed with errno ${-got}`);
        return;
      }
      if (got.length === 0) return;
      for (const d of got) {
        const change = decodeSignalChange(d);
        if (change === null) {
          this.malformed++;
          if (this.malformed === 1) logger.warn(`eventpair ${this.name}: ignored a datagram that is not a signal change (${d.byteLength} bytes)`);
          continue;
        }
        // One event per change, so a listener sees ASLEEP then AWAKE even when both were queued.
        const before = this.state;
        this.state = applySignalChange(this.state, change);
        if (this.state !== before) this.emit('signals', this.signals);
        if (this.closed) return;
      }
      if (got.length < 64) return;
    }
  }

  private updateWatch(): void {
    if (this.closed) return;
    const events = POLL_READABLE | (this.pending !== null && !this.peerGone ? POLL_WRITABLE : 0);
    if (events === this.watching) return;
    if (this.watcher === null) {
      this.watcher = watchFd(this.handle.fd, (status, ev) => this.onPoll(status, ev));
      if (!this.refd) this.watcher.unref();
    }
    this.watcher.start(events);
    this.watching = events;
  }

  private stopWatch(): void {
    if (this.watcher !== null) {
      this.watcher.close();
      this.watcher = null;
    }
    this.watching = 0;
  }

  private onPoll(status: number, events: number): void {
    if (this.closed) return;
    if (status < 0) {
      // The socket reported an error; libuv stopped watching. Read what is left and look again.
      this.watching = 0;
      this.readAvailable();
      if (!this.probePeer()) this.notePeerGone();
      if (!this.closed) this.updateWatch();
      return;
    }
    if ((events & POLL_READABLE) !== 0) this.readAvailable();
    if ((events & POLL_WRITABLE) !== 0) this.flushPending();
  }
}
