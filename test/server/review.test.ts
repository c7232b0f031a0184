// Regression tests for server and client bugs found in review. Each failed before its fix.
import * as fs from 'fs';
import { PagerClientConnection } from '../../src/client';
import { EmbeddedService } from '../../src/server/service';
import { EventPair } from '../../src/transport/eventpair';
import { Handle } from '../../src/transport/handle';
import { createMemfd } from '../../src/transport/memfd';
import { ZX } from '../../src/zx_status';
import { captureLogs } from '../support/log_capture';

jest.setTimeout(10000);

function openFdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

test('createPager that throws (a block size that is no integer) leaks neither the pager channel nor the backing', () => {
  const svc = EmbeddedService.start();
  const client = PagerClientConnection.connect(svc.svcDir);
  try {
    const before = openFdCount();
    const backing = createMemfd('backing', 1 << 16);
    expect(() => client.createPager(backing, 1.5)).toThrow(RangeError);
    expect(backing.valid).toBe(false); // moved into the call, whatever happened
    expect(openFdCount()).toBe(before);
  } finally {
    client.close();
    svc.close();
  }
});

test('a client that sends RegisterFile calls and never reads the replies cannot make the server hold thousands of fds', async () => {
  // Each reply carries a new fd; replies the client does not read wait in the server's write
  // queue, and that queue was capped by bytes only (4 MiB, some 60000 small replies): a single
  // client could make the server hold more fds than its RLIMIT_NOFILE allows.
  const { Channel } = await import('../../src/transport/channel');
  const { encodeMessage } = await import('../../src/fidl/message');
  const runner = await import('../../src/gen/fuchsia_starnix_runner');
  const logs = captureLogs();
  const svc = EmbeddedService.start();
  const client = PagerClientConnection.connect(svc.svcDir);
  const [clientEnd, serverEnd] = Channel.pairHandles();
  client.managerClient.createPager({ backingVmo: createMemfd('backing', 1 << 16), blockSize: 4096n, pager: serverEnd });
  const pagerChannel = Channel.fromHandle(clientEnd, { name: 'never-reads' }); // never started: reads nothing
  try {
    const before = openFdCount();
    const method = runner.PagerMethods.RegisterFile;
    const requests = 10000; // more than the queue's cap in handles (4096) allows to wait
    for (let txid = 1; txid <= requests; txid++) {
      const m = encodeMessage({ txid, ordinal: method.ordinal, flexible: !method.strict }, method.payload, {
        name: 'f',
        inodeNum: 1,
        size: 4096n,
        extents: [{ logicalStart: 0, logicalEnd: 1, physicalBlock: 0n }],
      });
      pagerChannel.send(m.bytes, m.handles);
    }
    // Let the server read every request (ours drain as it reads) and queue its replies.
    let peak = openFdCount();
    // Generous: the loop ends as soon as the queue drains; a loaded CI machine reads 10000
    // requests in seconds, not milliseconds.
    const deadline = Date.now() + 30000;
    while (pagerChannel.queuedBytes > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
      peak = Math.max(peak, openFdCount());
    }
    await new Promise((r) => setTimeout(r, 50));
    peak = Math.max(peak, openFdCount());
    expect(pagerChannel.queuedBytes).toBe(0);
    expect(peak - before).toBeLessThan(5000); // some 9700 before the cap
    // The server said why it cut the client off (and that its replies could not be sent).
    expect(logs.lines).toContainEqual(expect.stringMatching(/error: channel .*\/pager: closing, the peer does not read/));
  } finally {
    pagerChannel.close();
    client.close();
    svc.close();
    logs.restore();
  }
});

test('a client that registers wake watchers without end cannot make the server hold thousands of fds', async () => {
  // Each watcher is kept for the connection's life (its peer is alive): without a bound, one
  // client could fill the server's fd table (RLIMIT_NOFILE) with them.
  const svc = EmbeddedService.start();
  const client = PagerClientConnection.connect(svc.svcDir);
  const ours: Handle[] = [];
  const watcher = () => {
    const [mine, theirs] = EventPair.createHandles();
    ours.push(mine);
    return theirs;
  };
  try {
    await client.managerClient.registerWakeWatcher({ watcher: watcher() }); // a few are kept, and answered
    const before = openFdCount() - ours.length; // this process is the client too: not counting our ends
    const calls: Promise<void>[] = [];
    for (let i = 0; i < 3000; i++) calls.push(client.managerClient.registerWakeWatcher({ watcher: watcher() }));
    const settled = await Promise.allSettled(calls);
    await new Promise((r) => setTimeout(r, 20));
    expect(openFdCount() - ours.length - before).toBeLessThan(500);
    // Past the bound the Manager connection is closed with NO_RESOURCES.
    const refused = settled.find((s) => s.status === 'rejected') as PromiseRejectedResult | undefined;
    expect((refused?.reason as { status?: number } | undefined)?.status).toBe(ZX.NO_RESOURCES);
  } finally {
    for (const h of ours) h.close();
    client.close();
    svc.close();
  }
});
