// What --trace costs a first read: the full benchmark's C reader (bench/mmap_read.c) reads a
// 1 GiB file for the first time through two server processes, one serving with --trace and one
// without, alternately (ABBA order), so that the machine's load drifts across both alike.
//   node dist/bench/trace_cost.js [--reps N] [--size-mib N]     (npm run bench:trace-cost)
// Prints one JSON object: the GB/s of every read, the medians, and traced/untraced.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';
import { MmapReader, PagerClientSession, ServerProcess, cleanupAll, makeImage, onCleanup } from './contenders';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { reps: { type: 'string' }, 'size-mib': { type: 'string' } } });
  const reps = Number(values.reps ?? 6);
  const size = Number(values['size-mib'] ?? 1024) << 20;
  const work = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'starnix-trace-cost-'));
  onCleanup('work dir', () => fs.rmSync(work, { recursive: true, force: true }));
  const img = makeImage(work, size, 0);
  const reader = MmapReader.compile(work);
  const tracePath = path.join(work, 'cost.pftrace');
  const servers = {
    off: await ServerProcess.start(path.join(work, 'svc-off'), 'adaptive'),
    on: await ServerProcess.start(path.join(work, 'svc-on'), 'adaptive', [], tracePath),
  };
  const gbps = { off: [] as number[], on: [] as number[] };
  try {
    // Round 0 warms both up and is not counted.
    for (let rep = 0; rep <= reps; rep++) {
      const order: ('off' | 'on')[] = rep % 2 === 0 ? ['off', 'on'] : ['on', 'off'];
      for (const which of order) {
        const server = servers[which];
        await server.waitForgotten();
        const session = PagerClientSession.open(server.svcDir, img.image);
        try {
          const file = await session.registerBig(img);
          try {
            reader.touch((size >> 20) + 256); // fresh guest memory for both, as the full benchmark does
            const r = await reader.seqPager(session, file);
            if (rep > 0) gbps[which].push(size / r.seconds / 1e9);
          } finally {
            file.close();
          }
        } finally {
          session.close();
        }
      }
    }
  } finally {
    servers.off.stop();
    servers.on.stop();
  }
  await Promise.all([servers.off.stopped(), servers.on.stopped()]);
  const r2 = (v: number) => Math.round(v * 100) / 100;
  process.stdout.write(JSON.stringify({
    sizeMiB: size >> 20,
    reps,
    loadavg1min: r2(os.loadavg()[0]),
    untracedGBps: gbps.off.map(r2),
    tracedGBps: gbps.on.map(r2),
    medianUntraced: r2(median(gbps.off)),
    medianTraced: r2(median(gbps.on)),
    tracedOverUntraced: r2(median(gbps.on) / median(gbps.off)),
    traceBytes: fs.statSync(tracePath).size,
  }, null, 2) + '\n');
}

main().then(cleanupAll, (e) => {
  cleanupAll();
  process.stderr.write(`trace_cost: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
