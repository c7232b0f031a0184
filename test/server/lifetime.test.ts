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
