// Regression tests for transport bugs found in review. Each failed before its fix.
import { Channel, ChannelError } from '../../src/transport/channel';
import { ZX } from '../../src/zx_status';
import { openFdCount } from './helpers';
import { captureLogs } from '../support/log_capture';

jest.setTimeout(10000);

test('a peer that closes with our message unread (ECONNRESET) still delivers every message it sent, over several batches', async () => {
  const [a, b] = Channel.pair();
  // Our message stays unread in b's queue: closing b then sets ECONNRESET on a (POLLERR), the
  // path that read one batch (256 messages at most) and closed with the rest unread.
  a.send(Buffer.from('unread'), []);
  const sent = 270; // more than one batch, fewer than fill the socket (about 278 here)
  for (let i = 0; i < sent; i++) {
    const m = Buffer.alloc(16);
    m.writeUInt32LE(i, 0);
    b.send(m, []);
  }
  expect(b.queuedBytes).toBe(0); // all in the kernel: nothing is lost on b's side
  b.close();
  const got: number[] = [];
  a.on('message', (bytes: Buffer) => got.push(bytes.readUInt32LE(0)));
  const closed = new Promise<void>((resolve) => a.once('close', () => resolve()));
  a.start();
  await closed;
  expect(got.length).toBe(sent);
  expect(got).toEqual(Array.from({ length: sent }, (_, i) => i));
});

test('a send made while hearing the last messages before the peer closed fails with PEER_CLOSED, not BAD_STATE', async () => {
  const [a, b] = Channel.pair();
  b.send(Buffer.from('last words'), []);
  b.close();
  let sendError: unknown = null;
  a.on('message', () => {
    try {
      a.send(Buffer.from('reply'), []);
    } catch (e) {
      sendError = e;
    }
  });
  const closed = new Promise<void>((resolve) => a.once('close', () => resolve()));
  a.start();
  await closed;
  expect(sendError).toBeInstanceOf(ChannelError);
  expect((sendError as ChannelError).status).toBe(ZX.PEER_CLOSED);
});

test('the write queue is capped in handles as well as bytes: past the cap, NO_RESOURCES and the channel closes', async () => {
  const { createMemfd } = await import('../../src/transport/memfd');
  const [a0, b] = Channel.pair();
  const logs = captureLogs();
  const a = Channel.fromHandle(a0.toHandle(), { name: 'handle-capped', maxQueuedHandles: 4 });
  while (a.queuedBytes === 0) a.send(Buffer.alloc(16), []); // b never reads: the socket is full now
  for (let i = 0; i < 3; i++) a.send(Buffer.alloc(16), [createMemfd(`q${i}`)]); // queued: 3 handles
  a.send(Buffer.alloc(16), [createMemfd('q3')]); // the 4th queued handle: at the cap, still fine
  const fifth = createMemfd('q4');
  let error: unknown = null;
  try {
    a.send(Buffer.alloc(16), [fifth]);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(ChannelError);
  expect((error as ChannelError).status).toBe(ZX.NO_RESOURCES);
  expect(fifth.valid).toBe(false);
  expect(a.closed).toBe(true);
  b.close();
  logs.restore();
  expect(logs.lines.filter((l) => / error: /.test(l))).toEqual([expect.stringMatching(/error: channel handle-capped: closing, the peer does not read/)]);
});

test('a peer that closes while we only write (not started yet) loses us none of its messages, and no close comes before start()', async () => {
  const [a, b] = Channel.pair();
  while (a.queuedBytes === 0) a.send(Buffer.alloc(16), []); // b never reads: a's write queue is in use
  for (let i = 0; i < 3; i++) b.send(Buffer.from([i]), []);
  let closedEarly = false;
  a.once('close', () => (closedEarly = true));
  b.close(); // with a's messages unread: ECONNRESET (POLLERR) on a, whose poll watches only writes
  await new Promise((r) => setTimeout(r, 50));
  expect(closedEarly).toBe(false);
  expect(a.queuedBytes).toBe(0); // nobody will read what we queued: dropped
  const got: number[] = [];
  a.on('message', (bytes: Buffer) => got.push(bytes[0]));
  const closed = new Promise<void>((resolve) => a.once('close', () => resolve()));
  a.start();
  await closed;
  expect(got).toEqual([0, 1, 2]);
});

test('close() with messages still queued for a slow reader sends them first (an epitaph is not lost), and the peer can no longer write to us', async () => {
  const [a, b] = Channel.pair();
  let n = 0;
  const message = (i: number) => {
    const m = Buffer.alloc(512);
    m.writeUInt32LE(i, 0);
    return m;
  };
  while (a.queuedBytes === 0) a.send(message(n++), []); // b does not read yet: the socket is full
  for (let i = 0; i < 100; i++) a.send(message(n++), []); // these wait in a's write queue
  const last = Buffer.from('epitaph');
  a.send(last, []);
  a.close(); // before: the queue (and the epitaph) were dropped here
  await new Promise((r) => setTimeout(r, 20));
  // As after a Zircon handle close: the peer can read what was written, but not write back.
  expect(() => b.send(Buffer.from('too late'), [])).toThrow(expect.objectContaining({ status: ZX.PEER_CLOSED }));
  const got: Buffer[] = [];
  b.on('message', (bytes: Buffer) => got.push(bytes));
  const closed = new Promise<void>((resolve) => b.once('close', () => resolve()));
  b.start();
  await closed;
  expect(got.length).toBe(n + 1);
  got.slice(0, n).forEach((m, i) => expect(m.readUInt32LE(0)).toBe(i));
  expect(got[n].equals(last)).toBe(true);
});

test('close() with messages queued to a peer that never reads: they are dropped when the peer goes, and nothing is left open', async () => {
  const [a, b] = Channel.pair();
  while (a.queuedBytes === 0) a.send(Buffer.alloc(256), []);
  const open = openFdCount();
  a.close(); // lingers, writing
  await new Promise((r) => setTimeout(r, 20));
  expect(openFdCount()).toBe(open); // a's socket is still open, sending
  b.close(); // the reader goes away unread: a's socket gives up at once
  for (let i = 0; i < 100 && openFdCount() !== open - 2; i++) await new Promise((r) => setTimeout(r, 10));
  expect(openFdCount()).toBe(open - 2);
});
