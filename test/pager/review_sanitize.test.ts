// Regression tests from running the addon under AddressSanitizer/UndefinedBehaviorSanitizer and
// ThreadSanitizer (issue 18). Each failed before its fix; the use-after-free fails loudly only in
// the sanitized build (`npm run test:sanitize`), which runs this file too.
import * as fs from 'fs';
import * as path from 'path';
import { spawn } from 'child_process';
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
      // Three rounds: the unlock must fall into the pager's recheck window (about 250 ms after the
      // close event), which a loaded machine may miss now and then; then the last close forgets
      // the file instead, and the round still checks the name.
      for (const inode of [7, 8, 9]) {
        const first = pager.registerFile(name, inode, 8192n, [{ logicalStart: 0, logicalEnd: 2, physicalBlock: 0n }]);
        const second = pager.registerFile(name, inode, 8192n, [{ logicalStart: 0, logicalEnd: 2, physicalBlock: 0n }]);
        // A process that shares the second handle's description, started first (a process start
        // can take longer than the recheck window): on a line on its stdin it drops the
        // description's lock without closing it, so no close event follows and only the recheck
        // probe can see that the file is free.
        const unlocker = spawn('perl', ['-MFcntl=:flock', '-e', 'open(my $h, "<&=3") or die; $| = 1; print "ready\\n"; <STDIN>; flock($h, LOCK_UN) or die "flock: $!"; print "unlocked\\n"'], {
          stdio: ['pipe', 'pipe', 'inherit', second.fd],
        });
        let said = '';
        unlocker.stdout!.on('data', (d: Buffer) => (said += d.toString()));
        const unlockerExited = new Promise((r) => unlocker.on('exit', r));
        await waitFor(() => said === 'ready\n', 20000, 'the unlocking process to start');
        // Closing the first handle makes the pager probe the file's lock, which the second still
        // holds: the file goes on the recheck list.
        fs.closeSync(first.fd);
        await new Promise((r) => setTimeout(r, 20));
        unlocker.stdin!.end('go\n');
        await waitFor(() => said === 'ready\nunlocked\n', 5000, 'the unlock');
        await unlockerExited;
        const deadline = Date.now() + 1000;
        while (!forgotten.some(([i]) => i === inode) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        fs.closeSync(second.fd);
        await waitFor(() => forgotten.some(([i]) => i === inode), 5000, `inode ${inode} to be forgotten`);
      }
      await new Promise((r) => setTimeout(r, 50));
      expect(forgotten).toEqual([
        [7, name],
        [8, name],
        [9, name],
      ]);
      expect(pager.stats().files).toBe(0);
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
