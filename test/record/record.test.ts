// `serve --record FILE` and `starnix-pager inspect FILE`: a real server process records a real
// CLI `cat` and a hostile client's message; inspect must show the conversation in order, decoded,
// the hostile message as undecodable with its error, a cut-short file as truncated, and the size
// bound and a full disk must stop the recording without costing any client its request.
import { ChildProcess, execFile, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { promisify } from 'util';
import { Packr } from 'msgpackr';
import * as runner from '../../src/gen/fuchsia_starnix_runner';
import { InspectedMessage } from '../../src/record/inspect';
import { RECORD_FORMAT, recordPackOptions } from '../../src/record/format';
import { RawPeer } from '../hostile/raw_peer';
import { makeImage, seededBytes } from '../support/images';

const run = promisify(execFile);
const CLI = path.join(__dirname, '..', '..', 'bin', 'starnix-pager');

interface Out { code: number; stdout: Buffer; stderr: string }

async function cli(args: string[]): Promise<Out> {
  try {
    const r = await run(CLI, args, { encoding: 'buffer', maxBuffer: 1 << 26 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr.toString() };
  } catch (e) {
    const x = e as { code?: number; stdout?: Buffer; stderr?: Buffer };
    if (typeof x.code !== 'number') throw e;
    return { code: x.code, stdout: x.stdout ?? Buffer.alloc(0), stderr: (x.stderr ?? Buffer.alloc(0)).toString() };
  }
}

/** A `serve` child process; its stderr is kept for assertions, never printed. */
class Server {
  stderr = '';
  private constructor(readonly proc: ChildProcess, readonly svcDir: string) {
    proc.stderr!.on('data', (d: Buffer) => { this.stderr += d.toString(); });
  }

  static async start(svcDir: string, extra: string[]): Promise<Server> {
    const proc = spawn(CLI, ['serve', '--svc-dir', svcDir, '--log-level', 'warn', ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
    const s = new Server(proc, svcDir);
    const deadline = Date.now() + 10_000;
    while (!fs.existsSync(path.join(svcDir, runner.ManagerDiscoverableName))) {
      if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`the server did not start: ${s.stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return s;
  }

  async stop(): Promise<number | null> {
    if (this.proc.exitCode !== null) return this.proc.exitCode;
    const exited = new Promise<number | null>((r) => this.proc.once('exit', (code) => r(code)));
    this.proc.kill('SIGTERM');
    return exited;
  }
}

async function inspectJson(file: string, extra: string[] = []): Promise<{ out: Out; messages: InspectedMessage[] }> {
  const out = await cli(['inspect', file, '--json', ...extra]);
  const messages = out.stdout.toString().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as InspectedMessage);
  return { out, messages };
}

let tmp: string;
let image: string;
let content: Buffer;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'record-'));
  const src = path.join(tmp, 'src');
  fs.mkdirSync(src);
  content = seededBytes(14, 3 * 1024 * 1024 + 123);
  fs.writeFileSync(path.join(src, 'data.bin'), content);
  image = path.join(tmp, 'img.ext4');
  makeImage({ dir: src, out: image, sizeMiB: 16 });
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('a recorded CLI cat and a hostile client', () => {
  let record: string;
  let server: Server;
  let messages: InspectedMessage[];
  let hostileHex: string;

  beforeAll(async () => {
    record = path.join(tmp, 'cat.rec');
    server = await Server.start(path.join(tmp, 'svc1'), ['--record', record]);
    const cat = await cli(['cat', image, '/data.bin', '--svc-dir', server.svcDir]);
    expect(cat.code).toBe(0);
    expect(cat.stdout.equals(content)).toBe(true);
    // A hostile client: a CreatePager whose body is 24 bytes of 0xff (no valid table).
    const peer = RawPeer.connect(server.svcDir, runner.ManagerDiscoverableName);
    const hostile = Buffer.alloc(16 + 24, 0xff);
    hostile.writeUInt32LE(0, 0);
    hostile.writeUInt16LE(2, 4);
    hostile.writeUInt8(0, 6);
    hostile.writeUInt8(1, 7);
    hostile.writeBigUInt64LE(runner.ManagerCreatePagerOrdinal, 8);
    hostileHex = hostile.toString('hex');
    peer.send(hostile);
    expect(await peer.closure()).toBe(-10); // INVALID_ARGS
    peer.close();
    expect(await server.stop()).toBe(0);
    const r = await inspectJson(record);
    expect(r.out.stderr).toBe('');
    expect(r.out.code).toBe(0);
    messages = r.messages;
  });

  test('inspect shows CreatePager, RegisterFile and its reply, AttachMapping, in order', () => {
    const cat = messages.filter((m) => m.pid === messages[0].pid); // the cat process's, not the hostile client's
    expect(cat.length).toBeLessThan(messages.length);
    const names = cat.map((m) => `${m.protocol.split('/')[1]} ${m.method ?? ''} ${m.kind}`);
    expect(names.slice(0, 5)).toEqual([
      'Manager CreatePager request',
      'Pager RegisterFile request',
      'Pager RegisterFile reply',
      'Mapper AttachMapping request',
      'Mapper AttachMapping reply',
    ]);
    const [create, register, registered, attach] = cat;
    expect(create.payload).toMatchObject({ block_size: expect.any(String), backing_vmo: { handle: 0 }, pager: { handle: 1 } });
    expect(create.handles).toEqual(['file READ', 'socket-seqpacket READ|WRITE']);
    expect(register.payload).toMatchObject({ name: '/data.bin', size: String(content.length) });
    expect(registered.replyTo).toBe(register.n);
    expect(registered.txid).toBe(register.txid);
    expect(registered.payload).toEqual({ tag: 'response', value: { vmo: { handle: 0 } } });
    expect(registered.handles).toEqual(['memfd READ']);
    expect(attach.handles).toEqual(['memfd READ', 'userfaultfd READ']);
    // The Pager channel came through the Manager connection: same client, its own connection number.
    expect(new Set([create.pid, register.pid, attach.pid]).size).toBe(1);
    expect(register.conn).not.toBe(create.conn);
  });

  test('the hostile message shows as undecodable with its error, then the epitaph', () => {
    const last = messages.slice(-2);
    expect(last[0]).toMatchObject({ kind: 'undecodable', method: 'CreatePager', dir: 'in' });
    // The decoder's own error: a table's element count of 0xff.. bytes is past 2^32-1.
    expect(last[0].error).toBe('FIDL decode error (size_overflow): count at 16 exceeds 2^32-1');
    expect(last[0].bytes).toBe(hostileHex); // the raw bytes, as sent
    expect(last[1]).toMatchObject({ kind: 'epitaph', dir: 'out', epitaph: expect.stringMatching(/INVALID_ARGS/) });
    expect(server.stderr).toMatch(/FIDL request failed to decode/);
  });

  test('--method and --connection select messages; the text form names methods', async () => {
    const r = await inspectJson(record, ['--method', 'RegisterFile']);
    expect(r.messages.map((m) => m.kind)).toEqual(['request', 'reply']);
    const conn = messages[0].conn;
    const byConn = await inspectJson(record, ['--connection', String(conn)]);
    expect(byConn.messages.every((m) => m.conn === conn)).toBe(true);
    const text = await cli(['inspect', record]);
    expect(text.code).toBe(0);
    expect(text.stdout.toString()).toMatch(/-> CreatePager request/);
    expect(text.stdout.toString()).toMatch(/<- RegisterFile reply txid \d+ \(reply to #2/);
    expect(text.stdout.toString()).toMatch(/UNDECODABLE CreatePager: /);
  });

  test('a truncated last record is reported after the whole ones', async () => {
    const cut = path.join(tmp, 'cut.rec');
    const bytes = fs.readFileSync(record);
    fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 3));
    const r = await inspectJson(cut);
    expect(r.out.code).toBe(1);
    expect(r.out.stderr).toMatch(/truncated record/);
    expect(r.messages.length).toBe(messages.length - 1);
  });
});

test('a message of a protocol inspect does not know is shown raw, not dropped', async () => {
  const file = path.join(tmp, 'unknown.rec');
  const packr = new Packr(recordPackOptions);
  const msg = Buffer.from('0100000002000001aabbccddeeff0011', 'hex');
  fs.writeFileSync(file, Buffer.concat([
    packr.pack({ type: 'header', format: RECORD_FORMAT, version: 1, pid: 1, startedAt: new Date().toISOString() }),
    packr.pack({ type: 'message', t: 1, conn: 7, protocol: 'example.other/Thing', pid: 1, uid: 0, dir: 'in', bytes: msg, handles: [] }),
  ]));
  const r = await inspectJson(file);
  expect(r.out.code).toBe(0);
  expect(r.messages).toEqual([expect.objectContaining({ kind: 'raw', conn: 7, bytes: msg.toString('hex'), error: expect.stringMatching(/not one inspect knows/) })]);
});

test('--record-max-bytes stops the recording with a warning; every request is still served', async () => {
  const record = path.join(tmp, 'small.rec');
  const server = await Server.start(path.join(tmp, 'svc2'), ['--record', record, '--record-max-bytes', '1024']);
  for (let i = 0; i < 3; i++) {
    const cat = await cli(['cat', image, '/data.bin', '--svc-dir', server.svcDir]);
    expect(cat.code).toBe(0);
    expect(cat.stdout.equals(content)).toBe(true);
  }
  expect(await server.stop()).toBe(0);
  expect(fs.statSync(record).size).toBeLessThanOrEqual(1024);
  expect(server.stderr.match(/recording stopped at its bound of 1024 bytes/g)).toHaveLength(1);
  const r = await inspectJson(record);
  expect(r.out.code).toBe(0);
  expect(r.out.stderr).toMatch(/recording stopped at its bound of 1024 bytes/);
  expect(r.messages.length).toBeGreaterThan(0);
});

test('a record file that cannot be created: one clear error at start-up', async () => {
  const r = await cli(['serve', '--svc-dir', path.join(tmp, 'svc3'), '--record', path.join(tmp, 'no', 'such', 'dir', 'x.rec')]);
  expect(r.code).toBe(1);
  expect(r.stderr.trim().split('\n').filter((l) => !/warning/.test(l))).toEqual([
    expect.stringMatching(/^starnix-pager: cannot serve in .*: cannot create the record file .*x\.rec: ENOENT/),
  ]);
  const usage = await cli(['serve', '--svc-dir', path.join(tmp, 'svc3'), '--record-max-bytes', '4096']);
  expect(usage.code).toBe(2);
});

// A full disk mid-recording: a 1-page tmpfs (mounting needs root, as the suite does).
const canMount = process.getuid?.() === 0;
(canMount ? test : test.skip)(`${canMount ? '' : '[skipped: mounting a tmpfs needs root] '}a full disk stops the recording with one warning; clients are served`, async () => {
  const mnt = path.join(tmp, 'full');
  fs.mkdirSync(mnt);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4k', 'tmpfs', mnt]);
  try {
    const record = path.join(mnt, 'full.rec');
    const server = await Server.start(path.join(tmp, 'svc4'), ['--record', record]);
    for (let i = 0; i < 8; i++) {
      const cat = await cli(['cat', image, '/data.bin', '--svc-dir', server.svcDir]);
      expect(cat.code).toBe(0);
      expect(cat.stdout.equals(content)).toBe(true);
    }
    expect(await server.stop()).toBe(0);
    expect(server.stderr.match(/recording stopped: ENOSPC/g)).toHaveLength(1);
    const r = await inspectJson(record);
    // The record cut by the full disk is reported; every whole one before it is shown.
    expect(r.messages.length).toBeGreaterThan(5);
    if (r.out.code !== 0) expect(r.out.stderr).toMatch(/truncated record/);
  } finally {
    execFileSync('umount', [mnt]);
  }
});
