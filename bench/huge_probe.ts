// A focused first-read probe for A/B work on the huge-page path (the full bench takes many
// minutes): one image, one bench server per --huge-pages mode, N first reads by the bench's C
// reader, and N whole-process `starnix-pager cat` runs, alternated.
//   node dist/bench/huge_probe.js [--size-mib N] [--reps N] [--modes always,never] [--no-cat] [--random N]
// Prints one line per run (GB/s, or with --random N the p50 in us; the server's CPU ms) and the medians. Needs root for huge pages
// (it grows vm.nr_hugepages by what it needs and takes that back at the end).
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { growPool } from '../test/support/hugetlb_pool';
import { cleanupAll, makeImage, MmapReader, PagerClientSession, ServerProcess } from './contenders';
import { median } from './stats';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string, def: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : def;
  };
  const sizeMiB = Number(opt('--size-mib', '1024'));
  const reps = Number(opt('--reps', '5'));
  const modes = opt('--modes', 'always').split(',') as ('always' | 'never')[];
  const withCat = !args.includes('--no-cat');
  // --random N: instead of the first reads, N random 4 KiB first touches per rep, 256 KiB apart
  // (the bench's random phase), p50 of each rep in us.
  const random = Number(opt('--random', '0'));
  const size = sizeMiB << 20;
  const work = fs.mkdtempSync(path.join('/dev/shm', 'huge-probe-'));
  const pool = growPool(Math.ceil(sizeMiB / 2) + 8);
  if (typeof pool === 'string') throw new Error(pool);
  const servers: ServerProcess[] = [];
  try {
    const img = makeImage(work, size, 0);
    const reader = MmapReader.compile(work);
    const cli = path.join(__dirname, '..', '..', 'bin', 'starnix-pager');
    const rows: Record<string, { gbps: number[]; cpu: number[] }> = {};
    const keep = (k: string, gbps: number, cpu: number) => {
      rows[k] ??= { gbps: [], cpu: [] };
      rows[k].gbps.push(gbps);
      rows[k].cpu.push(cpu);
      console.log(`${k}: ${gbps.toFixed(2)}, server CPU ${cpu.toFixed(0)} ms (load ${os.loadavg()[0].toFixed(2)})`);
    };
    for (const m of modes) servers.push(await ServerProcess.start(path.join(work, `svc-${m}`), 'adaptive', [], undefined, m));
    for (let rep = 0; rep < reps; rep++) {
      for (const [i, m] of modes.entries()) {
        const server = servers[i];
        await server.waitForgotten();
        const session = PagerClientSession.open(server.svcDir, img.image);
        try {
          const file = await session.registerBig(img);
          if (random > 0) {
            const r = await reader.randPager(session, file, random, 256 * 1024, rep + 1);
            file.close();
            keep(`random-p50us-${m}`, median(r.latencyUs), NaN);
            continue;
          }
          reader.touch(sizeMiB + 256);
          const cpu0 = server.cpuMs();
          const r = await reader.seqPager(session, file);
          const cpu = server.cpuMs() - cpu0;
          keep(`pager-${m}`, r.bytes / r.seconds / 1e9, cpu);
          // The same reader once more over the same file, every page now in: the reader's own
          // bound (its mapping's faults on present pages and its memcpy), no paging left.
          const again = await reader.seqPager(session, file);
          keep(`again-${m}`, again.bytes / again.seconds / 1e9, NaN);
          file.close();
        } finally {
          session.close();
        }
        await server.waitForgotten();
        if (withCat && random === 0) {
          reader.touch(sizeMiB + 256);
          const t0 = process.hrtime.bigint();
          const res = spawnSync(process.execPath, [cli, 'cat', '--huge-pages', m, img.image, img.bigPath], {
            stdio: ['ignore', fs.openSync('/dev/null', 'w'), 'inherit'],
          });
          const secs = Number(process.hrtime.bigint() - t0) / 1e9;
          if (res.status !== 0) throw new Error(`cat exited with ${res.status}`);
          keep(`cat-${m}`, size / secs / 1e9, NaN);
        }
      }
    }
    for (const [k, v] of Object.entries(rows)) {
      console.log(`MEDIAN ${k}: ${median(v.gbps).toFixed(2)} (${v.gbps.map((g) => g.toFixed(2)).join(', ')}), server CPU ${median(v.cpu).toFixed(0)} ms`);
    }
  } finally {
    for (const s of servers) s.stop();
    await Promise.all(servers.map((s) => s.stopped()));
    pool.restore();
    cleanupAll();
    execFileSync('rm', ['-rf', work]);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
