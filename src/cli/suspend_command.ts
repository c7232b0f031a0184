// `starnix-pager suspend` and `starnix-pager thaw`: container suspension by hand.
//
// suspend freezes a cgroup v2 directory through the Manager's SuspendContainer, as a runner
// would: it registers a wake watcher (and says "asleep" and "awake" on stderr as the server
// raises them), adds the wake sources asked for, and prints how long the container slept and why
// it woke. thaw runs the recovery a server runs at start: it thaws every cgroup that a killed
// server's ledger lists.
import * as fs from 'fs';
import * as path from 'path';
import { PagerClientConnection } from '../client';
import * as runner from '../gen/fuchsia_starnix_runner';
import { native } from '../native';
import { EmbeddedService } from '../server/service';
import { ASLEEP_SIGNAL, AWAKE_SIGNAL } from '../server/suspend/suspend_manager';
import { FrozenLedger } from '../server/suspend/frozen_ledger';
import { CGROUP2_SUPER_MAGIC } from '../server/suspend/cgroup';
import { ZX_EVENT_SIGNALED, ZX_READABLE } from '../server/suspend/wake_source';
import { EventPair, ZX_EVENTPAIR_SIGNALED } from '../transport/eventpair';
import { Handle } from '../transport/handle';
import { createEventFd, createSocketPair } from '../transport/stand_ins';
import { CliError } from './errors';

export interface SuspendFlags {
  cgroup: string;
  svcDir?: string;
  /** Wake it this many ms after it fell asleep (an eventfd wake source named "cli-timer"). */
  wakeAfterMs?: number;
  /** Wake it when a line arrives on stdin (a socket wake source named "cli-stdin"). */
  wakeOnStdin?: boolean;
  /** Raise wake locks after this many ms (the suspend then ends with WAKE_LOCKS_EXIST). */
  wakeLockAfterMs?: number;
  /** The embedded server's wait for a wake source (default 9 s, as upstream). */
  wakeTimeoutMs?: number;
  json?: boolean;
}

/** The cgroup v2 path of this process (its "0::" line), for the check that it is not inside DIR. */
function ownCgroupDir(cgroupDir: string): string | null {
  const own = fs
    .readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('0::'));
  if (own === undefined) return null;
  // DIR's mount point: walk up until the cgroup2 root (no cgroup.freeze there).
  let root = path.resolve(cgroupDir);
  while (fs.existsSync(path.join(root, 'cgroup.freeze')) && path.dirname(root) !== root) root = path.dirname(root);
  return path.join(root, own.slice(3));
}

export async function cmdSuspend(flags: SuspendFlags, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  let job: Handle;
  try {
    job = new Handle(fs.openSync(flags.cgroup, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY));
  } catch (e) {
    throw new CliError(`cannot open the cgroup ${flags.cgroup}: ${(e as Error).message}`);
  }
  if (fs.statfsSync(flags.cgroup).type !== CGROUP2_SUPER_MAGIC) {
    job.close();
    throw new CliError(`${flags.cgroup} is not a directory of a cgroup v2 file system`);
  }
  const mine = ownCgroupDir(flags.cgroup);
  const target = path.resolve(flags.cgroup);
  if (mine !== null && (mine === target || mine.startsWith(target + path.sep))) {
    job.close();
    throw new CliError(`this process is in ${flags.cgroup}: it would freeze itself`);
  }
  const embedded = flags.svcDir === undefined ? EmbeddedService.start({ suspend: { wakeTimeoutMs: flags.wakeTimeoutMs } }) : null;
  const cleanup: Array<() => void> = [];
  try {
    let client: PagerClientConnection;
    try {
      client = PagerClientConnection.connect(embedded?.svcDir ?? flags.svcDir!);
    } catch (e) {
      throw new CliError(`cannot reach the server in ${flags.svcDir}: ${(e as Error).message}`);
    }
    cleanup.push(() => client.close());
    const manager = client.managerClient;

    // A wake watcher: the server raises ASLEEP and AWAKE on it.
    const [watcherMine, watcherTheirs] = EventPair.createHandles();
    const watcher = EventPair.fromHandle(watcherMine, 'cli watcher');
    cleanup.push(() => watcher.close());
    let last = 0;
    let onAsleep: (() => void) | null = null;
    watcher.on('signals', (s: number) => {
      if ((s & ASLEEP_SIGNAL) !== 0 && (last & ASLEEP_SIGNAL) === 0) {
        err.write(`starnix-pager: ${flags.cgroup}: asleep\n`);
        onAsleep?.();
      }
      if ((s & AWAKE_SIGNAL) !== 0 && (last & AWAKE_SIGNAL) === 0 && last !== 0) err.write(`starnix-pager: ${flags.cgroup}: awake\n`);
      last = s;
    });
    watcher.start();
    await manager.registerWakeWatcher({ watcher: watcherTheirs });

    const dupJob = () => job.duplicate();
    if (flags.wakeAfterMs !== undefined) {
      const ev = createEventFd();
      cleanup.push(() => ev.close());
      manager.addWakeSource({ containerJob: dupJob(), name: 'cli-timer', handle: ev.duplicate(), signals: ZX_EVENT_SIGNALED });
      // Counted from the moment the container is asleep (the watcher hears ASLEEP), not from now.
      let t: NodeJS.Timeout | undefined;
      onAsleep = () => {
        t = setTimeout(() => native.eventfdAdd(ev.fd, 1), flags.wakeAfterMs);
      };
      cleanup.push(() => clearTimeout(t));
    }
    if (flags.wakeOnStdin) {
      const [ours, theirs] = createSocketPair();
      cleanup.push(() => ours.close());
      manager.addWakeSource({ containerJob: dupJob(), name: 'cli-stdin', handle: theirs, signals: ZX_READABLE });
      const onData = () => {
        fs.writeSync(ours.fd, 'x');
        process.stdin.pause();
      };
      process.stdin.once('data', onData);
      cleanup.push(() => {
        process.stdin.off('data', onData);
        process.stdin.pause();
      });
      err.write('starnix-pager: press Enter to wake it\n');
    }
    let wakeLocks: Handle | undefined;
    if (flags.wakeLockAfterMs !== undefined) {
      const [lock, lockTheirs] = EventPair.create(['cli wake lock', 'wake locks']);
      cleanup.push(() => lock.close());
      wakeLocks = lockTheirs.toHandle();
      const t = setTimeout(() => lock.signalPeer(0, ZX_EVENTPAIR_SIGNALED), flags.wakeLockAfterMs);
      cleanup.push(() => clearTimeout(t));
    }

    const r = await manager.suspendContainer({ containerJob: job, wakeLocks });
    if (!r.ok) {
      const name = r.error === runner.SuspendError.WAKE_LOCKS_EXIST ? 'WAKE_LOCKS_EXIST' : r.error === runner.SuspendError.SUSPEND_FAILURE ? 'SUSPEND_FAILURE' : `error ${r.error}`;
      throw new CliError(`SuspendContainer ${flags.cgroup}: ${name}`);
    }
    const ns = r.value.suspendTime ?? 0n;
    if (flags.json) {
      out.write(`${JSON.stringify({ cgroup: flags.cgroup, suspendTimeNs: ns.toString(), resumeReason: r.value.resumeReason ?? null })}\n`);
    } else {
      out.write(`${flags.cgroup}: suspended for ${(Number(ns) / 1e9).toFixed(3)} s; woken by ${r.value.resumeReason ?? '(nothing: no wake source)'}\n`);
    }
    return 0;
  } finally {
    for (const f of cleanup.reverse()) f();
    embedded?.close();
  }
}

export function cmdThaw(stateFile: string, out: NodeJS.WritableStream): number {
  let report;
  try {
    report = FrozenLedger.recover(stateFile);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  for (const p of report.thawed) out.write(`thawed ${p}\n`);
  for (const s of report.skipped) out.write(`left alone ${s.path}: ${s.why}\n`);
  for (const f of report.failed) out.write(`FAILED ${f.path}: ${f.why}\n`);
  if (report.thawed.length + report.skipped.length + report.failed.length === 0) out.write(`${stateFile}: nothing is listed as frozen\n`);
  return report.failed.length > 0 ? 1 : 0;
}
