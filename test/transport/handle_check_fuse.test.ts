// The codec's handle check must not wait on a file system: a backing_vmo on a FUSE file system
// whose GETATTR never returns (test/support/fuse) is still checked at once (statx with
// AT_STATX_DONT_SYNC), where a plain fstat of the same fd waits for the daemon.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { mountStallfs, stallfsUnavailable } from '../support/fuse';

const reason = stallfsUnavailable();
const DIST = path.resolve(__dirname, '..', '..', 'dist', 'src');

/** Runs `code` in a child node with `fd` as its fd 3; its stdout, or 'timeout' after ms. */
function inChild(code: string, fd: number, ms: number): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit', fd] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve('timeout');
    }, ms);
    child.on('exit', () => {
      clearTimeout(timer);
      resolve(out.trim());
    });
  });
}

(reason === null ? test : test.skip)(`a VMO check on a file whose GETATTR stalls answers at once${reason === null ? '' : ` (skipped: ${reason})`}`, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'check-fuse-'));
  const backing = path.join(dir, 'backing');
  fs.writeFileSync(backing, Buffer.alloc(65536, 7));
  const fsys = await mountStallfs(backing);
  let fd = -1;
  try {
    fd = fs.openSync(fsys.filePath, 'r');
    fsys.control('stall-getattr 1');
    const check = `const { Handle } = require(${JSON.stringify(path.join(DIST, 'transport', 'handle'))});
      const { handleObjectCheck } = require(${JSON.stringify(path.join(DIST, 'transport', 'handle_info'))});
      console.log(handleObjectCheck(new Handle(3), 3, 4));`;
    expect(await inChild(check, fd, 5000)).toBe('0');
    // The control: fstat of the same fd does wait on the daemon (so the check above could have).
    expect(await inChild(`require('fs').fstatSync(3); console.log('returned')`, fd, 1500)).toBe('timeout');
  } finally {
    fsys.control('release');
    if (fd >= 0) fs.closeSync(fd);
    await fsys.unmount();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
