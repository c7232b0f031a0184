// Where `cat` and `map` write: stdout as a file, a pipe or /dev/null (written with write(2) straight
// from the mapping), a stream without a file descriptor (a new buffer per chunk), and a pipe whose
// reader goes away (the command ends quietly, by SIGPIPE, as `cat | head` users expect).
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PassThrough } from 'stream';
import { Ext4Image } from '../../src/ext4';
import { PagerSession, streamFile } from '../../src/cli/pager_session';
import { makeImage, seededBytes, sha256 } from '../support/images';

const CLI = path.join(__dirname, '..', '..', 'bin', 'starnix-pager');
const SIZE = 24 * 1024 * 1024 + 4321;
let tmp: string;
let image: string;
let content: Buffer;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-output-'));
  const src = path.join(tmp, 'src');
  fs.mkdirSync(src);
  content = seededBytes(11, SIZE);
  fs.writeFileSync(path.join(src, 'big.bin'), content);
  image = path.join(tmp, 'img');
  makeImage({ dir: src, out: image, sizeMiB: 48 });
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Ended { code: number | null; signal?: NodeJS.Signals; stderr: string }

function runCat(stdout: 'pipe' | number): { child: ReturnType<typeof spawn>; done: Promise<Ended> } {
  const child = spawn(CLI, ['cat', image, '/big.bin'], { stdio: ['ignore', stdout, 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<Ended>((resolve) =>
    child.on('close', (code, signal) => resolve(signal === null ? { code, stderr } : { code, signal, stderr })),
  );
  return { child, done };
}

test('cat to a file and to a pipe: the bytes', async () => {
  const out = path.join(tmp, 'out');
  const fd = fs.openSync(out, 'w');
  const toFile = runCat(fd);
  fs.closeSync(fd);
  expect(await toFile.done).toEqual({ code: 0, stderr: '' });
  expect(sha256(fs.readFileSync(out))).toBe(sha256(content));

  const toPipe = runCat('pipe');
  const chunks: Buffer[] = [];
  toPipe.child.stdout!.on('data', (d: Buffer) => chunks.push(d));
  expect(await toPipe.done).toEqual({ code: 0, stderr: '' });
  expect(sha256(Buffer.concat(chunks))).toBe(sha256(content));
});

test('cat to a pipe whose reader goes away ends quietly, by SIGPIPE', async () => {
  const r = runCat('pipe');
  const first = await new Promise<Buffer>((resolve) => r.child.stdout!.once('data', resolve));
  r.child.stdout!.destroy(); // the reader is gone, as `| head -c N` after N bytes
  expect(first.equals(content.subarray(0, first.length))).toBe(true);
  expect(await r.done).toEqual({ code: null, signal: 'SIGPIPE', stderr: '' });
});

test('streamFile to a stream without a file descriptor: the bytes, a new buffer per chunk', async () => {
  const img = Ext4Image.open(image);
  const session = PagerSession.open({});
  try {
    const st = img.stat(img.lookup('/big.bin'));
    const pager = session.createPager(image, img.blockSize);
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    // Copy as the chunks arrive: the buffers behind them are reused once the stream is done with them.
    out.on('data', (d: Buffer) => chunks.push(Buffer.from(d)));
    const n = await streamFile(pager, { name: '/big.bin', inode: st.ino, size: st.size, extents: st.extents ?? [] }, out, { offset: 5n, length: BigInt(SIZE) });
    pager.close();
    expect(n).toBe(BigInt(SIZE - 5));
    expect(sha256(Buffer.concat(chunks))).toBe(sha256(content.subarray(5)));
  } finally {
    session.close();
    img.close();
  }
});
