// Makers of the Linux fds that stand for Zircon objects other than channels and VMOs (the table
// in the README, "Handles checked as declared"): what a client passes where a protocol declares
// `zx.Handle:EVENTPAIR`, `:SOCKET`, `:EVENT`, `:COUNTER` or `:PROCESS`. Channels are Channel.pairHandles(),
// VMOs createMemfd() or any open file.
import { native } from '../native';
import { Handle } from './handle';

const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;

function pairOf(type: number): [Handle, Handle] {
  const [a, b] = native.unixSocketPair(type) as [number, number];
  return [new Handle(a), new Handle(b)];
}

/** An eventpair's two ends: an AF_UNIX SOCK_DGRAM socketpair (close-on-exec, non-blocking). */
export function createEventPair(): [Handle, Handle] {
  return pairOf(SOCK_DGRAM);
}

/** A zx socket's two ends: an AF_UNIX SOCK_STREAM socketpair (close-on-exec, non-blocking). */
export function createSocketPair(): [Handle, Handle] {
  return pairOf(SOCK_STREAM);
}

/** A zx event or counter: an eventfd (close-on-exec, non-blocking) holding `initial`. */
export function createEventFd(initial = 0): Handle {
  return new Handle(native.eventFd(initial) as number);
}

/** A zx process: a pidfd of process `pid` (close-on-exec). Threads are pidfds too (PIDFD_THREAD). */
export function openProcess(pid: number): Handle {
  return new Handle(native.pidfdOpen(pid) as number);
}
