// What the MINOR registration of readers (issue 12) costs: a file read whole for the first time
// through one mapping (the pager fills it), then whole again through a second, fresh mapping of the
// same file (every page is filled already: each of its read-ahead windows is one fault that the
// pager answers with UFFDIO_CONTINUE; before, the kernel resolved such faults by itself, a minor
// fault per page). In-process pager over a memfd backing, 1 MiB readInto calls, fresh inode per rep.
//   node dist/bench/second_reader.js [--reps N] [--size-mib N]
// Prints one JSON object: GB/s of every first and second read, and their medians.
import * as fs from 'fs';
import { parseArgs } from 'util';
import { FileMapping } from '../src/client/mapping';
import { NativePager, createMemfdForTests } from '../src/pager/native_pager';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function readWhole(fd: number, size: number, pager: NativePager): number {
  const m = FileMapping.open(fd, BigInt(size));
  const id = pager.attachMapping(fd, m.uffdForPager(), m.address, m.length, 0n);
  const buf = Buffer.alloc(1 << 20);
  const t0 = process.hrtime.bigint();
  for (let at = 0; at < size; at += buf.length) m.readInto(buf, at);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  pager.detachMapping(id);
  m.close();
  return size / secs / 1e9;
}

function main(): void {
  const { values } = parseArgs({ options: { reps: { type: 'string' }, 'size-mib': { type: 'string' } } });
  const reps = Number(values.reps ?? 7);
  const size = Number(values['size-mib'] ?? 256) << 20;
  const backing = createMemfdForTests('second-reader-backing', size);
  const chunk = Buffer.alloc(1 << 20);
  for (let at = 0; at < size; at += chunk.length) {
    chunk.fill(at >> 20);
    fs.writeSync(backing, chunk, 0, chunk.length, at);
  }
  const pager = NativePager.create(backing, 4096);
  const first: number[] = [];
  const second: number[] = [];
  for (let rep = 0; rep <= reps; rep++) {
    const { fd } = pager.registerFile(`f${rep}`, rep + 1, BigInt(size), [{ logicalStart: 0, logicalEnd: size / 4096, physicalBlock: 0n }]);
    const a = readWhole(fd, size, pager);
    const b = readWhole(fd, size, pager);
    fs.closeSync(fd);
    if (rep === 0) continue; // warm-up
    first.push(a);
    second.push(b);
  }
  pager.stop();
  fs.closeSync(backing);
  const r = (x: number) => Math.round(x * 100) / 100;
  console.log(JSON.stringify({ sizeMiB: size >> 20, first: first.map(r), second: second.map(r), firstMedian: r(median(first)), secondMedian: r(median(second)) }));
}

main();
