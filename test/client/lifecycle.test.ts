// The library's objects as a program holds them: an embedded service, a connection, a pager, a
// file and a mapping, closed in every order (all 120), each leaving no fd behind and nothing
// hanging; `using` closes them; an idle embedded service never holds up the process's exit and
// leaves no folder in TMPDIR.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { EmbeddedService, Ext4Image, FileMapping, PagedFile, PagerClientConnection, RemotePager } from '../../src';
import { makeImage, seededBytes } from '../support/images';
import { openFdCount } from '../transport/helpers';

let tmp: string;
let imagePath: string;
let content: Buffer;
let image: Ext4Image;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lifecycle-'));
  const src = path.join(tmp, 'src');
  fs.mkdirSync(src);
  content = seededBytes(5, 8 * 1024 * 1024 + 17);
  fs.writeFileSync(path.join(src, 'f.bin'), content);
  imagePath = path.join(tmp, 'img');
  makeImage({ dir: src, out: imagePath, blockSize: 4096, sizeMiB: 24 });
  image = Ext4Image.open(imagePath);
});
afterAll(() => {
  image.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

interface Stack {
  embedded: EmbeddedService;
  connection: PagerClientConnection;
  pager: RemotePager;
  file: PagedFile;
  mapping: FileMapping;
}

async function openStack(): Promise<Stack> {
  const embedded = EmbeddedService.start({ threads: 1 });
  const connection = PagerClientConnection.connect(embedded.svcDir);
  const pager = connection.createPager(fs.openSync(imagePath, 'r'), image.blockSize);
  const st = image.stat(image.lookup('/f.bin'));
  const file = await pager.registerFile({ name: '/f.bin', inode: st.ino, size: st.size, extents: st.extents ?? [] });
  const mapping = await file.map();
  return { embedded, connection, pager, file, mapping };
}

function permutations<T>(xs: T[]): T[][] {
  if (xs.length <= 1) return [xs];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((rest) => [x, ...rest]));
}

const NAMES = ['embedded', 'connection', 'pager', 'file', 'mapping'] as const;

test('every order of closing the five leaves no fd and no folder behind, and nothing hangs', async () => {
  // One stack opened and closed first: the pagers' process-wide inotify instance (made at the
  // first registration, kept for the process) is then part of the baseline, not a leak.
  {
    const warm = await openStack();
    for (const name of [...NAMES].reverse()) warm[name].close();
  }
  const before = openFdCount();
  const orders = permutations([...NAMES]);
  expect(orders).toHaveLength(120);
  for (const order of orders) {
    const stack = await openStack();
    const dir = stack.embedded.svcDir;
    // One page read through the pager, so every piece has done its work before the closing starts.
    expect(stack.mapping.read(4096, 100).equals(content.subarray(4096, 4196))).toBe(true);
    for (const name of order) {
      stack[name].close();
      // What is still open keeps working as documented: the mapping reads (its pages come from
      // the pager, or, once the service is gone, fail with EPIPE rather than hang or read zeros).
      if (!order.slice(0, order.indexOf(name) + 1).includes('mapping')) {
        const serviceGone = order.slice(0, order.indexOf(name) + 1).includes('embedded');
        // A page not read before, far from those that were (so no read-ahead window has filled it).
        const offset = (7 - order.indexOf(name)) * 1024 * 1024 + 12345;
        if (serviceGone) {
          await expect(stack.mapping.readAsync(offset, 10)).rejects.toMatchObject({ code: 'EPIPE' });
        } else {
          expect((await stack.mapping.readAsync(offset, 10)).equals(content.subarray(offset, offset + 10))).toBe(true);
        }
      }
    }
    for (const name of NAMES) stack[name].close(); // a second close() is harmless
    expect({ order, folder: fs.existsSync(dir) }).toEqual({ order, folder: false });
  }
  // Closing is synchronous, but a few fds (the pagers' threads' own, the server sides of the
  // channels) go on the next turns of the event loop.
  // (Not toBe: jest's own fds come and go meanwhile. A leak of one fd per order would be 120.)
  for (let i = 0; i < 100 && openFdCount() > before; i++) await new Promise((r) => setTimeout(r, 20));
  expect(openFdCount()).toBeLessThanOrEqual(before);
}, 240_000);

test('`using` closes each in reverse order of opening', async () => {
  const before = openFdCount();
  let dir: string;
  {
    using embedded = EmbeddedService.start({ threads: 1 });
    dir = embedded.svcDir;
    using connection = PagerClientConnection.connect(embedded.svcDir);
    using pager = connection.createPager(fs.openSync(imagePath, 'r'), image.blockSize);
    const st = image.stat(image.lookup('/f.bin'));
    using file = await pager.registerFile({ name: '/f.bin', inode: st.ino, size: st.size, extents: st.extents ?? [] });
    using mapping = await file.map();
    expect(mapping.read(0, 64).equals(content.subarray(0, 64))).toBe(true);
  }
  expect(fs.existsSync(dir)).toBe(false);
  for (let i = 0; i < 100 && openFdCount() > before; i++) await new Promise((r) => setTimeout(r, 20));
  expect(openFdCount()).toBeLessThanOrEqual(before);
});

/** Runs a program in a child node process, with its own TMPDIR; its exit code, time, and leftovers. */
function runChild(program: string): Promise<{ code: number | null; ms: number; leftovers: string[]; stderr: string }> {
  const childTmp = fs.mkdtempSync(path.join(tmp, 'child-tmp-'));
  const started = Date.now();
  const child = spawn(process.execPath, ['-e', program], {
    env: { ...process.env, TMPDIR: childTmp },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, ms: Date.now() - started, leftovers: fs.readdirSync(childTmp), stderr });
    }),
  );
}

const DIST = JSON.stringify(path.join(__dirname, '..', '..', 'dist', 'src'));

test('an idle embedded service never holds up exit, and its folder goes at exit without close()', async () => {
  // Started, used by a client that closes its own pieces, never closed itself.
  const used = await runChild(`
    const fs = require('fs');
    const { EmbeddedService, Ext4Image, PagerClientConnection } = require(${DIST});
    (async () => {
      const image = Ext4Image.open(${JSON.stringify(imagePath)});
      const st = image.stat(image.lookup('/f.bin'));
      const client = PagerClientConnection.connect(EmbeddedService.start().svcDir);
      const pager = client.createPager(fs.openSync(${JSON.stringify(imagePath)}, 'r'), image.blockSize);
      const file = await pager.registerFile({ name: '/f.bin', inode: st.ino, size: st.size, extents: st.extents ?? [] });
      const mapping = await file.map();
      await mapping.readAsync(0, 4096);
      mapping.close(); file.close(); pager.close(); client.close(); image.close();
    })();`);
  expect({ code: used.code, leftovers: used.leftovers, stderr: used.stderr }).toEqual({ code: 0, leftovers: [], stderr: '' });
  // Started and never used.
  const idle = await runChild(`require(${DIST}).EmbeddedService.start();`);
  expect({ code: idle.code, leftovers: idle.leftovers, stderr: idle.stderr }).toEqual({ code: 0, leftovers: [], stderr: '' });
});

test('a client left open keeps the process alive, as an open socket does (the documented contrast)', async () => {
  const r = await runChild(`
    const { EmbeddedService, PagerClientConnection } = require(${DIST});
    PagerClientConnection.connect(EmbeddedService.start().svcDir);
    setTimeout(() => { process.stderr.write('still alive'); process.exit(3); }, 1500).unref();`);
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 3, stderr: 'still alive' });
});
