// RegisterFile latency across processes, by itself: the server (bench/server.js, a PagerService
// in its own process) and this client over the real sockets, as `npm run bench` measures it, but
// only this, so that one change to the call path can be measured in seconds.
//   node dist/bench/regfile_latency.js [--files N] [--reps R] [--pipelined]
// Each rep: a fresh server, 200 warm-up calls, then N calls with one in flight (p50/p99), and
// with --pipelined N more calls with 64 in flight (calls/s). Prints one JSON line per rep and the
// medians. REGFILE_SERVER_NODE_ARGS adds node options to the server (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p").
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PagedFile } from '../src/client';
import { BenchImage, PagerClientSession, ServerProcess, cleanupAll, makeImage } from './contenders';
import { median, percentile } from './stats';

/** /proc/.../schedstat of a thread: [ns on a CPU, ns runnable but waiting for one]. */
function readSchedstat(file: string): [number, number] {
  const [run, wait] = fs.readFileSync(file, 'utf8').split(' ').map(Number);
  return [run, wait];
}

async function oneRep(dir: string, img: BenchImage, rep: number, pipelined: boolean): Promise<Record<string, number>> {
  const nodeArgs = (process.env.REGFILE_SERVER_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const server = await ServerProcess.start(path.join(dir, `svc-${rep}`), 'adaptive', nodeArgs);
  const session = PagerClientSession.open(server.svcDir, img.image);
  const held: PagedFile[] = [];
  const files = img.small;
  try {
    for (const f of (await session.registerEach(files.slice(0, 200))).held) f.close();
    await server.waitForgotten();
    // The server's main (JavaScript) thread is the process's first: its schedstat is the process's.
    const server0 = readSchedstat(`/proc/${server.pid}/schedstat`);
    const client0 = readSchedstat('/proc/thread-self/schedstat');
    const serial = await session.registerEach(files);
    held.push(...serial.held);
    const server1 = readSchedstat(`/proc/${server.pid}/schedstat`);
    const client1 = readSchedstat('/proc/thread-self/schedstat');
    const perCallUs = (a: number, b: number) => (b - a) / 1000 / files.length;
    const lat = serial.latenciesUs;
    const out: Record<string, number> = {
      p50Us: percentile(lat, 50),
      p90Us: percentile(lat, 90),
      p99Us: percentile(lat, 99),
      // CPU time per call of each side's JS thread, and time spent runnable without a CPU.
      clientCpuUs: perCallUs(client0[0], client1[0]),
      clientRunqUs: perCallUs(client0[1], client1[1]),
      serverCpuUs: perCallUs(server0[0], server1[0]),
      serverRunqUs: perCallUs(server0[1], server1[1]),
    };
    for (const f of held.splice(0)) f.close();
    if (pipelined) {
      await server.waitForgotten();
      const p = await session.registerPipelined(files, 64);
      held.push(...p.held);
      out.pipelinedCallsPerSec = files.length / p.seconds;
      for (const f of held.splice(0)) f.close();
    }
    return out;
  } finally {
    for (const f of held) f.close();
    session.close();
    server.stop(); // SIGTERM: the server closes the service and exits (and writes a --cpu-prof profile)
    await server.stopped();
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string, dflt: number) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : dflt;
  };
  const files = opt('--files', 3000);
  const reps = opt('--reps', 5);
  const pipelined = args.includes('--pipelined');
  const dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'regfile-'));
  try {
    const img = makeImage(dir, 1 << 20, files);
    const runs: Record<string, number>[] = [];
    for (let rep = 0; rep < reps; rep++) {
      const r = await oneRep(dir, img, rep, pipelined);
      runs.push(r);
      process.stdout.write(JSON.stringify(Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Math.round(v * 10) / 10]))) + '\n');
    }
    const keys = Object.keys(runs[0]);
    const med = Object.fromEntries(keys.map((k) => [k, Math.round(median(runs.map((r) => r[k])) * 10) / 10]));
    process.stdout.write(`median of ${reps}: ${JSON.stringify(med)}\n`);
  } finally {
    cleanupAll();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  cleanupAll();
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
