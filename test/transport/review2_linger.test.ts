// Review of close()-linger (native/channel.cc StartLinger): what a lingering close holds, and for how long.
import { spawn } from 'child_process';
import * as path from 'path';
import { Channel, ChannelError } from '../../src/transport/channel';
import { createMemfd } from '../../src/transport/memfd';
import { ZX } from '../../src/zx_status';
import { openFdCount } from './helpers';

jest.setTimeout(20000);

test('a write queue over its cap closes the channel: the queued handles and the socket are let go at once, not held for the linger', async () => {
  const [a0, b] = Channel.pair();
  const a = Channel.fromHandle(a0.toHandle(), { name: 'capped', maxQueuedHandles: 16 });
  const base = openFdCount(); // a's socket, b's socket, and what the process had before
  while (a.queuedBytes === 0) a.send(Buffer.alloc(64), []); // b never reads: the socket is full
  let error: unknown = null;
  try {
    for (let i = 0; i < 100; i++) a.send(Buffer.alloc(64), [createMemfd(`q${i}`)]);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(ChannelError);
  expect((error as ChannelError).status).toBe(ZX.NO_RESOURCES);
  expect(a.closed).toBe(true);
  await new Promise((r) => setTimeout(r, 200));
  // "NO_RESOURCES: the channel is closed": a's socket and the 16 queued memfds are gone.
  // With the linger they stay open (up to 10 s) for a peer that has just been judged not to read.
  expect(openFdCount()).toBe(base - 1);
  b.close();
});

test('a process that closes every channel exits promptly even if a peer does not read what was queued', async () => {
  const channelJs = path.join(__dirname, '..', '..', 'dist', 'src', 'transport', 'channel.js');
  const script = `
    const { Channel } = require(${JSON.stringify(channelJs)});
    const [a, b] = Channel.pair();
    while (a.queuedBytes === 0) a.send(Buffer.alloc(512), []);
    a.close(); // b (never started, never read) stays open: a lingers, its write poll holds the loop
    globalThis.keep = b;
  `;
  const started = Date.now();
  const child = spawn(process.execPath, ['-e', script], { stdio: 'inherit' });
  const code = await new Promise((resolve) => child.on('exit', (c, s) => resolve(c ?? s)));
  const took = Date.now() - started;
  expect(code).toBe(0);
  expect(took).toBeLessThan(5000); // with the linger: about 10 s (kLingerMs)
});
