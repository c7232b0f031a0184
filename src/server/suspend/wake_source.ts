// A wake source: a handle and the zx signals on it that wake a suspended container
// (AddWakeSource, and the counter of every proxied wake channel). Each Linux stand-in has its own
// way to show a signal; this table is the whole mapping (the README repeats it):
//
//   fd (zx type)                 signals honoured                           seen as
//   eventfd (EVENT, COUNTER)     EVENT_SIGNALED 1<<3, COUNTER_POSITIVE 1<<5 POLLIN (the count is > 0)
//   SEQPACKET socket (CHANNEL)   READABLE 1<<0, PEER_CLOSED 1<<2            POLLIN; POLLHUP/POLLRDHUP
//   STREAM socket (SOCKET)       READABLE 1<<0, PEER_CLOSED 1<<2            POLLIN; POLLHUP/POLLRDHUP
//   DGRAM socket (EVENTPAIR)     SIGNALED 1<<3, USER_0..7, PEER_CLOSED      the peer's signal changes
//                                                                           (src/transport/eventpair.ts)
// Nothing is ever read from a channel, socket or eventfd wake source: they are polled only. As
// poll(2) says, a channel or socket whose peer has closed is readable (it reads end-of-file).
// A handle of another kind, or signals none of which its kind can show, is refused.
import * as fs from 'fs';
import { native } from '../../native';
import { Handle } from '../../transport/handle';
import { handleInfo } from '../../transport/handle_info';
import {
  EventPair,
  EVENTPAIR_PEER_SIGNALS,
  NativeFdWatcher,
  POLL_DISCONNECT,
  POLL_READABLE,
  ZX_EVENTPAIR_PEER_CLOSED,
  watchFd,
} from '../../transport/eventpair';

export const ZX_READABLE = 1 << 0;
export const ZX_PEER_CLOSED = 1 << 2;
export const ZX_EVENT_SIGNALED = 1 << 3;
export const ZX_COUNTER_POSITIVE = 1 << 5;

// poll(2) revents bits.
const POLLIN = 0x1;
const POLLHUP = 0x10;
const POLLRDHUP = 0x2000;

export class WakeSourceError extends Error {}

type Kind = 'eventfd' | 'channel' | 'socket' | 'eventpair';

/**
 * The identity of the object behind an fd, as a koid is on Zircon: the same for every fd of one
 * socket or eventfd (a duplicate, or the same fd sent again), different between objects.
 * Sockets have an inode each; eventfds share one anonymous inode, and fdinfo's eventfd-id tells
 * them apart.
 */
export function objectKey(h: Handle): string {
  const st = fs.fstatSync(h.fd, { bigint: true });
  const info = fs.readFileSync(`/proc/self/fdinfo/${h.fd}`, 'latin1');
  const id = /^eventfd-id:\s*(\d+)/m.exec(info);
  if (id !== null) return `eventfd:${id[1]}`;
  return `${st.dev}:${st.ino}`;
}

export class WakeSource {
  readonly key: string;
  private readonly kind: Kind;
  private readonly pollMask: number;
  private readonly pair: EventPair | null;
  private handle: Handle | null;
  private watcher: NativeFdWatcher | null = null;
  private onRaised: (() => void) | null = null;
  private readonly onPairSignals = () => this.checkRaised();

  /** Takes ownership of h; closes it and throws WakeSourceError when it cannot be a wake source. */
  constructor(h: Handle, readonly name: string, readonly signals: number) {
    let kind: Kind;
    let key: string;
    try {
      const fdKind = handleInfo(h).kind;
      if (fdKind === 'eventfd') kind = 'eventfd';
      else if (fdKind === 'socket-seqpacket') kind = 'channel';
      else if (fdKind === 'socket-stream') kind = 'socket';
      else if (fdKind === 'socket-dgram') kind = 'eventpair';
      else throw new WakeSourceError(`a ${fdKind} cannot be a wake source (eventfd, SEQPACKET, STREAM or DGRAM socket)`);
      key = objectKey(h);
    } catch (e) {
      h.close();
      throw e instanceof WakeSourceError ? e : new WakeSourceError(`the handle cannot be inspected: ${(e as Error).message}`);
    }
    const s = signals >>> 0;
    let mask = 0;
    if (kind === 'eventfd') {
      if ((s & (ZX_EVENT_SIGNALED | ZX_COUNTER_POSITIVE)) !== 0) mask = POLLIN;
    } else if (kind === 'channel' || kind === 'socket') {
      if ((s & ZX_READABLE) !== 0) mask |= POLLIN;
      if ((s & ZX_PEER_CLOSED) !== 0) mask |= POLLHUP | POLLRDHUP;
    } else if ((s & (EVENTPAIR_PEER_SIGNALS | ZX_EVENTPAIR_PEER_CLOSED)) !== 0) {
      mask = 1; // any: the eventpair's own state is checked
    }
    if (mask === 0) {
      h.close();
      throw new WakeSourceError(`signals 0x${s.toString(16)} include none that a ${kind} can raise here`);
    }
    this.kind = kind;
    this.key = key;
    this.pollMask = mask;
    this.handle = h;
    this.pair = kind === 'eventpair' ? EventPair.fromHandle(h, `wake source ${name}`).start() : null;
    if (this.pair !== null) this.handle = null; // the EventPair owns the fd now
  }

  get kindName(): string {
    return this.kind;
  }

  /** Whether any of its signals is raised now. */
  raised(): boolean {
    if (this.pair !== null) {
      if ((this.signals & ZX_EVENTPAIR_PEER_CLOSED) !== 0 && !this.pair.peerClosed) this.pair.probePeer();
      return (this.pair.signals & this.signals) !== 0;
    }
    if (this.handle === null || !this.handle.valid) return false;
    const revents = native.pollNow(this.handle.fd, this.pollMask) as number;
    return revents > 0 && (revents & this.pollMask) !== 0;
  }

  /** Calls onRaised (again and again, while raised) until disarm(); at once if raised now. */
  arm(onRaised: () => void): void {
    this.onRaised = onRaised;
    if (this.pair !== null) {
      this.pair.on('signals', this.onPairSignals);
      setImmediate(() => this.checkRaised());
      return;
    }
    if (this.handle === null) return;
    if (this.watcher === null) {
      this.watcher = watchFd(this.handle.fd, () => this.checkRaised());
    }
    // Level-triggered: a raised source calls back at once.
    this.watcher.start(((this.pollMask & POLLIN) !== 0 ? POLL_READABLE : 0) | ((this.pollMask & (POLLHUP | POLLRDHUP)) !== 0 ? POLL_DISCONNECT | POLL_READABLE : 0));
  }

  disarm(): void {
    this.onRaised = null;
    this.pair?.off('signals', this.onPairSignals);
    this.watcher?.stop();
  }

  close(): void {
    this.disarm();
    this.watcher?.close();
    this.watcher = null;
    this.pair?.close();
    this.handle?.close();
    this.handle = null;
  }

  private checkRaised(): void {
    if (this.onRaised !== null && this.raised()) this.onRaised();
  }
}
