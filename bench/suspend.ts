// How long suspend and resume take through the Manager, on a real cgroup v2 container with a
// process in it that keeps a CPU busy (root; cgroup v2 write access). Not part of `npm run bench`:
//   npm run build && node dist/bench/suspend.js [--runs N] [--parent CGROUP_DIR]
// Measured, per run, by a client with a wake watcher and an eventfd wake source:
//   asleep   SuspendContainer sent -> the watcher hears ASLEEP (freeze written, frozen reported
//            through cgroup.events, watchers signalled)
//   resume   the eventfd raised -> SuspendContainer's reply (wake seen, thawed, AWAKE sent)
// Prints medians and p90 in ms.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { PagerClientConnection } from '../src/client';
import { native } from '../src/native';
import { EmbeddedService } from '../src/server/service';
import { ASLEEP_SIGNAL } from '../src/server/suspend/suspend_manager';
import { ZX_EVENT_SIGNALED } from '../src/server/suspend/wake_source';
import { EventPair } from '../src/transport/eventpair';
import { Handle } from '../src/transport/handle';
import { createEventFd } from '../src/transport/stand_ins';
import { median, percentile } from './stats';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

function ownCgroup(): string {
  const line = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' - ')[1]?.startsWith('cgroup2 '));
  if (line === undefined) throw new Error('no cgroup2 mount');
  const own = fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.startsWith('0::'))!;
  return path.join(line.split(' ')[4], own.slice(3));
}

async function main(): Promise<void> {
  const runs = Number(arg('runs', '30'));
  const dir = path.join(arg('parent', ownCgroup()), `starnix-bench-${process.pid}`);
  fs.mkdirSync(dir);
  const busy = spawn('sh', ['-c', `echo $$ > '${dir}/cgroup.procs' && while kill -0 $PPID 2>/dev/null; do :; done`], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 200));
  const svc = EmbeddedService.start();
  const client = PagerClientConnection.connect(svc.svcDir);
  const job = new Handle(fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY));
  const [mine, theirs] = EventPair.createHandles();
  const watcher = EventPair.fromHandle(mine).start();
  await client.managerClient.registerWakeWatcher({ watcher: theirs });
  const ev = createEventFd();
  client.managerClient.addWakeSource({ containerJob: job.duplicate(), name: 'bench', handle: ev.duplicate(), signals: ZX_EVENT_SIGNALED });
  const asleep: number[] = [];
  const resume: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const t0 = process.hrtime.bigint();
      const reply = client.managerClient.suspendContainer({ containerJob: job.duplicate() });
      await watcher.waitFor(ASLEEP_SIGNAL, 10_000);
      const t1 = process.hrtime.bigint();
      native.eventfdAdd(ev.fd, 1);
      const r = await reply;
      const t2 = process.hrtime.bigint();
      if (!r.ok || r.value.resumeReason !== 'bench') throw new Error(`run ${i}: ${JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
      native.eventfdRead(ev.fd);
      asleep.push(Number(t1 - t0) / 1e6);
      resume.push(Number(t2 - t1) / 1e6);
      await new Promise((res) => setTimeout(res, 20));
    }
  } finally {
    ev.close();
    watcher.close();
    job.close();
    client.close();
    svc.close();
    busy.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
    fs.rmdirSync(dir);
  }
  const f = (v: number[]) => `median ${median(v).toFixed(2)} ms, p90 ${percentile(v, 90).toFixed(2)} ms`;
  process.stdout.write(`suspend of a cgroup with a busy process, ${runs} runs:\n  asleep  ${f(asleep)}\n  resume  ${f(resume)}\n`);
}

main().catch((e) => {
  process.stderr.write(`bench/suspend: ${(e as Error).message}\n`);
  process.exit(1);
});
