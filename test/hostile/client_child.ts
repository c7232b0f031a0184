// A client process for the fault and load tests. Runs as compiled JS
// (dist/test/hostile/client_child.js) with one JSON argument:
//   { mode: 'fault', svcDir, image, blockSize, files: [{path, ino, size, extents}] }
//       registers and maps every file, prints "mapped", then reads them all (faulting) in a loop
//       until killed.
//   { mode: 'load', svcDir, image, blockSize, files, dataDir, seconds, seed }
//       registers and maps every file, then random reads for `seconds`, each checked against the
//       source file in dataDir; prints one JSON line {reads, bytes, mismatches, errors}.
//   { mode: 'write', svcDir, image, blockSize, files, fd? }
//       tries every way to change a file it was handed (see access.test.ts); prints JSON results.
import * as fs from 'fs';
import * as path from 'path';
import { FileMapping, PagerClientConnection, PagedFile } from '../../src/client';
import type { PagerExtent } from '../../src/gen/fuchsia_starnix_runner';

interface FileArg {
  path: string;
  ino: number;
  size: string;
  extents: { logicalStart: number; logicalEnd: number; physicalBlock: string }[];
}
interface Args {
  mode: 'fault' | 'load';
  svcDir: string;
  image: string;
  blockSize: number;
  files: FileArg[];
  dataDir?: string;
  seconds?: number;
  seed?: number;
}

const args = JSON.parse(process.argv[2]) as Args;

async function openAll(): Promise<{ client: PagerClientConnection; files: PagedFile[]; maps: FileMapping[] }> {
  const client = PagerClientConnection.connect(args.svcDir);
  const pager = client.createPager(fs.openSync(args.image, 'r'), args.blockSize);
  const files: PagedFile[] = [];
  const maps: FileMapping[] = [];
  for (const f of args.files) {
    const extents: PagerExtent[] = f.extents.map((e) => ({ logicalStart: e.logicalStart, logicalEnd: e.logicalEnd, physicalBlock: BigInt(e.physicalBlock) }));
    const file = await pager.registerFile({ name: f.path, inode: f.ino, size: BigInt(f.size), extents });
    files.push(file);
    maps.push(await file.map());
  }
  return { client, files, maps };
}

async function fault(): Promise<void> {
  const { maps } = await openAll();
  process.stdout.write('mapped\n');
  for (;;) {
    for (let i = 0; i < maps.length; i++) {
      const size = Number(args.files[i].size);
      for (let off = 0; off < size; off += 65536) await maps[i].readAsync(off, Math.min(65536, size - off));
    }
  }
}

async function load(): Promise<void> {
  const { client, files, maps } = await openAll();
  const sources = args.files.map((f) => fs.readFileSync(path.join(args.dataDir!, f.path)));
  let seed = (args.seed ?? 1) >>> 0 || 1;
  const rand = (n: number): number => {
    seed ^= seed << 13;
    seed >>>= 0;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    seed >>>= 0;
    return seed % n;
  };
  let reads = 0;
  let bytes = 0;
  let mismatches = 0;
  const errors: string[] = [];
  const deadline = Date.now() + (args.seconds ?? 2) * 1000;
  while (Date.now() < deadline) {
    const i = rand(maps.length);
    const size = sources[i].length;
    const off = rand(size);
    const len = 1 + rand(Math.min(size - off, 256 * 1024));
    try {
      const got = rand(4) === 0 ? maps[i].read(off, len) : await maps[i].readAsync(off, len);
      if (!got.equals(sources[i].subarray(off, off + len))) mismatches++;
      bytes += len;
    } catch (e) {
      if (errors.length < 5) errors.push(`${(e as NodeJS.ErrnoException).code ?? ''} ${(e as Error).message}`);
    }
    reads++;
  }
  process.stdout.write(JSON.stringify({ reads, bytes, mismatches, errors }) + '\n');
  for (const m of maps) m.close();
  for (const f of files) f.close();
  client.close();
  process.exit(0);
}

(args.mode === 'fault' ? fault() : load()).catch((e) => {
  process.stdout.write(`error ${(e as NodeJS.ErrnoException).code ?? ''} ${(e as Error).message}\n`);
  process.exit(1);
});
