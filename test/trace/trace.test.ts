// `--trace FILE`: a real server traced while a CLI `cat` reads a 64 MiB file for the first time.
// The file is decoded twice, independently: with the TypeScript generated from proto/ by
// protoc-gen-es, and with Debian's `protoc --decode` against the same .proto. The events must
// tell the read's story: one file_register, vmo_read windows whose bytes add up to the bytes the
// pager supplied, the FIDL spans, signal_zero_children once the client is gone, counters.
import { ChildProcess, execFile, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { promisify } from 'util';
import { fromBinary } from '@bufbuild/protobuf';
import * as runner from '../../src/gen/fuchsia_starnix_runner';
import { BuiltinClock, Trace, TraceSchema, TrackEvent, TrackEvent_Type } from '../../src/gen/perfetto/perfetto_trace_pb';
import { makeImage, seededBytes } from '../support/images';

const run = promisify(execFile);
const REPO = path.join(__dirname, '..', '..');
const CLI = path.join(REPO, 'bin', 'starnix-pager');
const PROTO_DIR = path.join(REPO, 'proto');
const MIB = 1024 * 1024;
const SIZE = 64 * MIB;

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

function hasProtoc(): boolean {
  try {
    execFileSync('protoc', ['--version'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

async function startServer(svcDir: string, trace: string): Promise<{ proc: ChildProcess; stderr: () => string }> {
  const proc = spawn(CLI, ['serve', '--svc-dir', svcDir, '--trace', trace], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const deadline = Date.now() + 10_000;
  while (!fs.existsSync(path.join(svcDir, runner.ManagerDiscoverableName))) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`the server did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { proc, stderr: () => err };
}

function exited(proc: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve({ code: proc.exitCode, signal: proc.signalCode });
  return new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
}

/** A trace's events by name, with their annotations as a plain object and their track's descriptor. */
interface Ev { ts: bigint; type: TrackEvent_Type; name: string; track: bigint; args: Record<string, string | bigint | boolean> }

function summarize(trace: Trace) {
  const tracks = new Map<bigint, { name?: string; pid?: number; tid?: number; threadName?: string; counter: boolean }>();
  const events: Ev[] = [];
  const counters = new Map<string, bigint[]>();
  for (const p of trace.packet) {
    if (p.data.case === 'trackDescriptor') {
      const d = p.data.value;
      tracks.set(d.uuid, { name: d.name, pid: d.thread?.pid, tid: d.thread?.tid, threadName: d.thread?.threadName, counter: d.counter !== undefined });
    }
  }
  for (const p of trace.packet) {
    if (p.data.case !== 'trackEvent') continue;
    const e: TrackEvent = p.data.value;
    if (e.type === TrackEvent_Type.COUNTER) {
      const name = tracks.get(e.trackUuid)?.name ?? '?';
      counters.set(name, [...(counters.get(name) ?? []), e.counterValue]);
      continue;
    }
    const args: Ev['args'] = {};
    for (const a of e.debugAnnotations) {
      if (a.nameField.case === 'name' && a.value.case !== undefined) args[a.nameField.value] = a.value.value;
    }
    events.push({ ts: p.timestamp, type: e.type, name: e.nameField.case === 'name' ? e.nameField.value : '', track: e.trackUuid, args });
  }
  return { tracks, events, counters };
}

let tmp: string;
let image: string;
let content: Buffer;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'trace-'));
  const src = path.join(tmp, 'src');
  fs.mkdirSync(src);
  content = seededBytes(64, SIZE);
  fs.writeFileSync(path.join(src, 'big.bin'), content);
  image = path.join(tmp, 'img.ext4');
  makeImage({ dir: src, out: image, sizeMiB: 80 });
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('a traced 64 MiB first read through a running server', () => {
  let tracePath: string;
  let bytes: Buffer;
  let trace: Trace;
  let serverPid: number;
  let catPid: number;

  beforeAll(async () => {
    tracePath = path.join(tmp, 'read.pftrace');
    const server = await startServer(path.join(tmp, 'svc1'), tracePath);
    serverPid = server.proc.pid!;
    const cat = spawn(CLI, ['cat', image, '/big.bin', '--svc-dir', path.join(tmp, 'svc1')], { stdio: ['ignore', 'pipe', 'pipe'] });
    catPid = cat.pid!;
    const chunks: Buffer[] = [];
    cat.stdout!.on('data', (d: Buffer) => chunks.push(d));
    expect((await exited(cat)).code).toBe(0);
    expect(Buffer.concat(chunks).equals(content)).toBe(true);
    // The file is forgotten once the client's handles are gone; the live trace is readable up to
    // its last packet meanwhile, so wait for the event there.
    const deadline = Date.now() + 10_000;
    while (!fs.readFileSync(tracePath).includes('signal_zero_children')) {
      if (Date.now() > deadline) throw new Error('no signal_zero_children in the live trace');
      await new Promise((r) => setTimeout(r, 100));
    }
    server.proc.kill('SIGINT');
    expect((await exited(server.proc)).code).toBe(0);
    expect(server.stderr()).not.toMatch(/warn|error/i);
    bytes = fs.readFileSync(tracePath);
    trace = fromBinary(TraceSchema, bytes);
  });

  test('the first packet declares the clock: BOOTTIME, with MONOTONIC and REALTIME beside it', () => {
    const first = trace.packet[0];
    expect(first.data.case).toBe('clockSnapshot');
    const snap = first.data.value as { primaryTraceClock: number; clocks: { clockId: number; timestamp: bigint }[] };
    expect(snap.primaryTraceClock).toBe(BuiltinClock.BOOTTIME);
    expect(snap.clocks.map((c) => c.clockId)).toEqual([BuiltinClock.BOOTTIME, BuiltinClock.MONOTONIC, BuiltinClock.REALTIME]);
    // Every event is stamped on that clock, after the snapshot and before now.
    const { events } = summarize(trace);
    const now = BigInt(Math.round(Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1e9)) + 2_000_000_000n;
    for (const e of events) {
      expect(e.ts).toBeGreaterThanOrEqual(first.timestamp);
      expect(e.ts).toBeLessThan(now);
    }
  });

  test('one file_register; vmo_read windows on the pager threads add up to the bytes supplied', () => {
    const { tracks, events, counters } = summarize(trace);
    const registers = events.filter((e) => e.name === 'file_register');
    expect(registers).toHaveLength(1);
    expect(registers[0].args).toMatchObject({ name: '/big.bin', size: BigInt(SIZE), pager: 1n, new_file: true });
    expect(Number(registers[0].args.extents)).toBeGreaterThan(0);
    const reads = events.filter((e) => e.name === 'vmo_read');
    expect(reads.length).toBeGreaterThan(SIZE / (8 * MIB));
    let copied = 0n;
    let covered = 0n;
    for (const r of reads) {
      expect(r.type).toBe(TrackEvent_Type.SLICE_BEGIN);
      expect(r.args).toMatchObject({ file: '/big.bin', inode: registers[0].args.inode, client_pid: BigInt(catPid), pages_failed: 0n });
      copied += r.args.bytes_copied as bigint;
      covered += (r.args.bytes_copied as bigint) + (r.args.bytes_zeroed as bigint);
      const t = tracks.get(r.track)!;
      expect(t.pid).toBe(serverPid);
      expect(t.threadName).toMatch(/^pager-1\.\d$/);
      expect(t.tid).toBeGreaterThan(0);
    }
    // Every byte of the file came from the backing once, each in one window.
    expect(copied).toBe(BigInt(SIZE));
    expect(covered).toBe(BigInt(SIZE));
    const supplied = counters.get('bytes supplied')!;
    expect(supplied[supplied.length - 1]).toBe(BigInt(SIZE));
    expect(counters.get('files registered')!.slice(-1)[0]).toBe(1n);
    expect(counters.get('faults')!.slice(-1)[0]).toBeGreaterThan(0n);
    // Every slice ends: one END on the same track after each BEGIN.
    const ends = events.filter((e) => e.type === TrackEvent_Type.SLICE_END);
    expect(ends.length).toBe(events.filter((e) => e.type === TrackEvent_Type.SLICE_BEGIN).length);
  });

  test('FIDL spans with their status, and signal_zero_children when the client is gone', () => {
    const { events } = summarize(trace);
    const spans = events.filter((e) => e.type === TrackEvent_Type.SLICE_BEGIN && e.name !== 'vmo_read').map((e) => e.name);
    expect(spans).toEqual(['CreatePager', 'RegisterFile', 'AttachMapping']);
    const statuses = events.filter((e) => e.type === TrackEvent_Type.SLICE_END && e.args.status !== undefined).map((e) => e.args.status);
    expect(statuses).toEqual(['ZX_OK (0)', 'ZX_OK (0)', 'ZX_OK (0)']);
    const zero = events.filter((e) => e.name === 'signal_zero_children');
    expect(zero).toHaveLength(1);
    expect(zero[0].args).toMatchObject({ name: '/big.bin', pager: 1n });
  });

  const protoc = hasProtoc();
  (protoc ? test : test.skip)(`${protoc ? '' : '[skipped: protoc not installed (scripts/install-system-deps.sh)] '}protoc --decode reads the same trace against proto/perfetto_trace.proto`, () => {
    const text = execFileSync('protoc', ['--decode=perfetto.protos.Trace', `-I${PROTO_DIR}`, path.join(PROTO_DIR, 'perfetto_trace.proto')], {
      input: bytes,
      maxBuffer: 1 << 28,
    }).toString();
    const count = (re: RegExp) => (text.match(re) ?? []).length;
    const { events } = summarize(trace);
    expect(count(/^packet \{/gm)).toBe(trace.packet.length);
    expect(count(/name: "file_register"/g)).toBe(1);
    expect(count(/name: "vmo_read"/g)).toBe(events.filter((e) => e.name === 'vmo_read').length);
    expect(count(/primary_trace_clock: BUILTIN_CLOCK_BOOTTIME/g)).toBe(1);
    // The bytes copied, summed from protoc's text: the same 64 MiB.
    let copied = 0n;
    for (const m of text.matchAll(/uint_value: (\d+)\n\s*name: "bytes_copied"/g)) copied += BigInt(m[1]);
    expect(copied).toBe(BigInt(SIZE));
  });
});

test('a server killed with SIGKILL leaves a trace that decodes up to its last whole packet', async () => {
  const tracePath = path.join(tmp, 'killed.pftrace');
  const svcDir = path.join(tmp, 'svc2');
  const server = await startServer(svcDir, tracePath);
  const cat = await cli(['cat', image, '/big.bin', '--svc-dir', svcDir]);
  expect(cat.code).toBe(0);
  await new Promise((r) => setTimeout(r, 300)); // past a flush of the pager threads' rings
  server.proc.kill('SIGKILL');
  await exited(server.proc);
  const trace = fromBinary(TraceSchema, fs.readFileSync(tracePath));
  const { events } = summarize(trace);
  expect(events.filter((e) => e.name === 'file_register')).toHaveLength(1);
  expect(events.filter((e) => e.name === 'vmo_read').length).toBeGreaterThan(0);
});

test('cat --trace: the embedded server is traced; SIGTERM mid-read still closes the trace', async () => {
  const tracePath = path.join(tmp, 'cat.pftrace');
  const ok = await cli(['cat', image, '/big.bin', '--trace', tracePath]);
  expect(ok.code).toBe(0);
  expect(ok.stdout.equals(content)).toBe(true);
  const { events } = summarize(fromBinary(TraceSchema, fs.readFileSync(tracePath)));
  expect(events.filter((e) => e.name === 'file_register')).toHaveLength(1);
  // A cat that is stopped by SIGTERM while its output pipe is not read.
  const stopped = path.join(tmp, 'stopped.pftrace');
  const proc = spawn(CLI, ['cat', image, '/big.bin', '--trace', stopped], { stdio: ['ignore', 'pipe', 'pipe'] });
  const deadline = Date.now() + 10_000;
  while (!(fs.existsSync(stopped) && fs.readFileSync(stopped).includes('file_register'))) {
    if (Date.now() > deadline) throw new Error('cat did not register its file');
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill('SIGTERM');
  expect((await exited(proc)).signal).toBe('SIGTERM');
  const after = summarize(fromBinary(TraceSchema, fs.readFileSync(stopped)));
  expect(after.events.filter((e) => e.name === 'file_register')).toHaveLength(1);
  expect(after.counters.get('bytes supplied')).toBeDefined();
});

test('a trace file that cannot be created: one clear error; --trace with --svc-dir is a usage error', async () => {
  const bad = await cli(['cat', image, '/big.bin', '--trace', path.join(tmp, 'no', 'dir', 't.pftrace')]);
  expect(bad.code).toBe(1);
  expect(bad.stderr).toMatch(/^starnix-pager: cannot start the embedded server: cannot create the trace file .*t\.pftrace: ENOENT[^\n]*\n$/);
  expect(bad.stdout.length).toBe(0);
  const serve = await cli(['serve', '--svc-dir', path.join(tmp, 'svc3'), '--trace', '/proc/nope/t.pftrace']);
  expect(serve.code).toBe(1);
  expect(serve.stderr).toMatch(/cannot create the trace file \/proc\/nope\/t\.pftrace/);
  const usage = await cli(['cat', image, '/big.bin', '--trace', path.join(tmp, 'x.pftrace'), '--svc-dir', path.join(tmp, 'svc3')]);
  expect(usage.code).toBe(2);
});
