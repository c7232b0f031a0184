// A hostile raw client against a live server (its own process): garbage, truncated and oversized
// messages, bad headers, ordinals and txids, too many or too few fds, fds of the wrong kind in
// every handle field. After each case the same server must serve a well-behaved client
// (register + map + read the right bytes) and its fd count must come back to its baseline.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PagerClientConnection, PagedFile, RemotePager } from '../../src/client';
import * as fidl from '../../src/fidl';
import * as runner from '../../src/gen/fuchsia_starnix_runner';
import * as mapperLib from '../../src/gen/starnix_pager';
import { native } from '../../src/native';
import { Channel } from '../../src/transport/channel';
import { Handle } from '../../src/transport/handle';
import { FdFactory, RawPeer, WRONG_KINDS, WrongKind, decodeReply, request } from './raw_peer';
import { prng, randInt } from '../support/random_values';
import { ServerProcess, TestImage, buildImage, expectFdsBack, removeImage, wellBehavedRead } from './support';

const ZX = { INVALID_ARGS: -10, WRONG_TYPE: -12, ACCESS_DENIED: -30, NOT_FOUND: -25, NO_RESOURCES: -3 };
const MANAGER = runner.ManagerDiscoverableName;
const MAPPER = mapperLib.MapperDiscoverableName;
const CreatePager = runner.ManagerMethods.CreatePager;
const RegisterFile = runner.PagerMethods.RegisterFile;
const AttachMapping = mapperLib.MapperMethods.AttachMapping;

let img: TestImage;
let svcDir: string;
let server: ServerProcess;
let baseline: number;
let fds: FdFactory;
let cases = 0;

beforeAll(async () => {
  img = buildImage([300_000, 5000, 70_000]);
  svcDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hostile-svc-'));
  server = await ServerProcess.start(path.join(svcDir, 'svc'));
  fds = new FdFactory();
  await fds.init();
  await wellBehavedRead(server.svcDir, img); // warms up whatever the server creates lazily
  await new Promise((r) => setTimeout(r, 200));
  baseline = server.fdCount();
}, 60_000);

afterAll(async () => {
  fds?.close();
  await server?.stop();
  if (img) removeImage(img);
  fs.rmSync(svcDir, { recursive: true, force: true });
});

/** After every hostile case: the server is alive, serves a good client, and leaks no fd. */
async function serverStillGood(what: string): Promise<void> {
  cases++;
  expect(server.alive).toBe(true);
  await wellBehavedRead(server.svcDir, img, cases % img.files.length);
  await expectFdsBack(server, baseline, what);
}

const backingHandle = (): Handle => new Handle(fs.openSync(img.image, 'r'));

/** CreatePager; blockSize null leaves the field out (undefined means the image's block size). */
function createPagerMessage(backing: Handle | undefined, pagerEnd: Handle | undefined, blockSize?: bigint | null): fidl.EncodedMessage {
  const bs = blockSize === null ? undefined : blockSize ?? BigInt(img.blockSize);
  return request(CreatePager, { backingVmo: backing, blockSize: bs, pager: pagerEnd });
}

/** A live pager channel made the normal way, for the cases aimed at the Pager protocol. */
function rawPager(): { manager: RawPeer; pager: RawPeer } {
  const manager = RawPeer.connect(server.svcDir, MANAGER);
  const [clientEnd, serverEnd] = Channel.pairHandles();
  const m = createPagerMessage(backingHandle(), serverEnd);
  manager.send(m.bytes, m.handles);
  return { manager, pager: new RawPeer(Channel.fromHandle(clientEnd)) };
}

function registration(i = 0) {
  const f = img.files[i];
  return { name: f.path, inodeNum: f.ino, size: f.size, extents: f.extents };
}

describe('garbage on the Manager socket', () => {
  test('random bytes (with and without a valid header, with random fds): INVALID_ARGS epitaph each time', async () => {
    const rng = prng(0xbad);
    for (let i = 0; i < 40; i++) {
      const peer = RawPeer.connect(server.svcDir, MANAGER);
      const bytes = Buffer.from(Array.from({ length: randInt(rng, 0, 300) }, () => randInt(rng, 0, 255)));
      if (i % 2 === 1 && bytes.length >= 16) {
        // A valid header in front of a random body: the body decoder gets the garbage.
        const h = createPagerMessage(undefined, undefined).bytes;
        Buffer.from(h.subarray(0, 16)).copy(bytes);
      }
      const handles = Array.from({ length: randInt(rng, 0, 3) }, () => fds.make(WRONG_KINDS[randInt(rng, 0, WRONG_KINDS.length - 1)]));
      peer.send(bytes, handles);
      expect(await peer.closure()).toBe(ZX.INVALID_ARGS);
    }
    await serverStillGood('random bytes');
  });

  test('every truncation of a valid CreatePager: INVALID_ARGS, the fds it carried are closed', async () => {
    const full = createPagerMessage(backingHandle(), Channel.pairHandles()[1]);
    const bytes = Uint8Array.from(full.bytes);
    for (const h of full.handles) h.close();
    for (let len = 0; len < bytes.length; len += len < 24 ? 1 : 8) {
      const peer = RawPeer.connect(server.svcDir, MANAGER);
      const [keep, serverEnd] = Channel.pairHandles();
      peer.send(bytes.subarray(0, len), [backingHandle(), serverEnd]);
      expect(await peer.closure()).toBe(ZX.INVALID_ARGS);
      keep.close();
    }
    await serverStillGood('truncated messages');
  });

  test('a message over 64 KiB (one datagram): the connection is closed', async () => {
    const fd = native.connectSocket(path.join(server.svcDir, MANAGER)) as number;
    try {
      const big = Buffer.alloc(70_000, 0xab);
      createPagerMessage(undefined, undefined).bytes.slice(0, 16).forEach((b, i) => (big[i] = b));
      fs.writeSync(fd, big); // write() on a SEQPACKET socket sends one datagram
      const r = await readUntilClosed(fd);
      expect(r).toBe('closed');
    } finally {
      fs.closeSync(fd);
    }
    // Exactly 65536 bytes is legal for the transport; the body is garbage: INVALID_ARGS.
    const peer = RawPeer.connect(server.svcDir, MANAGER);
    const max = Buffer.alloc(65536, 0xcd);
    Buffer.from(createPagerMessage(undefined, undefined).bytes.subarray(0, 16)).copy(max);
    peer.send(max);
    expect(await peer.closure()).toBe(ZX.INVALID_ARGS);
    await serverStillGood('oversized messages');
  });

  test('bad header: magic, at-rest flags (not wire format v2): INVALID_ARGS', async () => {
    for (const [at, value] of [[7, 0x00], [7, 0x02], [7, 0xff], [4, 0x00], [4, 0x01], [5, 0xff]] as const) {
      const peer = RawPeer.connect(server.svcDir, MANAGER);
      const [keep, serverEnd] = Channel.pairHandles();
      const m = createPagerMessage(backingHandle(), serverEnd);
      const bytes = Uint8Array.from(m.bytes);
      bytes[at] = value;
      // Byte 5 is the second at-rest flags byte: reserved, but the V2 bit is in byte 4, so it still decodes.
      peer.send(bytes, m.handles);
      if (at === 5) {
        const pager = new RawPeer(Channel.fromHandle(keep));
        const r = request(RegisterFile, registration(1), 7);
        pager.send(r.bytes, r.handles);
        const reply = decodeReply(RegisterFile, await pager.next());
        expect(reply.tag).toBe('response');
        (reply.value as { vmo: Handle }).vmo.close();
        const ev = await pager.next(100);
        expect(ev.type).toBe('timeout');
        pager.close();
        peer.close();
        continue;
      }
      expect(await peer.closure()).toBe(ZX.INVALID_ARGS);
      keep.close();
    }
    await serverStillGood('bad headers');
  });

  test('unknown ordinals: flexible one-way ignored, flexible two-way answered UNKNOWN_METHOD, strict closes with INVALID_ARGS', async () => {
    const peer = RawPeer.connect(server.svcDir, MANAGER);
    const ordinal = 0x1234_5678_9abc_def0n;
    peer.send(fidl.encodeMessage({ txid: 0, ordinal, flexible: true }, null, undefined).bytes, [fds.make('memfd')]);
    peer.send(fidl.encodeMessage({ txid: 77, ordinal, flexible: true }, null, undefined).bytes, [fds.make('pipe')]);
    const ev = await peer.next();
    expect(ev.type).toBe('message');
    if (ev.type !== 'message') return;
    expect(ev.header.txid).toBe(77);
    expect(fidl.decodeMessageBody(fidl.unknownMethodReply, ev.bytes, ev.handles)).toEqual({ tag: 'frameworkErr', value: -2 });
    // The connection still works: a CreatePager on it serves a file.
    const [clientEnd, serverEnd] = Channel.pairHandles();
    const m = createPagerMessage(backingHandle(), serverEnd);
    peer.send(m.bytes, m.handles);
    const pager = new RawPeer(Channel.fromHandle(clientEnd));
    const r = request(RegisterFile, registration(), 5);
    pager.send(r.bytes, r.handles);
    const reply = decodeReply(RegisterFile, await pager.next());
    expect(reply.tag).toBe('response');
    (reply.value as { vmo: Handle }).vmo.close();
    pager.close();
    // Strict unknown method: the connection is closed.
    peer.send(fidl.encodeMessage({ txid: 0, ordinal, flexible: false }, null, undefined).bytes);
    expect(await peer.closure()).toBe(ZX.INVALID_ARGS);
    // The epitaph ordinal sent as a request.
    const peer2 = RawPeer.connect(server.svcDir, MANAGER);
    peer2.send(fidl.encodeEpitaph(-1));
    expect(await peer2.closure()).toBe(ZX.INVALID_ARGS);
    await serverStillGood('unknown ordinals');
  });

  test('bad txids: a one-way call with a txid, a two-way call without one: INVALID_ARGS', async () => {
    const peer = RawPeer.connect(server.svcDir, MANAGER);
    const [keep, serverEnd] = Channel.pairHandles();
    const m = request(CreatePager, { backingVmo: backingHandle(), blockSize: BigInt(img.blockSize), pager: serverEnd }, 42);
    peer.send(m.bytes, m.handles);
    expect(await peer.closure()).toBe(ZX.INVALID_ARGS);
    keep.close();
    const { manager, pager } = rawPager();
    const r = request(RegisterFile, registration(), 0);
    pager.send(r.bytes, r.handles);
    expect(await pager.closure()).toBe(ZX.INVALID_ARGS);
    // Two calls with the same txid in flight: both answered, nothing breaks.
    const second = rawPager();
    for (let i = 0; i < 2; i++) {
      const q = request(RegisterFile, registration(i), 9);
      second.pager.send(q.bytes, q.handles);
    }
    for (let i = 0; i < 2; i++) {
      const reply = decodeReply(RegisterFile, await second.pager.next());
      expect(reply.tag).toBe('response');
      (reply.value as { vmo: Handle }).vmo.close();
    }
    second.pager.close();
    second.manager.close();
    manager.close();
    await serverStillGood('bad txids');
  });

  test('too many and too few fds for CreatePager: INVALID_ARGS, every fd closed', async () => {
    for (const extra of [[fds.make('memfd')], [fds.make('pipe'), fds.make('directory'), fds.make('uffd')]]) {
      const peer = RawPeer.connect(server.svcDir, MANAGER);
      const [keep, serverEnd] = Channel.pairHandles();
      const m = createPagerMessage(backingHandle(), serverEnd);
      peer.send(m.bytes, [...m.handles, ...extra]);
      expect(await peer.closure()).toBe(ZX.INVALID_ARGS);
      keep.close();
    }
    for (const n of [0, 1]) {
      const peer = RawPeer.connect(server.svcDir, MANAGER);
      const [keep, serverEnd] = Channel.pairHandles();
      const m = createPagerMessage(backingHandle(), serverEnd);
      const sent = m.handles.slice(0, n);
      for (const h of m.handles.slice(n)) h.close();
      peer.send(m.bytes, sent);
      expect(await peer.closure()).toBe(ZX.INVALID_ARGS);
      keep.close();
    }
    await serverStillGood('fd count mismatches');
  });

  test('over 64 fds in one message (a foreign peer): the connection is closed, none kept', async () => {
    const fd = native.connectSocket(path.join(server.svcDir, MANAGER)) as number;
    const script = [
      'import os, socket, sys',
      's = socket.socket(fileno=3)',
      "fds = [os.open('/dev/null', os.O_RDONLY) for _ in range(70)]",
      "hdr = bytes([0,0,0,0, 2,0,0x80,1]) + (0x49d14958b736198b).to_bytes(8, 'little')",
      'socket.send_fds(s, [hdr + bytes(16)], fds)',
      's.settimeout(3)',
      'try:',
      '    d = s.recv(100)',
      "    print('closed' if d == b'' else 'data')",
      'except Exception as e:',
      "    print('error', e)",
    ].join('\n');
    const out = await new Promise<string>((resolve) => {
      const py = spawn('python3', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit', fd] });
      let text = '';
      py.stdout!.on('data', (d) => (text += d));
      py.on('exit', () => resolve(text.trim()));
    });
    fs.closeSync(fd);
    expect(out).toBe('closed');
    await serverStillGood('70 fds');
  });
});

describe('fds of the wrong kind in every handle field', () => {
  const backingExpect: Record<WrongKind, number | 'accepted'> = {
    pipe: ZX.WRONG_TYPE,
    directory: ZX.WRONG_TYPE,
    'stream socket': ZX.WRONG_TYPE,
    '/dev/zero': ZX.WRONG_TYPE,
    'write-only file': ZX.ACCESS_DENIED,
    'empty file': 'accepted',
    uffd: ZX.WRONG_TYPE,
    memfd: 'accepted',
    'seqpacket socket': ZX.WRONG_TYPE,
  };

  test.each(WRONG_KINDS)('CreatePager backing_vmo = %s: the new Pager channel gets the documented epitaph, the Manager stays', async (kind) => {
    const manager = RawPeer.connect(server.svcDir, MANAGER);
    const [clientEnd, serverEnd] = Channel.pairHandles();
    const m = createPagerMessage(fds.make(kind), serverEnd);
    manager.send(m.bytes, m.handles);
    const pager = new RawPeer(Channel.fromHandle(clientEnd));
    const want = backingExpect[kind];
    if (want === 'accepted') {
      // An empty file or a blank memfd is a valid (if empty) backing: extents into it are
      // refused, a file with no extents reads as zeros.
      const r = request(RegisterFile, registration(), 3);
      pager.send(r.bytes, r.handles);
      expect(decodeReply(RegisterFile, await pager.next())).toEqual({ tag: 'err', value: ZX.INVALID_ARGS });
      const z = request(RegisterFile, { name: 'zeros', inodeNum: 99, size: 5000n, extents: [] }, 4);
      pager.send(z.bytes, z.handles);
      const ok = decodeReply(RegisterFile, await pager.next());
      expect(ok.tag).toBe('response');
      (ok.value as { vmo: Handle }).vmo.close();
      pager.close();
    } else {
      expect(await pager.closure()).toBe(want);
    }
    // The Manager connection is untouched: a good CreatePager on it still works.
    const [c2, s2] = Channel.pairHandles();
    const good = createPagerMessage(backingHandle(), s2);
    manager.send(good.bytes, good.handles);
    const p2 = new RawPeer(Channel.fromHandle(c2));
    const r = request(RegisterFile, registration(), 8);
    p2.send(r.bytes, r.handles);
    const reply = decodeReply(RegisterFile, await p2.next());
    expect(reply.tag).toBe('response');
    (reply.value as { vmo: Handle }).vmo.close();
    p2.close();
    manager.close();
    await serverStillGood(`backing_vmo = ${kind}`);
  });

  test.each(WRONG_KINDS.filter((k) => k !== 'seqpacket socket'))('CreatePager pager = %s: the Manager connection closes with INVALID_ARGS', async (kind) => {
    const manager = RawPeer.connect(server.svcDir, MANAGER);
    const m = createPagerMessage(backingHandle(), fds.make(kind));
    manager.send(m.bytes, m.handles);
    expect(await manager.closure()).toBe(ZX.INVALID_ARGS);
    await serverStillGood(`pager = ${kind}`);
  });

  test('CreatePager without a pager, or without a backing, or with a bad block size', async () => {
    // No server_end: nothing to answer on; the backing is closed, the Manager stays.
    const manager = RawPeer.connect(server.svcDir, MANAGER);
    const m = createPagerMessage(backingHandle(), undefined);
    manager.send(m.bytes, m.handles);
    for (const [backing, bs] of [[undefined, 4096n], [backingHandle(), null], [backingHandle(), 0n], [backingHandle(), 3000n], [backingHandle(), 1n << 40n]] as const) {
      const [clientEnd, serverEnd] = Channel.pairHandles();
      const q = createPagerMessage(backing, serverEnd, bs);
      manager.send(q.bytes, q.handles);
      const pager = new RawPeer(Channel.fromHandle(clientEnd));
      expect(await pager.closure()).toBe(ZX.INVALID_ARGS);
    }
    expect((await manager.next(100)).type).toBe('timeout');
    manager.close();
    await serverStillGood('CreatePager missing fields');
  });

  test.each(WRONG_KINDS)('RegisterFile carrying a %s (no handles expected): the Pager channel closes with INVALID_ARGS', async (kind) => {
    const { manager, pager } = rawPager();
    const r = request(RegisterFile, registration(), 11);
    pager.send(r.bytes, [fds.make(kind)]);
    expect(await pager.closure()).toBe(ZX.INVALID_ARGS);
    manager.close();
    await serverStillGood(`RegisterFile + ${kind}`);
  });

  describe('AttachMapping', () => {
    let client: PagerClientConnection;
    let file: PagedFile;
    let pager: RemotePager;
    beforeAll(async () => {
      client = PagerClientConnection.connect(server.svcDir);
      pager = client.createPager(fs.openSync(img.image, 'r'), img.blockSize);
      const f = img.files[0];
      file = await pager.registerFile({ name: f.path, inode: f.ino, size: f.size, extents: f.extents });
      // The file, its pager and the connections held here are the new baseline for these cases.
      await wellBehavedRead(server.svcDir, img);
      await new Promise((r) => setTimeout(r, 200));
      outerBaseline = baseline;
      baseline = server.fdCount();
    });
    let outerBaseline = 0;
    afterAll(async () => {
      file?.close();
      pager?.close();
      client?.close();
      baseline = outerBaseline;
      await expectFdsBack(server, baseline, 'the AttachMapping cases');
    });

    const attach = (vmo: Handle | undefined, uffd: Handle | undefined, address = 0x7000_0000_0000n, length = 4096n, offset = 0n) =>
      request(AttachMapping, { vmo, uffd, address, length, offset });

    // The vmo field is a zx.Handle:VMO: a memfd, regular file or block device passes the codec and
    // is then looked up among the pager's files (NOT_FOUND); anything else fails to decode.
    const vmoExpect: Record<WrongKind, 'closed' | number> = {
      pipe: 'closed',
      directory: 'closed',
      'stream socket': 'closed',
      '/dev/zero': 'closed',
      uffd: 'closed',
      'seqpacket socket': 'closed',
      'write-only file': ZX.NOT_FOUND,
      'empty file': ZX.NOT_FOUND,
      memfd: ZX.NOT_FOUND,
    };

    test.each(WRONG_KINDS)('vmo = %s', async (kind) => {
      const peer = RawPeer.connect(server.svcDir, MAPPER);
      const m = attach(fds.make(kind), fds.make('uffd'));
      peer.send(m.bytes, m.handles);
      if (vmoExpect[kind] === 'closed') {
        expect(await peer.closure()).toBe(ZX.INVALID_ARGS);
      } else {
        expect(decodeReply(AttachMapping, await peer.next())).toEqual({ tag: 'err', value: vmoExpect[kind] });
        peer.close();
      }
      await serverStillGood(`AttachMapping vmo = ${kind}`);
    });

    test.each(WRONG_KINDS.filter((k) => k !== 'uffd'))('uffd = %s: WRONG_TYPE', async (kind) => {
      const peer = RawPeer.connect(server.svcDir, MAPPER);
      const m = attach(file.handle.duplicate(), fds.make(kind));
      peer.send(m.bytes, m.handles);
      expect(decodeReply(AttachMapping, await peer.next())).toEqual({ tag: 'err', value: ZX.WRONG_TYPE });
      peer.close();
      await serverStillGood(`AttachMapping uffd = ${kind}`);
    });

    test('bad ranges (unaligned, empty, overflowing, past the file), missing fields: INVALID_ARGS', async () => {
      const peer = RawPeer.connect(server.svcDir, MAPPER);
      const bad: [bigint, bigint, bigint][] = [
        [0x7000_0000_0001n, 4096n, 0n],
        [0x7000_0000_0000n, 0n, 0n],
        [0x7000_0000_0000n, 4095n, 0n],
        [0xffff_ffff_ffff_f000n, 8192n, 0n],
        [0x7000_0000_0000n, 4096n, 0xffff_ffff_ffff_f000n],
        [0x7000_0000_0000n, 1n << 40n, 0n],
      ];
      for (const [address, length, offset] of bad) {
        const m = attach(file.handle.duplicate(), fds.make('uffd'), address, length, offset);
        peer.send(m.bytes, m.handles);
        expect(decodeReply(AttachMapping, await peer.next())).toEqual({ tag: 'err', value: ZX.INVALID_ARGS });
      }
      const missing = request(AttachMapping, { vmo: file.handle.duplicate(), address: 0n, length: 4096n, offset: 0n });
      peer.send(missing.bytes, missing.handles);
      expect(decodeReply(AttachMapping, await peer.next())).toEqual({ tag: 'err', value: ZX.INVALID_ARGS });
      peer.close();
      await serverStillGood('AttachMapping bad ranges');
    });
  });
});

/** Reads a raw SEQPACKET fd until EOF (the server closed), with a deadline. */
async function readUntilClosed(fd: number, timeoutMs = 3000): Promise<'closed' | 'timeout'> {
  const deadline = Date.now() + timeoutMs;
  const buf = Buffer.alloc(65536);
  while (Date.now() < deadline) {
    try {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) return 'closed';
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ECONNRESET') return 'closed';
      if (code !== 'EAGAIN') throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return 'timeout';
}
