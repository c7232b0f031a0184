// Child of stop_sparse.test.ts: two mappings of a sparse 2^44-byte file in this process (no
// watchPager), one of which read two places; then the pager stops. Prints the growth of this
// process's page tables across the stop and how each later read ended, then must exit by itself
// (a read left waiting would keep it alive).
import * as fs from 'fs';
import { FileMapping } from '../../src/client/mapping';
import { memfdPager, openFile, ext } from './helpers';

const SIZE = 2 ** 44;
const FAR = 2 ** 43; // logical block 2^31: the second extent
const MIB = 1 << 20;

function vmPteKb(): number {
  return Number(/^VmPTE:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]);
}

async function main(): Promise<void> {
  const { backing, pager } = memfdPager(2 * MIB, 4096);
  const data = Buffer.alloc(2 * MIB);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 12)) & 0xff || 1;
  fs.writeSync(backing, data, 0, data.length, 0);
  const extents = [ext(0, 256, 0), ext(FAR / 4096, FAR / 4096 + 256, 256)];
  const a = openFile(pager, 'sparse', 5, SIZE, extents);
  const { fd } = pager.registerFile('sparse', 5, BigInt(SIZE), extents);
  const b = FileMapping.open(fd, BigInt(SIZE));
  pager.attachMapping(fd, b.uffdForPager(), b.address, b.length, 0n);
  const right = (buf: Buffer, at: number) => buf.equals(at < FAR ? data.subarray(at, at + buf.length) : data.subarray(MIB + at - FAR, MIB + at - FAR + buf.length));
  console.log(`before stop: ${right(a.mapping.read(0, 65536), 0) && right(a.mapping.read(FAR, 65536), FAR) ? 'ok' : 'wrong bytes'}`);
  const pte = vmPteKb();
  pager.stop();
  console.log(`page tables grew by ${vmPteKb() - pte} kB`);
  const attempt = async (name: string, m: FileMapping, at: number) => {
    try {
      console.log(`${name}: ${right(await m.readAsync(at, 4096), at) ? 'ok' : 'wrong bytes'}`);
    } catch (e) {
      console.log(`${name}: ${(e as NodeJS.ErrnoException).code}`);
    }
  };
  await attempt('a, read before', a.mapping, FAR + 8192);
  await attempt('b, filled by a', b, 4096);
  await attempt('b, filled by a, far', b, FAR + 4096);
  await attempt('b, never filled', b, SIZE - 4096);
  await attempt('a, never filled', a.mapping, 2 ** 42);
  b.close();
  fs.closeSync(fd);
  a.close();
  fs.closeSync(backing);
}

void main();
