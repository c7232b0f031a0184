// Regression tests from running the addon under AddressSanitizer/UndefinedBehaviorSanitizer and
// ThreadSanitizer (issue 18). Each failed before its fix; the use-after-free fails loudly only in
// the sanitized build (`npm run test:sanitize`), which runs this file too.
import * as fs from 'fs';
import * as path from 'path';
import { spawn, spawnSync } from 'child_process';
import { memfdPager, waitFor } from './helpers';

const STOPPED_READER_JS = path.join(__dirname, '..', '..', 'dist', 'test', 'pager', 'stopped_reader_child.js');

describe('pager core under the sanitizers', () => {
  test('a file forgotten by the recheck probe (flock(LOCK_UN) by a holder) is forgotten once, with its name', async () => {
    const { backing, pager } = memfdPager(1 << 20, 4096);
    // Longer than std::string's inline buffer: the name lives in its own heap block.
    const name = 'a-file-name-longer-than-sixteen-bytes-' + 'x'.repeat(40);
    const forgotten: Array<[number, string]> = [];
    pager.onFileForgotten((inode, n) => forgotten.push([inode, n]));
    try {
      const first = pager.registerFile(name, 7, 8192n, [{ logicalStart: 0, logicalEnd: 2, physicalBlock: 0n }]);
      const second = pager.registerFile(name, 7, 8192n, [{ logicalStart: 0, logicalEnd: 2, physicalBlock: 0n }]);
      // Closing the first handle makes the pager probe the file's lock, which the second still
      // holds: the file goes on the recheck list, probed again for about 250 ms.
      fs.closeSync(first.fd);
      // A process that shares the second handle's description drops its lock without closing it:
      // no close event, only the recheck probe can see that the file is free now.
      const unlock = spawnSync('flock', ['--unlock', '3'], { stdio: ['ignore', 'pipe', 'pipe', second.fd] });
      expect(unlock.status).toBe(0);
      await waitFor(() => forgotten.length > 0, 5000, 'the recheck probe to forget the file');
      await new Promise((r) => setTimeout(r, 50));
      expect(forgotten).toEqual([[7, name]]);
      expect(pager.stats().files).toBe(0);
      fs.closeSync(second.fd);
    } finally {
      pager.stop();
      fs.closeSync(backing);
    }
  });

  test('a read after the pager stopped fails with EPIPE (no watchPager, same process), and the process exits', async () => {
    const child = spawn(process.execPath, [STOPPED_READER_JS], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
    // Before the fix the first read never settled and the process never exited.
    const timer = setTimeout(() => child.kill('SIGKILL'), 20000);
    const status = await exited;
    clearTimeout(timer);
    expect({ status, err }).toEqual({ status: 0, err: '' });
    const lines = out.trim().split('\n');
    expect(lines[0]).toBe('before stop: ok');
    expect(lines[1]).toMatch(/^async: EPIPE the pager is gone: the page at offset 524288 was never paged in$/);
    expect(lines[2]).toMatch(/^sync: EPIPE the pager is gone: the page at offset 528384 was never paged in$/);
    expect(lines[3]).toBe('after stop: ok');
  });
});
