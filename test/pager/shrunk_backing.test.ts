// A backing that shrinks to an odd size after registration (its owner, another process, truncates
// it): the pages it still has whole read right, and the page holding its new end fails with EIO
// like every page past it, never its data plus zeros.
import { execFileSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { NativePager } from '../../src/pager/native_pager';
import { ext, openFile } from './helpers';

test('backing truncated to an odd size: whole pages read right, the page holding the new end and those after fail with EIO', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shrunk-'));
  const backingPath = path.join(dir, 'backing');
  const data = crypto.randomBytes(16 * 4096);
  fs.writeFileSync(backingPath, data);
  const backing = fs.openSync(backingPath, 'r');
  const pager = NativePager.create(backing, 4096, { threads: 1, readahead: 'fixed' });
  try {
    const opened = openFile(pager, 'shrunk', 1, data.length, [ext(0, 16, 0)]);
    try {
      execFileSync('truncate', ['-s', String(10 * 4096 + 100), backingPath]);
      const outcome = async (page: number): Promise<string> => {
        try {
          const got = await opened.mapping.readAsync(page * 4096, 4096);
          return got.equals(data.subarray(page * 4096, (page + 1) * 4096)) ? 'right' : 'WRONG BYTES';
        } catch (e) {
          return String((e as NodeJS.ErrnoException).code);
        }
      };
      const seen: string[] = [];
      for (const page of [0, 5, 9, 10, 11, 15]) seen.push(`${page}:${await outcome(page)}`);
      expect(seen).toEqual(['0:right', '5:right', '9:right', '10:EIO', '11:EIO', '15:EIO']);
    } finally {
      opened.close();
    }
  } finally {
    pager.stop();
    fs.closeSync(backing);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
