// Codec throughput: encode and decode ops/s of a Pager.RegisterFile request (full transactional
// message) with 16 and with 1024 extents. Each figure is the median of several timed runs.
// Run: npx tsc -p . && node dist/bench/codec.js
import * as fidl from '../src/fidl';
import * as runner from '../src/gen/fuchsia_starnix_runner';

const RUNS = 7;
const MIN_RUN_MS = 150;

function request(extents: number): runner.PagerRegisterFileRequest {
  return {
    name: 'system/lib/libc.so',
    inodeNum: 1234,
    size: BigInt(extents) * 16n * 4096n,
    extents: Array.from({ length: extents }, (_, i) => ({ logicalStart: i * 16, logicalEnd: i * 16 + 16, physicalBlock: BigInt(100000 + i * 64) })),
  };
}

/** Median ops/s of `fn` over RUNS runs of at least MIN_RUN_MS each. */
function measure(fn: () => void): number {
  for (let i = 0; i < 2000; i++) fn(); // warm up (JIT)
  const rates: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    let ops = 0;
    const start = process.hrtime.bigint();
    let elapsedNs = 0n;
    do {
      for (let i = 0; i < 100; i++) fn();
      ops += 100;
      elapsedNs = process.hrtime.bigint() - start;
    } while (elapsedNs < BigInt(MIN_RUN_MS) * 1_000_000n);
    rates.push(ops / (Number(elapsedNs) / 1e9));
  }
  rates.sort((a, b) => a - b);
  return Math.round(rates[Math.floor(rates.length / 2)]);
}

export async function benchCodec(): Promise<object> {
  const m = runner.PagerMethods.RegisterFile;
  const results: Record<string, { bytes: number; encodePerSec: number; decodePerSec: number }> = {};
  for (const n of [16, 1024]) {
    const req = request(n);
    const header = { txid: 1, ordinal: m.ordinal, flexible: true };
    const { bytes } = fidl.encodeMessage(header, m.payload, req);
    let sink = 0;
    const encodePerSec = measure(() => {
      sink += fidl.encodeMessage(header, m.payload, req).bytes.length;
    });
    const decodePerSec = measure(() => {
      fidl.decodeHeader(bytes);
      sink += (fidl.decodeMessageBody<runner.PagerRegisterFileRequest>(m.payload, bytes, []).extents as unknown[]).length;
    });
    if (sink === 0) throw new Error('benchmark optimised away');
    results[`registerFile${n}`] = { bytes: bytes.length, encodePerSec, decodePerSec };
  }
  return { benchmark: 'fidl codec (Pager.RegisterFile request)', runs: RUNS, node: process.version, results };
}

if (require.main === module) {
  benchCodec().then((r) => console.log(JSON.stringify(r, null, 2)));
}
