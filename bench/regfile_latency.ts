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
import { ChildProcess, spawn } from 'child_process';
import * as readline from 'readline';
import { PagedFile } from '../src/client';
import { BenchImage, PagerClientSession, cleanupAll, makeImage } from './contenders';

/** bench/server.js in a child process, with optional node options (ServerProcess has none). */
class Server {
  private constructor(
    private readonly child: ChildProcess,
    private readonly lines: AsyncIterator<string>,
    readonly svcDir: string,
  ) {}

  static async start(svcDir: string): Promise<Server> {
    fs.mkdirSync(svcDir, { recursive: true });
    const nodeArgs = (process.env.REGFILE_SERVER_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
    const child = spawn(process.execPath, [...nodeArgs, path.join(__dirname, 'server.js'), svcDir, 'adaptive'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const server = new Server(child, readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator](), svcDir);
    const first = await server.lines.next();
    if (first.done || first.value !== 'ready') {
      server.stop();
      throw new Error(`bench server did not start (said ${JSON.stringify(first.value)})`);
    }
    return server;
  }

  /** Waits until the server holds no file (every handle closed); throws after 20 s. */
  async waitForgotten(): Promise<void> {
    const deadline = Date.now() + 20000;
    for (;;) {
      this.child.stdin!.write('stats\n');
      const line = await this.lines.next();
      if (line.done) throw new Error('bench server exited');
      const files = (JSON.parse(line.value) as { files: number }).files;
      if (files === 0) return;
      if (Date.now() > deadline) throw new Error(`the server still holds ${files} files`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** The server's main (JavaScript) thread: [ns on a CPU, ns runnable but waiting for one]. */
  schedstat(): [number, number] {
    return readSchedstat(`/proc/${this.child.pid}/schedstat`);
  }

  stop(): void {
    // SIGTERM: the server closes the service and exits (and writes its --cpu-prof profile).
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
  }

  async stopped(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await new Promise((r) => this.child.once('exit', r));
  }
}

/** /proc/.../schedstat of a thread: [ns on a CPU, ns runnable but waiting for one]. */
function readSchedstat(file: string): [number, number] {
  const [run, wait] = fs.readFileSync(file, 'utf8').split(' ').map(Number);
  return [run, wait];
}

function percentile(v: number[], p: number): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

function median(v: number[]): number {
  return percentile(v, 50);
}

async function oneRep(dir: string, img: BenchImage, rep: number, pipelined: boolean): Promise<Record<string, number>> {
  const server = await Server.start(path.join(dir, `svc-${rep}`));
  const session = PagerClientSession.open(server.svcDir, img.image);
  const held: PagedFile[] = [];
  const files = img.small;
  try {
    for (let i = 0; i < 200; i++) {
      const f = files[i % files.length];
      (await session.pager.registerFile({ name: f.name, inode: f.ino, size: f.size, extents: f.extents })).close();
    }
    await server.waitForgotten();
    const lat: number[] = [];
    const server0 = server.schedstat();
    const client0 = readSchedstat('/proc/thread-self/schedstat');
    for (const f of files) {
      const c0 = process.hrtime.bigint();
      held.push(await session.pager.registerFile({ name: f.name, inode: f.ino, size: f.size, extents: f.extents }));
      lat.push(Number(process.hrtime.bigint() - c0) / 1000);
    }
    const server1 = server.schedstat();
    const client1 = readSchedstat('/proc/thread-self/schedstat');
    const perCallUs = (a: number, b: number) => (b - a) / 1000 / files.length;
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
      const t1 = process.hrtime.bigint();
      let next = 0;
      const worker = async () => {
        while (next < files.length) {
          const f = files[next++];
          held.push(await session.pager.registerFile({ name: f.name, inode: f.ino, size: f.size, extents: f.extents }));
        }
      };
      await Promise.all(Array.from({ length: 64 }, worker));
      out.pipelinedCallsPerSec = files.length / (Number(process.hrtime.bigint() - t1) / 1e9);
      for (const f of held.splice(0)) f.close();
    }
    return out;
  } finally {
    for (const f of held) f.close();
    session.close();
    server.stop();
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
