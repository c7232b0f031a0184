// The seed's test_pager, case for case, on Linux: a memfd backing with 1 KiB blocks.
import * as fs from 'fs';
import { openFile, memfdPager, waitFor, ext } from './helpers';

test('test_pager: empty file, "hello", holes around extents, offset read, then all forgotten', async () => {
  const { backing, pager } = memfdPager(1024 * 1024, 1024);
  const forgotten: number[] = [];
  pager.onFileForgotten((inode) => forgotten.push(inode));
  try {
    // A file with no extents reads zeros.
    const a = openFile(pager, 'a', 1, 5, []);
    expect([...a.mapping.read(0, 5)]).toEqual([0, 0, 0, 0, 0]);

    // "hello" at block 0.
    const b = openFile(pager, 'b', 2, 5, [ext(0, 1, 0)]);
    fs.writeSync(backing, Buffer.from('hello'), 0, 5, 0);
    expect(b.mapping.read(0, 5).toString()).toBe('hello');

    // Holes before, between and after extents at blocks 6 and 12.
    const fileSize = (6 + 1 + 5 + 4) * 1024 + 100;
    const c = openFile(pager, 'c', 3, fileSize, [ext(6, 7, 0), ext(12, 13, 1)]);
    fs.writeSync(backing, Buffer.from('there'), 0, 5, 1024);
    const expected = Buffer.alloc(fileSize);
    expected.write('hello', 6 * 1024);
    expected.write('there', 12 * 1024);
    expect(c.mapping.read(0, fileSize).equals(expected)).toBe(true);

    // A read from offset 9000 of a fresh file.
    const d = openFile(pager, 'd', 4, fileSize, [ext(6, 7, 0), ext(12, 13, 1)]);
    expect(d.mapping.read(9000, fileSize - 9000).equals(expected.subarray(9000))).toBe(true);

    expect(pager.stats().files).toBe(4);
    for (const f of [a, b, c, d]) f.close();
    // Every handle and mapping is gone: the pager forgets all four files.
    await waitFor(() => pager.stats().files === 0, 5000, 'files to be forgotten');
    await waitFor(() => forgotten.length === 4, 2000, 'onFileForgotten');
    expect(forgotten.sort()).toEqual([1, 2, 3, 4]);
    expect(pager.stats().attachments).toBe(0);
  } finally {
    pager.stop();
    fs.closeSync(backing);
  }
});
