// Transport benchmark: request/reply between this process and an echo peer process over a
// Channel (SOCK_SEQPACKET socketpair). Measures round-trip latency (p50, p99) and calls/s with
// one call in flight and with many in flight. Run directly: `node dist/bench/transport.js`.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { Channel } from '../src/transport/channel';
import { Handle } from '../src/transport/handle';

const PEER_JS = path.join(__dirname, '..', 'test', 'transport', 'peer.js');

interface RunResult {
  inFlight: number;
  calls: number;
  messageBytes: number;
  p50us: number;
  p99us: number;
  callsPerSecond: number;
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

/** `calls` request/reply pairs with `inFlight` outstanding at a time; replies matched by txid. */
async function run(ch: Channel, inFlight: number, calls: number, messageBytes: number): Promise<RunResult> {
  const latencies = new Float64Array(calls);
  const started = new Float64Array(calls);
  const request = Buffer.alloc(messageBytes);
  let sent = 0;
  let done = 0;
  const t0 = process.hrtime.bigint();
  const base = Number(t0);
  const now = (): number => Number(process.hrtime.bigint()) - base;
  await new Promise<void>((resolve, reject) => {
    const sendOne = (): void => {
      request.writeUInt32LE(sent, 0); // the txid, as in a FIDL header
      started[sent] = now();
      sent += 1;
      ch.send(request, []);
    };
    const onMessage = (bytes: Buffer, handles: Handle[]): void => {
      for (const h of handles) h.close();
      const txid = bytes.readUInt32LE(0);
      latencies[done] = now() - started[txid];
      done += 1;
      if (done === calls) {
        ch.off('message', onMessage);
        resolve();
      } else if (sent < calls) {
        sendOne();
      }
    };
    ch.on('message', onMessage);
    ch.once('close', () => reject(new Error('peer closed during the benchmark')));
    while (sent < Math.min(inFlight, calls)) sendOne();
  });
  const elapsedNs = Number(process.hrtime.bigint() - t0);
  latencies.sort();
  return {
    inFlight,
    calls,
    messageBytes,
    p50us: Math.round(percentile(latencies, 0.5) / 10) / 100,
    p99us: Math.round(percentile(latencies, 0.99) / 10) / 100,
    callsPerSecond: Math.round(calls / (elapsedNs / 1e9)),
  };
}

export async function benchTransport(): Promise<object> {
  if (!fs.existsSync(PEER_JS)) throw new Error(`${PEER_JS} is missing: run \`npx tsc -p .\` first`);
  const [mine, theirs] = Channel.pair(['bench', 'bench-peer']);
  const theirHandle = theirs.toHandle();
  const child = spawn(process.execPath, [PEER_JS, 'echo'], { stdio: ['ignore', 'ignore', 'inherit', theirHandle.fd] });
  theirHandle.close();
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  mine.start();
  try {
    await run(mine, 1, 5000, 64); // warm-up: JIT, page faults, CPU frequency
    const results = [
      await run(mine, 1, 20000, 64),
      await run(mine, 64, 100000, 64),
      await run(mine, 1, 5000, 8192),
      await run(mine, 64, 50000, 8192),
    ];
    return { transport: 'SOCK_SEQPACKET socketpair, two processes', results };
  } finally {
    mine.close();
    await exited;
  }
}

if (require.main === module) {
  benchTransport().then(
    (r) => console.log(JSON.stringify(r, null, 2)),
    (e) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}
