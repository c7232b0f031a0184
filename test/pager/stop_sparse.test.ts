// Issue 12 (d): a pager that stops while a sparse file of 2^44 bytes is mapped. Failing its
// readers must cost time and memory bounded whatever the file's size (it used to poison every
// missing page up front: 2^32 page table entries), and no reader may then wait for ever or read
// zeros: each read gets the right bytes or EPIPE. In a child process, so that a read left waiting
// shows as a process that does not exit.
import { spawn } from 'child_process';
import * as path from 'path';

const CHILD_JS = path.join(__dirname, '..', '..', 'dist', 'test', 'pager', 'sparse_stop_child.js');

test('stop with a sparse 2^44-byte file mapped twice: page tables grow by little, reads after it get the right bytes or EPIPE, the process exits', async () => {
  const child = spawn(process.execPath, [CHILD_JS], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30000);
  const status = await exited;
  clearTimeout(timer);
  expect({ status, err }).toEqual({ status: 0, err: '' });
  const lines = out.trim().split('\n');
  expect(lines[0]).toBe('before stop: ok');
  const grew = Number(/^page tables grew by (-?\d+) kB$/.exec(lines[1])?.[1]);
  expect(grew).toBeLessThan(16 * 1024); // 4 GiB poisoned (the budget) is 8 MiB of page tables; the filled runs add little
  expect(lines.slice(2)).toEqual([
    'a, read before: ok',
    'b, filled by a: ok', // mapped for b at stop
    expect.stringMatching(/^b, filled by a, far: (ok|EPIPE)$/), // past the stop budget: EPIPE
    'b, never filled: EPIPE',
    'a, never filled: EPIPE',
  ]);
});
