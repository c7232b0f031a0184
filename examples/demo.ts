// The demo behind `npm run demo`: builds a small ext4 image with mkfs.ext4 -d, starts an
// embedded server, lists and reads files through it the way a Starnix-style runner does
// (metadata read on the client side, contents paged in by the server), and shows that paging is
// lazy: touching one page of a large file pages in about one read-ahead window, not the file.
import { execFileSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { EmbeddedService, Ext4Image, PagerClientConnection } from '../src';

const MiB = 1024 * 1024;

function mkfs(): string {
  for (const dir of ['/usr/sbin', '/sbin', ...(process.env.PATH ?? '').split(':')]) {
    const p = path.join(dir, 'mkfs.ext4');
    if (fs.existsSync(p)) return p;
  }
  throw new Error('mkfs.ext4 not found: install e2fsprogs (bash scripts/install-system-deps.sh)');
}

function makeDemoFolder(dir: string): void {
  fs.mkdirSync(path.join(dir, 'etc'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'data'));
  fs.writeFileSync(path.join(dir, 'etc', 'motd'), 'Hello from inside an ext4 image, paged in by userfaultfd.\n');
  fs.symlinkSync('etc/motd', path.join(dir, 'motd'));
  // 64 MiB of deterministic bytes: large enough that reading all of it would be noticed.
  const big = fs.openSync(path.join(dir, 'data', 'big.bin'), 'w');
  let block = crypto.createHash('sha256').update('demo').digest();
  const chunk = Buffer.alloc(MiB);
  for (let i = 0; i < 64; i++) {
    for (let off = 0; off < MiB; off += 32) {
      block = crypto.createHash('sha256').update(block).digest();
      block.copy(chunk, off);
    }
    fs.writeSync(big, chunk);
  }
  fs.closeSync(big);
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'starnix-pager-demo-'));
  const src = path.join(work, 'root');
  const imagePath = path.join(work, 'demo.img');
  try {
    makeDemoFolder(src);
    execFileSync(mkfs(), ['-q', '-F', '-b', '4096', '-d', src, imagePath, '128M']);
    console.log(`1. made ${imagePath} (128 MiB ext4, 4 KiB blocks) with mkfs.ext4 -d from ${src}`);

    const embedded = EmbeddedService.start();
    console.log(`2. embedded server listening in ${embedded.svcDir}`);
    const client = PagerClientConnection.connect(embedded.svcDir);
    const image = Ext4Image.open(imagePath);
    // The image's fd travels to the server in CreatePager; the server never opens it by path.
    const pager = client.createPager(fs.openSync(imagePath, 'r'), image.blockSize);

    console.log('3. ls / (metadata read on the client side):');
    for (const e of image.readdir(image.lookup('/'))) console.log(`     ${e.type.padEnd(7)} ${e.name}`);

    const read = async (p: string, offset: number, length: number): Promise<Buffer> => {
      const st = image.stat(image.lookup(p, { followFinal: true }));
      const file = await pager.registerFile({ name: p, inode: st.ino, size: st.size, extents: st.extents ?? [] });
      const mapping = await file.map();
      try {
        return await mapping.readAsync(offset, length);
      } finally {
        mapping.close();
        file.close();
      }
    };
    const motd = await read('/motd', 0, Number(image.stat(image.lookup('/motd', { followFinal: true })).size));
    console.log(`4. cat /motd (a symlink to /etc/motd), paged in: ${JSON.stringify(motd.toString())}`);

    const big = image.stat('/data/big.bin');
    const before = embedded.service.stats().bytesSupplied;
    const page = await read('/data/big.bin', 32 * MiB, 4096);
    const paged = Number(embedded.service.stats().bytesSupplied - before);
    const source = fs.readFileSync(path.join(src, 'data', 'big.bin'));
    console.log(`5. one 4 KiB read at 32 MiB into /data/big.bin (${Number(big.size) / MiB} MiB): ` +
      `${page.equals(source.subarray(32 * MiB, 32 * MiB + 4096)) ? 'bytes match the source' : 'BYTES DIFFER'}; ` +
      `paged in ${paged / 1024} KiB (one read-ahead window), not ${Number(big.size) / MiB} MiB`);

    const t0 = process.hrtime.bigint();
    const all = await read('/data/big.bin', 0, Number(big.size));
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const same = crypto.createHash('sha256').update(all).digest('hex') === crypto.createHash('sha256').update(source).digest('hex');
    console.log(`6. whole file: ${same ? 'SHA-256 matches the source' : 'SHA-256 DIFFERS'}, ${(Number(big.size) / secs / 1e9).toFixed(2)} GB/s`);

    const s = embedded.service.stats();
    console.log(`7. server counters: ${s.faults} faults, ${(Number(s.bytesSupplied) / MiB).toFixed(1)} MiB supplied, ${(Number(s.bytesZeroed) / 1024).toFixed(1)} KiB zero-filled, ${s.failures} failures`);
    pager.close();
    client.close();
    image.close();
    embedded.close();
    if (!same || !page.equals(source.subarray(32 * MiB, 32 * MiB + 4096))) process.exitCode = 1;
    console.log('Try the CLI on the same kind of image: bin/starnix-pager ls IMAGE /, bin/starnix-pager cat IMAGE /etc/motd');
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`demo failed: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
