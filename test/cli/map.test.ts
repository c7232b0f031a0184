// `starnix-pager map`: one file registered against a backing file from an extent list given on
// the command line, its paged bytes on stdout (the runner author's check of an extent list).
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { promisify } from 'util';

const run = promisify(execFile);
const CLI = path.join(__dirname, '..', '..', 'bin', 'starnix-pager');

async function cli(args: string[]): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  try {
    const r = await run(CLI, args, { encoding: 'buffer' });
    return { code: 0, stdout: r.stdout, stderr: r.stderr.toString() };
  } catch (e) {
    const x = e as { code?: number; stdout?: Buffer; stderr?: Buffer };
    if (typeof x.code !== 'number') throw e;
    return { code: x.code, stdout: x.stdout ?? Buffer.alloc(0), stderr: (x.stderr ?? Buffer.alloc(0)).toString() };
  }
}

let tmp: string;
let backing: string;
const BLOCK = 1024;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-map-'));
  backing = path.join(tmp, 'backing.img');
  // Block b of the backing holds the byte (b % 251) + 1 throughout: every block is recognisable.
  const buf = Buffer.alloc(64 * BLOCK);
  for (let b = 0; b < 64; b++) buf.fill((b % 251) + 1, b * BLOCK, (b + 1) * BLOCK);
  fs.writeFileSync(backing, buf);
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** What the file must read as: logical blocks from the extents, zeros in holes and past them. */
function expected(size: number, extents: [number, number, number][]): Buffer {
  const out = Buffer.alloc(size);
  for (const [l0, l1, p] of extents) {
    for (let b = l0; b < l1; b++) out.fill(((p + b - l0) % 251) + 1, b * BLOCK, Math.min((b + 1) * BLOCK, size));
  }
  return out;
}

test('extents with holes around them, a size ending mid-block', async () => {
  const size = 20 * BLOCK + 100;
  const r = await cli(['map', '--backing', backing, '--block-size', String(BLOCK), '--size', String(size), '--extents', '2-5:10,9-10:40,12-21:0']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout.equals(expected(size, [[2, 5, 10], [9, 10, 40], [12, 21, 0]]))).toBe(true);
});

test('--offset and --length select a range', async () => {
  const size = 16 * BLOCK;
  const r = await cli(['map', '--backing', backing, '--block-size', String(BLOCK), '--size', String(size), '--extents', '0-16:3', '--offset', '5000', '--length', '3000']);
  expect(r.code).toBe(0);
  expect(r.stdout.equals(expected(size, [[0, 16, 3]]).subarray(5000, 8000))).toBe(true);
});

test.each([
  ['a malformed extent', ['--block-size', '1024', '--size', '4096', '--extents', '1-x:3'], 2, /bad extent/],
  ['a missing option', ['--block-size', '1024', '--extents', '0-1:0'], 2, /needs --size/],
  ['extents out of order', ['--block-size', '1024', '--size', '4096', '--extents', '4-5:0,1-2:0'], 1, /ZX_ERR_INVALID_ARGS/],
  ['an extent past the backing', ['--block-size', '1024', '--size', '4096', '--extents', '0-2:63'], 1, /ZX_ERR_INVALID_ARGS/],
  ['a block size that is not a power of two', ['--block-size', '1000', '--size', '4096', '--extents', '0-1:0'], 1, /ZX_ERR_INVALID_ARGS/],
])('%s', async (_what, args, code, message) => {
  const r = await cli(['map', '--backing', backing, ...args]);
  expect(r.code).toBe(code);
  expect(r.stderr).toMatch(message);
  expect(r.stdout.length).toBe(0);
});
