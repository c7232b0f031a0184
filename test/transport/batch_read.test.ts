// The channel reads queued datagrams several at a time (recvmmsg, 8 per call): what happens at
// the edges of such a batch. Real socketpairs, real memfds in SCM_RIGHTS.
import * as fs from 'fs';
import { Channel } from '../../src/transport/channel';
import { Handle } from '../../src/transport/handle';
import { createMemfd } from '../../src/transport/memfd';
import { openFdCount, waitFor } from './helpers';

interface Received {
  text: string;
  handles: Handle[];
}

function collect(ch: Channel): Received[] {
  const got: Received[] = [];
  ch.on('message', (bytes: Buffer, handles: Handle[]) => got.push({ text: bytes.toString(), handles }));
  return got;
}

function memfdWith(text: string): Handle {
  const m = createMemfd('batch-read', 0);
  fs.writeSync(m.fd, Buffer.from(text), 0, text.length, 0);
  return m;
}

function contents(h: Handle): string {
  const buf = Buffer.alloc(64);
  const n = fs.readSync(h.fd, buf, 0, buf.length, 0);
  return buf.subarray(0, n).toString();
}

test('more messages than one read takes: all delivered in order, each with its own handle', async () => {
  const [a, b] = Channel.pair();
  for (let i = 0; i < 37; i++) a.send(Buffer.from(`m${i}`), [memfdWith(`fd${i}`)]);
  a.close();
  const got = collect(b);
  const closed = waitFor(b, 'close');
  b.start();
  await closed;
  expect(got.map((m) => m.text)).toEqual(Array.from({ length: 37 }, (_, i) => `m${i}`));
  got.forEach((m, i) => {
    expect(m.handles.length).toBe(1);
    expect(contents(m.handles[0])).toBe(`fd${i}`);
    m.handles[0].close();
  });
});

test('an empty datagram among others is an empty message, not the end of the stream', async () => {
  const [a, b] = Channel.pair();
  a.send(Buffer.from('before'), []);
  a.send(Buffer.alloc(0), []);
  a.send(Buffer.from('after'), []);
  const got = collect(b);
  b.start();
  while (got.length < 3) await new Promise((r) => setTimeout(r, 5));
  expect(got.map((m) => m.text)).toEqual(['before', '', 'after']);
  expect(b.closed).toBe(false);
  a.close();
  await waitFor(b, 'close');
});

test('an oversized datagram in the middle of a batch: what came before is delivered, the rest dropped, no fd leaks', async () => {
  const before = openFdCount();
  const [a, b] = Channel.pair();
  for (let i = 0; i < 5; i++) a.send(Buffer.from(`m${i}`), [memfdWith(`fd${i}`)]);
  // The same socket as a raw fd: write() on a SEQPACKET socket is one datagram, of any size.
  const raw = a.toHandle();
  fs.writeSync(raw.fd, Buffer.alloc(70000));
  // Behind it, in the same read: messages whose fds must be closed, not leaked.
  const after = Channel.fromHandle(raw);
  for (let i = 5; i < 8; i++) after.send(Buffer.from(`m${i}`), [memfdWith(`fd${i}`)]);
  const got = collect(b);
  const closed = waitFor(b, 'close');
  b.start();
  await closed;
  expect(got.map((m) => m.text)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
  for (const m of got) for (const h of m.handles) h.close();
  after.close();
  await new Promise((r) => setImmediate(r));
  expect(openFdCount()).toBe(before);
});
