// Child of review_sanitize.test.ts: a pager and a mapping of one of its files in this process,
// with no watchPager. The pager stops; then pages never filled are read, async and sync. Prints
// how each read ended and must then exit by itself (a read left waiting would keep it alive).
import * as fs from 'fs';
import { memfdPager, openFile, ext } from './helpers';

const HALF = 1 << 19; // far beyond the first read-ahead window

async function main(): Promise<void> {
  const { backing, pager } = memfdPager(1 << 20, 4096);
  fs.writeSync(backing, Buffer.alloc(1 << 20, 0x5a), 0, 1 << 20, 0);
  const file = openFile(pager, 'never-filled', 3, 1 << 20, [ext(0, 256, 0)]);
  // Page 0 (and its read-ahead, 128 KiB at most) in before the stop: it stays readable after it.
  const first = file.mapping.read(0, 4096);
  console.log(`before stop: ${first.every((b) => b === 0x5a) ? 'ok' : 'wrong bytes'}`);
  pager.stop();
  const outcome = (e: unknown) => `${(e as NodeJS.ErrnoException).code} ${(e as Error).message}`;
  try {
    await file.mapping.readAsync(HALF, 4096);
    console.log('async: read');
  } catch (e) {
    console.log(`async: ${outcome(e)}`);
  }
  try {
    file.mapping.read(HALF + 4096, 4096);
    console.log('sync: read');
  } catch (e) {
    console.log(`sync: ${outcome(e)}`);
  }
  console.log(`after stop: ${file.mapping.read(0, 4096).every((b) => b === 0x5a) ? 'ok' : 'wrong bytes'}`);
  file.close();
  fs.closeSync(backing);
}

void main();
