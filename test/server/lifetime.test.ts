// Files are forgotten once no one holds them, also when many close at once: the kernel queues a
// close event before it drops the closed description's lock, so a pager that probed only once
// per event could miss the last close and keep a file (and its memory) for ever.
import { PagerClientConnection } from '../../src/client';
import { EmbeddedService } from '../../src/server/service';
import { createMemfd } from '../../src/transport/memfd';

test('200 files registered, mapped and closed at once are all forgotten, five times over', async () => {
  const svc = EmbeddedService.start();
  const client = PagerClientConnection.connect(svc.svcDir);
  const pager = client.createPager(createMemfd('backing', 1 << 20), 4096);
  try {
    for (let round = 0; round < 5; round++) {
      const files = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          pager.registerFile({ name: `f${i}`, inode: round * 1000 + i + 1, size: 8192n, extents: [{ logicalStart: 0, logicalEnd: 2, physicalBlock: BigInt(i % 200) }] }),
        ),
      );
      const mapped = await Promise.all(files.slice(0, 50).map((f) => f.map()));
      for (const m of mapped) m.read(0, 1);
      expect(svc.service.stats().files).toBe(200);
      for (const m of mapped) m.close();
      for (const f of files) f.close();
      const deadline = Date.now() + 3000;
      while (svc.service.stats().files > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      expect({ round, held: svc.service.stats().files }).toEqual({ round, held: 0 });
    }
  } finally {
    pager.close();
    client.close();
    svc.close();
  }
});

test('a server process survives thousands of register-and-close cycles, and forgets every file', async () => {
  // Across processes the close event often reaches the pager before the closed description's
  // lock is dropped, so this drives the timer re-probe path hard (it once crashed the server).
  const { spawn } = await import('child_process');
  const fs = await import('fs');
  const os = await import('os');
  const path = await import('path');
  const svcDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifetime-svc-'));
  const cli = path.join(__dirname, '..', '..', 'bin', 'starnix-pager');
  const server = spawn(cli, ['serve', '--svc-dir', svcDir, '--log-level', 'info'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  server.stderr!.on('data', (d) => (log += d));
  try {
    const deadline = Date.now() + 10_000;
    while (!fs.existsSync(path.join(svcDir, 'fuchsia.starnix.runner.Manager'))) {
      if (Date.now() > deadline) throw new Error('the server did not start');
      await new Promise((r) => setTimeout(r, 20));
    }
    const client = PagerClientConnection.connect(svcDir);
    const pager = client.createPager(createMemfd('backing', 1 << 20), 4096);
    for (let i = 0; i < 3000; i++) {
      const f = await pager.registerFile({ name: `f${i}`, inode: i + 1, size: 8192n, extents: [{ logicalStart: 0, logicalEnd: 2, physicalBlock: 0n }] });
      f.close();
    }
    expect(server.exitCode).toBeNull();
    pager.close();
    client.close();
    // The pager stops once its channel is closed and every file is forgotten.
    const stopDeadline = Date.now() + 5000;
    while (!/pager stopped/.test(log) && Date.now() < stopDeadline) await new Promise((r) => setTimeout(r, 20));
    expect(log).toMatch(/pager stopped pager=1 registrations=3000/);
  } finally {
    const exited = new Promise((r) => server.once('exit', r));
    if (server.exitCode === null) server.kill('SIGTERM');
    await exited;
    fs.rmSync(svcDir, { recursive: true, force: true });
  }
  expect(server.exitCode).toBe(0);
});

test('the mappings-per-connection limit counts live mappings only, not those of forgotten files', async () => {
  const svc = EmbeddedService.start({ limits: { mappingsPerConnection: 2 } });
  const client = PagerClientConnection.connect(svc.svcDir);
  const pager = client.createPager(createMemfd('backing', 1 << 20), 4096);
  try {
    // Five files one after the other, each mapped, read and let go: never more than one alive.
    for (let i = 0; i < 5; i++) {
      const f = await pager.registerFile({ name: `f${i}`, inode: i + 1, size: 4096n, extents: [{ logicalStart: 0, logicalEnd: 1, physicalBlock: 0n }] });
      const m = await f.map();
      m.read(0, 1);
      m.close();
      f.close();
      const deadline = Date.now() + 3000;
      while (svc.service.stats().files > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    }
    // Two live mappings fill the connection's quota; a third is refused.
    const held = await Promise.all([10, 11, 12].map((inode) => pager.registerFile({ name: `h${inode}`, inode, size: 4096n, extents: [] })));
    const m1 = await held[0].map();
    const m2 = await held[1].map();
    await expect(held[2].map()).rejects.toMatchObject({ status: -3 });
    m1.close();
    m2.close();
    for (const f of held) f.close();
  } finally {
    pager.close();
    client.close();
    svc.close();
  }
});
