// Decoder fuzzer: seeded mutations of valid encodings of every generated type (src/gen, plus the
// kitchen-sink test library that has every FIDL construct), and of every method's transactional
// message (header included). Every outcome must be a decoded value or a FidlDecodeError; nothing
// else may escape, no decode may take long, and no fd may leak: the handles are real fds (dups
// of a memfd, a SEQPACKET socket, /dev/null, a pipe, a SOCK_DGRAM socket, an eventfd, a cgroup2 directory) and every one must end up either closed by
// the decoder or inside the decoded value.
//
// FUZZ_ITERATIONS (default 1,000,000) sets the number of mutated messages; FUZZ_SEED the seed.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as fidl from '../../src/fidl';
import '../../src/fidl_linux'; // installs the real handle check (fd kind and access mode)
import { native } from '../../src/native';
import { Handle } from '../../src/transport/handle';
import { createMemfd } from '../../src/transport/memfd';
import { createEventFd, createEventPair } from '../../src/transport/stand_ins';
import * as zx from '../../src/gen/zx';
import * as runner from '../../src/gen/fuchsia_starnix_runner';
import * as pagerLib from '../../src/gen/starnix_pager';
import * as kitchen from '../fidl/gen/test_kitchen';
import { Rng, handlesIn, pick, prng, randInt, randomValue } from '../support/random_values';

const ITERATIONS = Number(process.env.FUZZ_ITERATIONS ?? 1_000_000);
const SEED = Number(process.env.FUZZ_SEED ?? 0x5eedf022);
const BASES_PER_TYPE = 12;
/** A single decode slower than this counts as a hang (generous: a GC pause on a busy machine is not one). */
const SLOW_DECODE_MS = 1000;

// ---- real fds to hand out as handles (each message gets fresh dups) ----

type Kind = 'memfd' | 'channel' | 'devnull' | 'pipe' | 'eventpair' | 'eventfd' | 'job';
const KINDS: Kind[] = ['memfd', 'channel', 'devnull', 'pipe', 'eventpair', 'eventfd', 'job'];
const sources: Record<Kind, number> = {} as Record<Kind, number>;
let memfdHandle: Handle;
let socketEnds: number[] = [];
let pipeEnds: number[] = [];
let eventPairEnds: number[] = [];

function openSources(): void {
  memfdHandle = createMemfd('fuzz', 4096);
  sources.memfd = memfdHandle.fd;
  socketEnds = native.socketPair() as number[];
  sources.channel = socketEnds[0];
  sources.devnull = fs.openSync('/dev/null', 'r');
  // A FIFO opened read-write is a pipe to fstat (the addon has no pipe() of its own).
  const fifo = `/tmp/fuzz-fifo-${process.pid}`;
  execFileSync('mkfifo', [fifo]);
  pipeEnds = [fs.openSync(fifo, fs.constants.O_RDWR)];
  fs.unlinkSync(fifo);
  sources.pipe = pipeEnds[0];
  // The stand-ins of the runner's other handle types (README, "Handles checked as declared").
  const pair = createEventPair();
  eventPairEnds = [pair[0].take(), pair[1].take()];
  sources.eventpair = eventPairEnds[0];
  sources.eventfd = createEventFd().take();
  // A job is a directory on cgroup2; without one mounted, a directory that is not (JOB slots then fail their check).
  const cgroup2 = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')).find((f) => f[2] === 'cgroup2')?.[1];
  sources.job = fs.openSync(cgroup2 ?? '/tmp', 'r');
}

function closeSources(): void {
  memfdHandle.close();
  for (const fd of [...socketEnds, sources.devnull, ...pipeEnds, ...eventPairEnds, sources.eventfd, sources.job]) fs.closeSync(fd);
}

const fresh = (kind: Kind): Handle => new Handle(native.dupFd(sources[kind]) as number);

/** The kind that fits a handle slot, so that base messages decode. */
function fittingKind(t: fidl.HandleType): Kind {
  if (t.objType === 3) return 'memfd';
  if (t.objType === 4) return 'channel';
  if (t.objType === 16) return 'eventpair';
  if (t.objType === 5 || t.objType === 34) return 'eventfd';
  if (t.objType === 17) return 'job';
  return 'devnull';
}

// ---- the corpus: valid encodings ----

interface Base {
  name: string;
  type: fidl.FidlType | null; // null: a transactional message, decoded through the header
  method?: fidl.MethodDesc;
  bytes: Uint8Array;
  kinds: Kind[];
}

const modules: Record<string, Readonly<Record<string, fidl.FidlType>>> = {
  zx: zx.types,
  'fuchsia.starnix.runner': runner.types,
  'starnix.pager': pagerLib.types,
  'test.kitchen (test/fidl/gen)': kitchen.types,
};
const protocols: fidl.ProtocolDesc[] = [runner.ManagerProtocol, runner.PagerProtocol, pagerLib.MapperProtocol];

function encodeBase(encode: (makeHandle: (t: fidl.HandleType) => Handle) => fidl.EncodedMessage): { bytes: Uint8Array; kinds: Kind[] } {
  const kindOf = new Map<Handle, Kind>();
  const makeHandle = (t: fidl.HandleType): Handle => {
    const k = fittingKind(t);
    const h = fresh(k);
    kindOf.set(h, k);
    return h;
  };
  try {
    const enc = encode(makeHandle);
    return { bytes: Uint8Array.from(enc.bytes), kinds: enc.handles.map((h) => kindOf.get(h)!) };
  } finally {
    for (const h of kindOf.keys()) h.close();
  }
}

function buildCorpus(rng: Rng): Base[] {
  const corpus: Base[] = [];
  for (const [lib, types] of Object.entries(modules)) {
    for (const [name, type] of Object.entries(types)) {
      for (let i = 0; i < BASES_PER_TYPE; i++) {
        const { bytes, kinds } = encodeBase((mk) => fidl.encodeValue(type, randomValue(type, rng, mk)));
        corpus.push({ name: `${lib}/${name}`, type, bytes, kinds });
      }
    }
  }
  for (const proto of protocols) {
    for (const m of proto.methods) {
      if (m.payload === null) continue;
      for (let i = 0; i < BASES_PER_TYPE; i++) {
        const txid = m.kind === 'twoway' ? randInt(rng, 1, 0xffffffff) : 0;
        const { bytes, kinds } = encodeBase((mk) =>
          fidl.encodeMessage({ txid, ordinal: m.ordinal, flexible: !m.strict }, m.payload, randomValue(m.payload!, rng, mk)),
        );
        corpus.push({ name: `${proto.name}.${m.name} (transactional)`, type: null, method: m, bytes, kinds });
      }
    }
  }
  return corpus;
}

// ---- mutations ----

const INTERESTING_BYTES = [0x00, 0x01, 0x02, 0x7f, 0x80, 0xfe, 0xff];
const INTERESTING_U32 = [0, 1, 2, 7, 8, 15, 16, 0x7f, 0x80, 0xff, 0x100, 0x400, 0x401, 0xfff8, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffff8, 0xffffffff];

function mutate(rng: Rng, src: Uint8Array, kinds: Kind[]): { bytes: Uint8Array; kinds: Kind[] } {
  let bytes = Uint8Array.from(src);
  let ks = kinds;
  const n = randInt(rng, 1, 3);
  for (let i = 0; i < n; i++) {
    const len = bytes.length;
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    switch (randInt(rng, 0, 9)) {
      case 0: // bit flip
        if (len > 0) bytes[randInt(rng, 0, len - 1)] ^= 1 << randInt(rng, 0, 7);
        break;
      case 1: // byte set
        if (len > 0) bytes[randInt(rng, 0, len - 1)] = pick(rng, INTERESTING_BYTES);
        break;
      case 2: // truncation (often to an 8-byte boundary, so that it gets past the first checks)
        if (len > 0) bytes = bytes.slice(0, rng() < 0.5 ? randInt(rng, 0, len - 1) & ~7 : randInt(rng, 0, len - 1));
        break;
      case 3: { // extension with zeros or random bytes
        const extra = rng() < 0.5 ? 8 * randInt(rng, 1, 4) : randInt(rng, 1, 40);
        const out = new Uint8Array(len + extra);
        out.set(bytes);
        if (rng() < 0.5) for (let j = len; j < out.length; j++) out[j] = randInt(rng, 0, 255);
        bytes = out;
        break;
      }
      case 4: { // smash a count/length: a word followed by a presence marker is a vector/string/table header
        const headers: number[] = [];
        for (let o = 0; o + 16 <= len; o += 8) if (dv.getUint32(o + 8, true) === 0xffffffff && dv.getUint32(o + 12, true) === 0xffffffff) headers.push(o);
        const at = headers.length > 0 && rng() < 0.8 ? pick(rng, headers) : randInt(rng, 0, Math.max(0, (len >> 3) - 1)) * 8;
        if (at + 8 <= len) {
          dv.setUint32(at, pick(rng, INTERESTING_U32), true);
          if (rng() < 0.2) dv.setUint32(at + 4, pick(rng, INTERESTING_U32), true);
        }
        break;
      }
      case 5: { // smash an envelope: num_bytes u32, num_handles u16, flags u16
        if (len >= 8) {
          const at = randInt(rng, 0, (len >> 3) - 1) * 8;
          const which = randInt(rng, 0, 2);
          if (which === 0) dv.setUint32(at, pick(rng, INTERESTING_U32), true);
          else if (which === 1) dv.setUint16(at + 4, pick(rng, [0, 1, 2, 3, 64, 0xffff]), true);
          else dv.setUint16(at + 6, pick(rng, [0, 1, 2, 3, 0x8000, 0xffff]), true);
        }
        break;
      }
      case 6: { // presence markers and handle markers: 8 bytes of 0xff, or of zero, or a u32 marker
        if (len >= 8) {
          const at = randInt(rng, 0, (len >> 3) - 1) * 8;
          const v = pick(rng, [0, 0xffffffff]);
          dv.setUint32(at, v, true);
          if (rng() < 0.6) dv.setUint32(at + 4, v, true);
        }
        break;
      }
      case 7: // fewer handles
        if (ks.length > 0) ks = ks.slice(0, randInt(rng, 0, ks.length - 1));
        break;
      case 8: // more handles (of any kind)
        ks = [...ks, ...Array.from({ length: randInt(rng, 1, 3) }, () => pick(rng, KINDS))];
        break;
      case 9: // a handle of the wrong kind
        if (ks.length > 0) {
          ks = ks.slice();
          ks[randInt(rng, 0, ks.length - 1)] = pick(rng, KINDS);
        }
        break;
    }
  }
  return { bytes, kinds: ks };
}

// ---- the run ----

interface Failure {
  name: string;
  iteration: number;
  what: string;
}

function fdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/** Decodes one message; returns null when the outcome is acceptable, else what went wrong. */
function decodeOne(base: Base, bytes: Uint8Array, handles: Handle[]): string | null {
  let value: unknown;
  try {
    if (base.type !== null) {
      value = fidl.decodeValue(base.type, bytes, handles);
    } else {
      let header: fidl.MessageHeader;
      try {
        header = fidl.decodeHeader(bytes);
      } catch (e) {
        fidl.closeAll(handles); // what the server binding does with a bad header
        throw e;
      }
      value = header.ordinal === base.method!.ordinal ? fidl.decodeMessageBody(base.method!.payload, bytes, handles) : (fidl.closeAll(handles), undefined);
    }
  } catch (e) {
    if (!(e instanceof fidl.FidlDecodeError)) return `threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`;
    // decodeValue turns stray exceptions into FidlDecodeError('out_of_bounds', 'internal decode failure: ...'):
    // that is a bug the wrapper hides, not a malformation the decoder recognised.
    if (/internal decode failure/.test(e.message)) return `internal failure masked as a decode error: ${e.message}`;
    const open = handles.filter((h) => h.valid);
    if (open.length > 0) {
      for (const h of open) h.close();
      return `${open.length} handle(s) left open after ${e.code}`;
    }
    return null;
  }
  const kept = new Set(handlesIn(value));
  let problem: string | null = null;
  for (const h of handles) {
    if (h.valid && !kept.has(h)) {
      problem = 'a handle neither closed nor in the decoded value';
      h.close();
    }
  }
  for (const h of kept) {
    if (!handles.includes(h)) problem = 'the decoded value holds a handle that did not come with the message';
    h.close();
  }
  return problem;
}

test(`decoder survives ${ITERATIONS} mutated messages of every generated type`, () => {
  const rng = prng(SEED);
  openSources();
  const baseline = fdCount();
  const corpus = buildCorpus(rng);
  expect(new Set(corpus.map((b) => b.name)).size).toBeGreaterThanOrEqual(20 + 7);
  const failures: Failure[] = [];
  const outcomes = new Map<string, number>();
  let decoded = 0;
  let slowest = 0;
  let slowestName = '';
  const started = process.hrtime.bigint();
  for (let i = 0; i < ITERATIONS; i++) {
    const base = corpus[i % corpus.length];
    const { bytes, kinds } = mutate(rng, base.bytes, base.kinds);
    const handles = kinds.map(fresh);
    const t0 = performance.now();
    const problem = decodeOne(base, bytes, handles);
    const dt = performance.now() - t0;
    if (dt > slowest) {
      slowest = dt;
      slowestName = base.name;
    }
    if (problem !== null) {
      if (failures.length < 20) failures.push({ name: base.name, iteration: i, what: problem });
      else failures.length = 20;
    }
    if ((i & 0xff) === 0) {
      // Sample the outcomes (cheaply) so the report shows the decoder is exercised broadly.
      const d = handles.length === 0 ? outcome(base, bytes) : 'handles';
      outcomes.set(d, (outcomes.get(d) ?? 0) + 1);
      if (d === 'ok') decoded++;
    }
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const after = fdCount();
  closeSources();
  // eslint-disable-next-line no-console
  console.log(
    `fuzz_decoder: ${ITERATIONS} mutated messages from ${corpus.length} bases in ${seconds.toFixed(1)} s ` +
      `(${Math.round(ITERATIONS / seconds)} msg/s); slowest decode ${slowest.toFixed(2)} ms (${slowestName}); ` +
      `sampled outcomes: ${[...outcomes].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}=${v}`).join(' ')}`,
  );
  expect(failures).toEqual([]);
  expect(after).toBe(baseline);
  expect(slowest).toBeLessThan(SLOW_DECODE_MS);
  // Mutations must not be so destructive that nothing decodes, nor so mild that nothing fails.
  expect(decoded).toBeGreaterThan(0);
  expect(outcomes.size).toBeGreaterThan(8);
}, 600_000);

/** The outcome of decoding a handle-free message again, for the sampled statistics. */
function outcome(base: Base, bytes: Uint8Array): string {
  try {
    if (base.type !== null) fidl.decodeValue(base.type, bytes, []);
    else {
      fidl.decodeHeader(bytes);
      fidl.decodeMessageBody(base.method!.payload, bytes, []);
    }
    return 'ok';
  } catch (e) {
    return e instanceof fidl.FidlDecodeError ? e.code : 'other';
  }
}
