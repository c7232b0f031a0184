// The seed's test_pager, case for case, through the whole stack: a client connects to the
// service directory, CreatePager over a memfd backing with 1 KiB blocks, RegisterFile over the
// real socket, maps each file (its uffd handed to the pager through starnix.pager/Mapper) and
// reads it. Last step as in the seed: once every handle is dropped the pager forgets all files.
import * as fs from 'fs';
import { PagerClientConnection } from '../../src/client';
import { EmbeddedService } from '../../src/server/service';
import { createMemfd } from '../../src/transport/memfd';

async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('the seed test_pager over FIDL', () => {
  let svc: EmbeddedService;
  let client: PagerClientConnection;

  beforeEach(() => {
    svc = EmbeddedService.start();
    client = PagerClientConnection.connect(svc.svcDir);
  });
  afterEach(() => {
    client.close();
    svc.close();
  });

  test('empty extents, "hello", holes around blocks 6 and 12, offset 9000; then every file is forgotten', async () => {
    const backing = createMemfd('backing', 1024 * 1024);
    const pager = client.createPager(backing.duplicate(), 1024);

    // "a": no extents, 5 bytes: reads as zeros.
    const a = await pager.registerFile({ name: 'a', inode: 1, size: 5n, extents: [] });
    const ma = await a.map();
    expect(ma.read(0, 5)).toEqual(Buffer.alloc(5));

    // "b": block 0 -> physical 0, written after registration but before the first touch.
    const b = await pager.registerFile({ name: 'b', inode: 2, size: 5n, extents: [{ logicalStart: 0, logicalEnd: 1, physicalBlock: 0n }] });
    fs.writeSync(backing.fd, Buffer.from('hello'), 0, 5, 0);
    const mb = await b.map();
    expect(mb.read(0, 5).toString()).toBe('hello');

    // "c": extents at logical blocks 6 and 12, holes around them, a tail past the last block.
    const fileSize = (6 + 1 + 5 + 4) * 1024 + 100;
    const extents = [
      { logicalStart: 6, logicalEnd: 7, physicalBlock: 0n },
      { logicalStart: 12, logicalEnd: 13, physicalBlock: 1n },
    ];
    const c = await pager.registerFile({ name: 'c', inode: 3, size: BigInt(fileSize), extents });
    fs.writeSync(backing.fd, Buffer.from('there'), 0, 5, 1024);
    const mc = await c.map();
    const expected = Buffer.alloc(fileSize);
    expected.write('hello', 6 * 1024);
    expected.write('there', 12 * 1024);
    expect(mc.read(0, fileSize).equals(expected)).toBe(true);

    // "d": the same layout, first touched at offset 9000 (in the middle of a hole).
    const d = await pager.registerFile({ name: 'd', inode: 4, size: BigInt(fileSize), extents });
    const md = await d.map();
    expect(md.read(9000, fileSize - 9000).equals(expected.subarray(9000))).toBe(true);

    expect(svc.service.stats().files).toBe(4);
    for (const m of [ma, mb, mc, md]) m.close();
    for (const f of [a, b, c, d]) f.close();
    await waitFor('all four files to be forgotten', () => svc.service.stats().files === 0);
    pager.close();
    await waitFor('the pager to stop', () => svc.service.stats().pagers === 0);
    backing.close();
  });

  test('registering a known inode again gives a new handle to the same file; new size and extents are ignored', async () => {
    const backing = createMemfd('backing', 64 * 1024);
    fs.writeSync(backing.fd, Buffer.from('first'), 0, 5, 0);
    fs.writeSync(backing.fd, Buffer.from('second'), 0, 6, 4096);
    const pager = client.createPager(backing.duplicate(), 4096);
    const one = await pager.registerFile({ name: 'x', inode: 7, size: 5n, extents: [{ logicalStart: 0, logicalEnd: 1, physicalBlock: 0n }] });
    const two = await pager.registerFile({ name: 'x', inode: 7, size: 6n, extents: [{ logicalStart: 0, logicalEnd: 1, physicalBlock: 1n }] });
    expect(svc.service.stats().files).toBe(1);
    const m2 = await two.map();
    expect(m2.read(0, 5).toString()).toBe('first');
    // One holder closing does not free the other's file.
    one.close();
    await new Promise((r) => setTimeout(r, 100));
    expect(svc.service.stats().files).toBe(1);
    expect(m2.read(0, 5).toString()).toBe('first');
    m2.close();
    two.close();
    await waitFor('the file to be forgotten', () => svc.service.stats().files === 0);
    // Registered again after being forgotten: it starts afresh, with the new extents.
    const three = await pager.registerFile({ name: 'x', inode: 7, size: 6n, extents: [{ logicalStart: 0, logicalEnd: 1, physicalBlock: 1n }] });
    const m3 = await three.map();
    expect(m3.read(0, 6).toString()).toBe('second');
    m3.close();
    three.close();
    pager.close();
    backing.close();
  });
});
