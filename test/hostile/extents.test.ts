// Hostile extent lists and file sizes sent to a live server: each is refused with the documented
// status (README: extents sorted, not overlapping, non-empty, inside the backing, no 64-bit
// overflow, else INVALID_ARGS; at most 1024, else the request fails to decode: INVALID_ARGS
// epitaph), or works and reads back the right bytes.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PagerClientConnection } from '../../src/client';
import * as runner from '../../src/gen/fuchsia_starnix_runner';
import { Channel } from '../../src/transport/channel';
import { Handle } from '../../src/transport/handle';
import { RawPeer, decodeReply, request } from './raw_peer';
import { ServerProcess, TestImage, buildImage, expectFdsBack, removeImage, wellBehavedRead } from './support';

const INVALID_ARGS = -10;
const CreatePager = runner.ManagerMethods.CreatePager;
const RegisterFile = runner.PagerMethods.RegisterFile;
type Ext = runner.PagerExtent;
const ext = (logicalStart: number, logicalEnd: number, physicalBlock: bigint | number): Ext => ({ logicalStart, logicalEnd, physicalBlock: BigInt(physicalBlock) });

let img: TestImage;
let tmp: string;
let server: ServerProcess;
let baseline: number;
let backingBlocks: bigint;
let manager: RawPeer;
let pager: RawPeer;
let txid = 1;

beforeAll(async () => {
  img = buildImage([300_000, 9000]);
  backingBlocks = BigInt(fs.statSync(img.image).size) / BigInt(img.blockSize);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hostile-ext-'));
  server = await ServerProcess.start(path.join(tmp, 'svc'));
  await wellBehavedRead(server.svcDir, img);
  await new Promise((r) => setTimeout(r, 200));
  baseline = server.fdCount();
  manager = RawPeer.connect(server.svcDir, runner.ManagerDiscoverableName);
  pager = newPager();
}, 60_000);

afterAll(async () => {
  pager?.close();
  manager?.close();
  try {
    if (server) await expectFdsBack(server, baseline, 'the extent cases');
  } finally {
    await server?.stop();
    if (img) removeImage(img);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

function newPager(): RawPeer {
  const [clientEnd, serverEnd] = Channel.pairHandles();
  const m = request(CreatePager, { backingVmo: new Handle(fs.openSync(img.image, 'r')), blockSize: BigInt(img.blockSize), pager: serverEnd });
  manager.send(m.bytes, m.handles);
  return new RawPeer(Channel.fromHandle(clientEnd));
}

async function register(size: bigint, extents: Ext[], inodeNum = 1000 + txid, on: RawPeer = pager): Promise<{ tag: string; value: unknown }> {
  const r = request(RegisterFile, { name: `hostile-${txid}`, inodeNum, size, extents }, txid++);
  on.send(r.bytes, r.handles);
  const reply = decodeReply(RegisterFile, await on.next());
  if (reply.tag === 'response') (reply.value as { vmo: Handle }).vmo.close();
  return reply;
}

const refused = { tag: 'err', value: INVALID_ARGS };
const U64_MAX = (1n << 64n) - 1n;

test.each<[string, () => Ext[]]>([
  ['overlapping', () => [ext(0, 4, 10), ext(2, 6, 20)]],
  ['touching the previous one from behind (backwards)', () => [ext(4, 8, 10), ext(0, 4, 20)]],
  ['a duplicate', () => [ext(0, 4, 10), ext(0, 4, 10)]],
  ['an empty range', () => [ext(3, 3, 10)]],
  ['a reversed range', () => [ext(5, 3, 10)]],
  ['an empty range after good ones', () => [ext(0, 2, 10), ext(2, 2, 12)]],
  ['starting past the backing', () => [ext(0, 1, backingBlocks)]],
  ['running one block past the backing', () => [ext(0, 2, backingBlocks - 1n)]],
  ['physical block 2^64-1', () => [ext(0, 1, U64_MAX)]],
  ['physical block * block size overflowing 64 bits', () => [ext(0, 1, 1n << 52n)]],
  ['physical end overflowing 64 bits', () => [ext(0, 0xffffffff, (1n << 52n) - 1n)]],
  ['the whole 32-bit logical range', () => [ext(0, 0xffffffff, 0)]],
])('extents %s: INVALID_ARGS', async (_what, extents) => {
  // (Thunks: the backing's size is known only once the image is built.)
  expect(await register(65536n, extents())).toEqual(refused);
});

test('a backing that grew after CreatePager: extents in what it grew by are INVALID_ARGS (the pager reads only through its mapping of the backing)', async () => {
  const grown = path.join(tmp, 'grown.img');
  fs.copyFileSync(img.image, grown);
  const [clientEnd, serverEnd] = Channel.pairHandles();
  const m = request(CreatePager, { backingVmo: new Handle(fs.openSync(grown, 'r')), blockSize: BigInt(img.blockSize), pager: serverEnd });
  manager.send(m.bytes, m.handles);
  const grownPager = new RawPeer(Channel.fromHandle(clientEnd));
  const registerOn = (inodeNum: number, physicalBlock: bigint) => register(BigInt(img.blockSize), [ext(0, 1, physicalBlock)], inodeNum, grownPager);
  try {
    // A reply from the pager first: it has mapped the backing before the file grows.
    expect((await registerOn(4243, backingBlocks - 1n)).tag).toBe('response');
    fs.appendFileSync(grown, Buffer.alloc(16 * img.blockSize, 0x5a));
    expect(await registerOn(4242, backingBlocks)).toEqual(refused);
    // The part it had when the pager was made is still served.
    expect((await registerOn(4244, backingBlocks - 2n)).tag).toBe('response');
  } finally {
    grownPager.close();
    fs.rmSync(grown, { force: true });
  }
});

test('1025 extents: the request fails to decode (vector<PagerExtent>:1024), the Pager channel closes with INVALID_ARGS', async () => {
  // Our encoder refuses 1025, so encode 1024, bump the count and append a 1025th element (the
  // extents vector is the last out-of-line object of the message).
  const extents = Array.from({ length: 1024 }, (_, i) => ext(2 * i, 2 * i + 1, 1));
  const r = request(RegisterFile, { name: 'too-many', inodeNum: 5, size: 8n << 20n, extents }, txid++);
  const bytes = Buffer.concat([Buffer.from(r.bytes), Buffer.from(Uint8Array.from(r.bytes.subarray(r.bytes.length - 16)))]);
  let patched = 0;
  for (let o = 16; o + 16 <= bytes.length; o += 8) {
    if (bytes.readBigUInt64LE(o) === 1024n && bytes.readBigUInt64LE(o + 8) === U64_MAX) {
      bytes.writeBigUInt64LE(1025n, o);
      patched++;
    }
  }
  expect(patched).toBe(1);
  pager.send(bytes, r.handles);
  expect(await pager.closure()).toBe(INVALID_ARGS);
  pager = newPager();
});

test('1024 one-block extents with holes between: accepted, every block reads right', async () => {
  const f = img.files[0];
  const first = f.extents[0];
  const srcBlocks = first.logicalEnd - first.logicalStart; // blocks of f0 that are contiguous on disk
  const bs = img.blockSize;
  const extents = Array.from({ length: 1024 }, (_, i) => ext(2 * i, 2 * i + 1, first.physicalBlock + BigInt(i % srcBlocks)));
  const size = BigInt(2048 * bs - 100);
  const client = PagerClientConnection.connect(server.svcDir);
  try {
    const remote = client.createPager(fs.openSync(img.image, 'r'), bs);
    const file = await remote.registerFile({ name: 'holes', inode: 77, size, extents });
    const mapping = await file.map();
    const got = await mapping.readAsync(0, Number(size));
    const want = Buffer.alloc(Number(size));
    for (let i = 0; i < 1024; i++) {
      const srcOff = (first.logicalStart + (i % srcBlocks)) * bs;
      f.data.copy(want, 2 * i * bs, srcOff, Math.min(srcOff + bs, f.data.length));
    }
    expect(got.equals(want)).toBe(true);
    mapping.close();
    file.close();
    remote.close();
  } finally {
    client.close();
  }
});

// An empty file has no page to map (mmap refuses length 0): map() gives an empty mapping.
test('size 0: accepted; the file maps to nothing and reads as empty', async () => {
  expect((await register(0n, [])).tag).toBe('response');
  expect((await register(0n, [ext(0, 1, 1)])).tag).toBe('response'); // extents past the size are harmless
  const client = PagerClientConnection.connect(server.svcDir);
  try {
    const remote = client.createPager(fs.openSync(img.image, 'r'), img.blockSize);
    const file = await remote.registerFile({ name: 'empty', inode: 78, size: 0n, extents: [] });
    try {
      const mapping = await file.map();
      expect(mapping.read(0, 0).length).toBe(0);
      expect(() => mapping.read(0, 1)).toThrow(expect.objectContaining({ code: 'ERANGE' }));
      mapping.close();
    } finally {
      file.close();
      remote.close();
    }
  } finally {
    client.close();
  }
});

test('size 2^63 and 2^64-1: INVALID_ARGS (the pager caps sizes at 2^62)', async () => {
  expect(await register(1n << 63n, [])).toEqual(refused);
  expect(await register(U64_MAX, [ext(0, 1, 1)])).toEqual(refused);
});

test('size 2^62 (under the cap, far over the mapped-bytes budget): NO_RESOURCES, not a crash', async () => {
  const reply = await register(1n << 62n, []);
  // Each memfd is mapped whole in the server: a file of 4 EiB is refused by the budget of mapped
  // bytes (64 TiB in all by default) before anything is created.
  expect(reply).toEqual({ tag: 'err', value: -3 });
  await wellBehavedRead(server.svcDir, img, 1);
});

test('the same pager still serves a good registration after all of that', async () => {
  const f = img.files[1];
  expect((await register(f.size, f.extents, f.ino)).tag).toBe('response');
  await wellBehavedRead(server.svcDir, img, 1);
  expect(server.alive).toBe(true);
});
