// Real ext4 images end to end through the CLI: images made by mkfs.ext4 -d / mkfs.ext2 from a
// folder whose files are the oracle; every regular file read with `starnix-pager cat` (through a
// running server, and through the embedded one) must equal its source by SHA-256.
import { ChildProcess, execFile, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { promisify } from 'util';
import { debugfsExtents, makeFixtureTree, makeImage, sha256 } from '../support/images';

const run = promisify(execFile);
const CLI = path.join(__dirname, '..', '..', 'bin', 'starnix-pager');

interface Out { code: number; stdout: Buffer; stderr: string }

async function cli(args: string[]): Promise<Out> {
  try {
    const r = await run(CLI, args, { encoding: 'buffer', maxBuffer: 1 << 28 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr.toString() };
  } catch (e) {
    const x = e as { code?: number; stdout?: Buffer; stderr?: Buffer };
    if (typeof x.code !== 'number') throw e;
    return { code: x.code, stdout: x.stdout ?? Buffer.alloc(0), stderr: (x.stderr ?? Buffer.alloc(0)).toString() };
  }
}

/** Runs fn over items, n at a time (the machine has 2 cores; CLI runs are processes). */
async function eachLimited<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

let tmp: string;
let src: string;
let tree: ReturnType<typeof makeFixtureTree>;
let svcDir: string;
let server: ChildProcess;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-images-'));
  src = path.join(tmp, 'src');
  fs.mkdirSync(src);
  tree = makeFixtureTree(src);
  svcDir = path.join(tmp, 'svc');
  server = spawn(CLI, ['serve', '--svc-dir', svcDir], { stdio: ['ignore', 'ignore', 'pipe'] });
  const deadline = Date.now() + 10_000;
  while (!fs.existsSync(path.join(svcDir, 'fuchsia.starnix.runner.Manager'))) {
    if (Date.now() > deadline) throw new Error('the server did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
});

afterAll(async () => {
  if (server.exitCode === null) {
    const exited = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
    server.kill('SIGTERM');
    expect(await exited).toBe(0);
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

const IMAGES: { name: string; opts: Partial<Parameters<typeof makeImage>[0]> }[] = [
  { name: 'ext4-1k', opts: { blockSize: 1024, sizeMiB: 96, extraArgs: ['-g', '1024'] } },
  { name: 'ext4-2k', opts: { blockSize: 2048, sizeMiB: 96 } },
  { name: 'ext4-4k', opts: { blockSize: 4096, sizeMiB: 96 } },
  { name: 'ext2-1k', opts: { blockSize: 1024, sizeMiB: 96, fsType: 'ext2' } },
  { name: 'ext4-4k-inline', opts: { blockSize: 4096, sizeMiB: 96, features: 'inline_data' } },
];

describe.each(IMAGES)('$name', ({ name, opts }) => {
  let image: string;
  beforeAll(() => {
    image = path.join(tmp, `${name}.img`);
    makeImage({ dir: src, out: image, ...opts });
  });

  test('every regular file through `cat --svc-dir` (a running server) equals its source', async () => {
    // The 500 small files of the big folder are checked by the embedded-server test below
    // in a sample: spawning a CLI per file for all of them would dominate the suite's time.
    const files = tree.files.filter((f) => !f.startsWith(tree.bigDir + '/'));
    expect(files.length).toBeGreaterThan(10);
    const mismatches: string[] = [];
    await eachLimited(files, 3, async (f) => {
      const r = await cli(['cat', '--svc-dir', svcDir, image, '/' + f]);
      const want = sha256(fs.readFileSync(path.join(src, f)));
      // mke2fs 1.47.0 with inline_data cuts a trailing hole off one file; that image's
      // truth for it is the image (checked against debugfs by the ext4 suite), so skip it here.
      if (name.includes('inline') && f === 'sparse-tail') return;
      if (r.code !== 0) mismatches.push(`${f}: exit ${r.code}: ${r.stderr.trim()}`);
      else if (sha256(r.stdout) !== want) mismatches.push(`${f}: sha256 differs (${r.stdout.length} bytes)`);
    });
    expect(mismatches).toEqual([]);
  });

  test('the embedded server (no --svc-dir) reads the extent-tree file and a sample of the big folder', async () => {
    const sample = [tree.manyExtentsFile, tree.sparseFile, ...tree.files.filter((f) => f.startsWith(tree.bigDir + '/')).slice(0, 3)];
    for (const f of sample) {
      const r = await cli(['cat', image, '/' + f]);
      expect({ f, code: r.code, stderr: r.stderr }).toEqual({ f, code: 0, stderr: '' });
      expect(sha256(r.stdout)).toBe(sha256(fs.readFileSync(path.join(src, f))));
    }
  });

  test('stat lists the extents debugfs sees; ls lists the folder', async () => {
    const r = await cli(['stat', '--json', image, '/' + tree.manyExtentsFile]);
    expect(r.code).toBe(0);
    const st = JSON.parse(r.stdout.toString());
    if (opts.fsType !== 'ext2') {
      const oracle = debugfsExtents(image, '/' + tree.manyExtentsFile);
      expect(oracle.depth).toBeGreaterThanOrEqual(1);
      const blocks = (xs: { logicalStart: number; logicalEnd: number }[]) => xs.reduce((n, e) => n + e.logicalEnd - e.logicalStart, 0);
      expect(blocks(st.extents)).toBe(oracle.extents.reduce((n, e) => n + (e.logicalEnd - e.logicalStart), 0));
    }
    const ls = await cli(['ls', image, '/']);
    expect(ls.code).toBe(0);
    const names = ls.stdout.toString().trim().split('\n').map((l) => l.split(/\s+/)[4]);
    for (const top of fs.readdirSync(src)) expect(names).toContain(top);
  });
});

describe('failures say what went wrong, with the documented exit status', () => {
  let image: string;
  beforeAll(() => {
    image = path.join(tmp, 'errors.img');
    makeImage({ dir: src, out: image, blockSize: 4096, sizeMiB: 96 });
  });

  test.each([
    ['no such image', ['cat', '/nonexistent.img', '/x'], 1, /no such image/],
    ['not ext4', ['cat', '/etc/hostname', '/x'], 1, /not a readable ext4 image/],
    ['no such path', ['cat', 'IMAGE', '/no/such/file'], 1, /no such path/],
    ['a directory', ['cat', 'IMAGE', '/nested'], 1, /is a directory/],
    ['server unreachable', ['cat', '--svc-dir', '/nonexistent-svc', 'IMAGE', '/one-byte'], 1, /server unreachable/],
    ['usage: missing PATH', ['cat', 'IMAGE'], 2, /usage/],
    ['usage: unknown command', ['frobnicate'], 2, /unknown command/],
    ['usage: unknown option', ['ls', '--bogus', 'IMAGE'], 2, /unknown option --bogus/],
  ])('%s', async (_what, args, code, message) => {
    const r = await cli(args.map((a) => (a === 'IMAGE' ? image : a)));
    expect(r.code).toBe(code);
    expect(r.stderr).toMatch(message);
    if (code === 1) expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
