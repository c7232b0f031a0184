// Paging benchmark: first read of a large file through a mapping (GB/s), fixed vs adaptive
// read-ahead, and the latency of random 4 KiB faults (p50/p99).
// The image is a regular file kept in the page cache (dropCache: false so that every run
// reads the same cached image; with dropCache the pager would evict it as it goes, as the
// seed does in production).
// Run directly: node dist/bench/paging.js [sizeMiB]
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { NativePager } from '../src/pager/native_pager';
import { FileMapping } from '../src/client/mapping';

export interface PagingBenchOptions {
  sizeMiB?: number; // image and file size, default 1024
  randomFaults?: number; // default 2000
  dir?: string;
}

const BLOCK = 4096;
const EXTENT_BLOCKS = 32768; // ext4's longest extent

function extentsFor(size: number) {
  const blocks = Math.ceil(size / BLOCK);
  const out = [];
  for (let b = 0; b < blocks; b += EXTENT_BLOCKS) {
    out.push({ logicalStart: b, logicalEnd: Math.min(blocks, b + EXTENT_BLOCKS), physicalBlock: BigInt(b) });
  }
  return out;
}

async function forgotten(pager: NativePager): Promise<void> {
  const deadline = Date.now() + 10000;
  while (pager.stats().files > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
}

function open(pager: NativePager, inode: number, size: number) {
  const { fd } = pager.registerFile(`bench${inode}`, inode, BigInt(size), extentsFor(size));
  const mapping = FileMapping.open(fd, BigInt(size));
  pager.attachMapping(fd, mapping.uffdForPager(), mapping.address, mapping.length, 0n);
  return {
    mapping,
    close() {
      mapping.close();
      fs.closeSync(fd);
    },
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export async function benchPaging(opts: PagingBenchOptions = {}): Promise<object> {
  const size = (opts.sizeMiB ?? 1024) * 1024 * 1024;
  const randomFaults = opts.randomFaults ?? 2000;
  const dir = fs.mkdtempSync(path.join(opts.dir ?? os.tmpdir(), 'paging-bench-'));
  const image = path.join(dir, 'image');
  const chunk = Buffer.alloc(4 << 20);
  for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE((i * 2654435761) >>> 0, i);
  const wfd = fs.openSync(image, 'w');
  for (let off = 0; off < size; off += chunk.length) fs.writeSync(wfd, chunk, 0, Math.min(chunk.length, size - off), off);
  fs.closeSync(wfd);
  const backing = fs.openSync(image, 'r');
  const results: Record<string, unknown> = { sizeMiB: size / 1048576 };
  let inode = 1;
  try {
    for (const readahead of ['fixed', 'adaptive'] as const) {
      const pager = NativePager.create(backing, BLOCK, { readahead, dropCache: false });
      try {
        // Sequential first read, 4 MiB at a time, on the JS thread.
        const runs: number[] = [];
        for (let run = 0; run < 3; run++) {
          const f = open(pager, inode++, size);
          const t0 = process.hrtime.bigint();
          for (let off = 0; off < size; off += 4 << 20) {
            const b = f.mapping.read(off, Math.min(4 << 20, size - off));
            if (b[4] !== chunk[(off % chunk.length) + 4]) throw new Error(`wrong data at ${off}`);
          }
          const secs = Number(process.hrtime.bigint() - t0) / 1e9;
          runs.push(size / secs / 1e9);
          f.close();
          await forgotten(pager);
        }
        const faultsBefore = pager.stats().faults;
        // Random 4 KiB faults on a fresh file: one byte read per fault, distinct pages.
        const f = open(pager, inode++, size);
        const pages = size / 4096;
        const latencies: number[] = [];
        const seen = new Set<number>();
        let x = 12345;
        while (latencies.length < randomFaults && seen.size < pages) {
          x ^= x << 13;
          x ^= x >>> 17;
          x ^= x << 5;
          x >>>= 0;
          const page = x % pages;
          if (seen.has(page)) continue;
          seen.add(page);
          const t0 = process.hrtime.bigint();
          f.mapping.read(page * 4096, 1);
          latencies.push(Number(process.hrtime.bigint() - t0) / 1000);
        }
        latencies.sort((a, b) => a - b);
        const stats = pager.stats();
        f.close();
        await forgotten(pager);
        results[readahead] = {
          firstReadGBps: runs.map((r) => Number(r.toFixed(2))),
          randomFaultUs: { p50: Number(percentile(latencies, 50).toFixed(1)), p99: Number(percentile(latencies, 99).toFixed(1)) },
          randomFaultsServed: stats.faults - faultsBefore,
        };
      } finally {
        pager.stop();
      }
    }
  } finally {
    fs.closeSync(backing);
    fs.rmSync(dir, { recursive: true });
  }
  return results;
}

if (require.main === module) {
  const sizeMiB = process.argv[2] ? Number(process.argv[2]) : undefined;
  benchPaging({ sizeMiB }).then(
    (r) => console.log(JSON.stringify(r, null, 2)),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
