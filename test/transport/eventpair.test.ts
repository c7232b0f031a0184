// The eventpair signal encoding (src/transport/eventpair.ts) over real SOCK_DGRAM socket pairs:
// the 8-byte datagram, the fold of changes in order, the one pending change a sender keeps when
// the reader does not read (net.unix.max_dgram_qlen), PEER_CLOSED as a send discovers it, and
// datagrams that are not signal changes.
import * as fs from 'fs';
import { native } from '../../src/native';
import {
  EVENTPAIR_PEER_SIGNALS,
  EventPair,
  ZX_EVENTPAIR_PEER_CLOSED,
  ZX_EVENTPAIR_SIGNALED,
  ZX_USER_SIGNAL_0,
  ZX_USER_SIGNAL_1,
  applySignalChange,
  composeSignalChanges,
  decodeSignalChange,
  encodeSignalChange,
} from '../../src/transport/eventpair';
import { ZX } from '../../src/zx_status';
import { captureLogs } from '../support/log_capture';

const pairs: EventPair[] = [];
function pair(): [EventPair, EventPair] {
  const p = EventPair.create();
  pairs.push(...p);
  return p;
}
afterEach(() => {
  for (const p of pairs.splice(0)) p.close();
});

function changes(p: EventPair): number[] {
  const seen: number[] = [];
  p.on('signals', (s: number) => seen.push(s));
  p.start();
  return seen;
}

async function settle(): Promise<void> {
  await new Promise((r) => setTimeout(r, 20));
}

describe('the encoding', () => {
  test('one change is 8 bytes: clear then set, little-endian', () => {
    expect([...encodeSignalChange(ZX_USER_SIGNAL_0, ZX_USER_SIGNAL_1)]).toEqual([0, 0, 0, 1, 0, 0, 0, 2]);
    expect([...encodeSignalChange(0, ZX_EVENTPAIR_SIGNALED)]).toEqual([0, 0, 0, 0, 8, 0, 0, 0]);
    expect(decodeSignalChange(Buffer.from([0, 0, 0, 1, 0, 0, 0, 2]))).toEqual({ clear: ZX_USER_SIGNAL_0, set: ZX_USER_SIGNAL_1 });
  });

  test('only SIGNALED and USER_0..7 may be changed; other lengths and bits are not changes', () => {
    expect(() => encodeSignalChange(0, ZX_EVENTPAIR_PEER_CLOSED)).toThrow(RangeError);
    expect(() => encodeSignalChange(1, 0)).toThrow(RangeError);
    expect(decodeSignalChange(Buffer.from([0, 0, 0, 0, 4, 0, 0, 0]))).toBeNull(); // PEER_CLOSED
    expect(decodeSignalChange(Buffer.alloc(7))).toBeNull();
    expect(decodeSignalChange(Buffer.alloc(9))).toBeNull();
    expect(EVENTPAIR_PEER_SIGNALS).toBe(0xff000008);
  });

  test('changes fold in order, and two compose into one with the same effect', () => {
    const a = { clear: ZX_USER_SIGNAL_0, set: ZX_USER_SIGNAL_1 };
    const b = { clear: ZX_USER_SIGNAL_1, set: ZX_USER_SIGNAL_0 | ZX_EVENTPAIR_SIGNALED };
    for (const start of [0, ZX_USER_SIGNAL_0, ZX_USER_SIGNAL_1, 0xff000008]) {
      expect(applySignalChange(start, composeSignalChanges(a, b))).toBe(applySignalChange(applySignalChange(start, a), b));
      expect(applySignalChange(start, composeSignalChanges(b, a))).toBe(applySignalChange(applySignalChange(start, b), a));
    }
  });
});

describe('EventPair over a socket pair', () => {
  test('signalPeer changes what the other end sees, one event per change, in order', async () => {
    const [a, b] = pair();
    const seen = changes(b);
    expect(a.signalPeer(0, ZX_USER_SIGNAL_0)).toBe(ZX.OK);
    expect(a.signalPeer(ZX_USER_SIGNAL_0, ZX_USER_SIGNAL_1)).toBe(ZX.OK);
    expect(a.signalPeer(ZX_USER_SIGNAL_1, ZX_USER_SIGNAL_0)).toBe(ZX.OK);
    await b.waitFor(ZX_USER_SIGNAL_0, 2000);
    await settle();
    expect(seen).toEqual([ZX_USER_SIGNAL_0, ZX_USER_SIGNAL_1, ZX_USER_SIGNAL_0]);
    expect(a.signals).toBe(0); // a peer's changes are the other end's
  });

  test('a reader that does not read: the sender keeps one folded change and sends it when it can', async () => {
    const [a, b] = pair();
    // Far more than net.unix.max_dgram_qlen (10 by default): no send fails, none blocks.
    for (let i = 0; i < 500; i++) expect(a.signalPeer(i % 2 === 0 ? ZX_USER_SIGNAL_1 : ZX_USER_SIGNAL_0, i % 2 === 0 ? ZX_USER_SIGNAL_0 : ZX_USER_SIGNAL_1)).toBe(ZX.OK);
    a.signalPeer(0, ZX_EVENTPAIR_SIGNALED);
    const final = ZX_USER_SIGNAL_1 | ZX_EVENTPAIR_SIGNALED; // i = 499 set USER_1
    await b.waitFor(ZX_EVENTPAIR_SIGNALED, 2000);
    await settle();
    expect(b.signals).toBe(final);
  });

  test('PEER_CLOSED: a send finds the peer gone; probePeer asks; a waiter for it is woken', async () => {
    const [a, b] = pair();
    expect(a.probePeer()).toBe(true);
    const waiting = a.waitFor(ZX_EVENTPAIR_PEER_CLOSED, 2000);
    b.close();
    expect(a.probePeer()).toBe(false);
    await expect(waiting).resolves.toBe(ZX_EVENTPAIR_PEER_CLOSED);
    expect(a.signalPeer(0, ZX_USER_SIGNAL_0)).toBe(ZX.PEER_CLOSED);
    expect(a.peerClosed).toBe(true);
  });

  test('datagrams that are not signal changes are ignored, counted and logged once', async () => {
    const [a, b] = pair();
    const logs = captureLogs();
    try {
      const seen = changes(b);
      native.sendDatagram(a.fd, Buffer.alloc(3));
      native.sendDatagram(a.fd, Buffer.from([0, 0, 0, 0, 4, 0, 0, 0])); // PEER_CLOSED may not be sent
      native.sendDatagram(a.fd, Buffer.alloc(100));
      a.signalPeer(0, ZX_USER_SIGNAL_1);
      await b.waitFor(ZX_USER_SIGNAL_1, 2000);
      expect(seen).toEqual([ZX_USER_SIGNAL_1]);
      expect(b.malformedCount).toBe(3);
      expect(logs.lines.filter((l) => l.includes('not a signal change'))).toHaveLength(1);
    } finally {
      logs.restore();
    }
  });

  test('an end moved out with toHandle() keeps working in its new owner', async () => {
    const [a, b] = pair();
    const moved = EventPair.fromHandle(b.toHandle());
    pairs.push(moved);
    a.signalPeer(0, ZX_USER_SIGNAL_0);
    await expect(moved.waitFor(ZX_USER_SIGNAL_0, 2000)).resolves.toBe(ZX_USER_SIGNAL_0);
    expect(b.closed).toBe(true);
    expect(fs.fstatSync(moved.fd).isSocket()).toBe(true);
  });
});
