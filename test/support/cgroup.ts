// Real containers for the suspend tests: a cgroup v2 directory made by the test, under this
// process's own cgroup, with a real process in it that counts (one line per 10 ms on its stdout),
// so a test sees it stop when frozen and go on when thawed.
//
//   cgroupSkipReason()        null when this machine lets the tests make and freeze cgroups, else
//                             why not (for test.skip names); decided once, at load time
//   TestContainer.create(tag, {counting})  a fresh cgroup (and its counting child)
//     .path, .lines, .openHandle(), .events(), .waitCounting(), .waitStopped(), .kill(), .remove()
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { Handle } from '../../src/transport/handle';

interface Cgroup2Place {
  /** Our own cgroup's directory in the cgroup2 mount. */
  dir: string;
}

function findCgroup2(): Cgroup2Place | string {
  let mount: string | undefined;
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (right?.split(' ')[0] === 'cgroup2') {
      mount = left.split(' ')[4];
      break;
    }
  }
  if (mount === undefined) return 'no cgroup2 file system is mounted';
  const own = fs
    .readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('0::'));
  if (own === undefined) return 'this process is in no cgroup v2 cgroup';
  const dir = path.join(mount, own.slice(3));
  return { dir };
}

function probe(): { place: Cgroup2Place | null; reason: string | null } {
  const place = findCgroup2();
  if (typeof place === 'string') return { place: null, reason: place };
  const dir = path.join(place.dir, `starnix-probe-${process.pid}`);
  try {
    fs.mkdirSync(dir);
  } catch (e) {
    return { place: null, reason: `cannot make a cgroup under ${place.dir}: ${(e as Error).message}` };
  }
  try {
    fs.writeFileSync(path.join(dir, 'cgroup.freeze'), '0');
    return { place, reason: null };
  } catch (e) {
    return { place: null, reason: `cannot write cgroup.freeze under ${place.dir}: ${(e as Error).message}` };
  } finally {
    fs.rmdirSync(dir);
  }
}

/** Removes cgroups that a test process which has since died left behind (best effort). */
function removeStale(parent: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(parent);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^starnix-test-(\d+)-/.exec(name);
    if (m === null || fs.existsSync(`/proc/${m[1]}`)) continue;
    const dir = path.join(parent, name);
    try {
      fs.writeFileSync(path.join(dir, 'cgroup.freeze'), '0');
      fs.writeFileSync(path.join(dir, 'cgroup.kill'), '1');
      fs.rmdirSync(dir);
    } catch {
      // Still emptying, or not ours to remove: the next run tries again.
    }
  }
}

const probed = probe();
if (probed.place !== null) removeStale(probed.place.dir);

/** Why cgroup tests cannot run here, or null when they can (needs cgroup v2 write access, e.g. root). */
export function cgroupSkipReason(): string | null {
  return probed.reason;
}

export function cgroupParent(): string {
  if (probed.place === null) throw new Error(`no cgroups here: ${probed.reason}`);
  return probed.place.dir;
}

let made = 0;

export class TestContainer {
  /** Lines the child has printed so far (its count). */
  lines = 0;
  private child: ChildProcess | null = null;

  private constructor(readonly path: string) {}

  /** A new cgroup; with counting, a child process in it that prints a line every 10 ms. */
  static async create(tag: string, opts: { counting?: boolean } = {}): Promise<TestContainer> {
    made++;
    const dir = path.join(cgroupParent(), `starnix-test-${process.pid}-${made}-${tag}`);
    fs.mkdirSync(dir);
    const c = new TestContainer(dir);
    if (opts.counting !== false) {
      // The shell moves itself into the cgroup before it counts, so every process it forks is in it.
      // It stops by itself once the test process is gone (a killed jest worker runs no afterEach).
      const child = spawn('sh', ['-c', `echo $$ > '${dir}/cgroup.procs' && i=0; while kill -0 $PPID 2>/dev/null; do i=$((i+1)); echo $i; sleep 0.01; done`], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      child.stdout!.on('data', (b: Buffer) => {
        for (const ch of b) if (ch === 10) c.lines++;
      });
      c.child = child;
      await c.waitCounting();
    }
    return c;
  }

  /** A fresh O_RDONLY fd of the cgroup's directory, as a runner would send it (the JOB). */
  openHandle(): Handle {
    return new Handle(fs.openSync(this.path, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY));
  }

  events(): { populated: boolean; frozen: boolean } {
    const text = fs.readFileSync(path.join(this.path, 'cgroup.events'), 'latin1');
    return { populated: /populated 1/.test(text), frozen: /frozen 1/.test(text) };
  }

  /** Resolves once the child has printed at least `more` more lines (within timeoutMs). */
  async waitCounting(more = 3, timeoutMs = 15_000): Promise<void> {
    const want = this.lines + more;
    const deadline = Date.now() + timeoutMs;
    while (this.lines < want) {
      if (Date.now() > deadline) throw new Error(`${this.path}: the child did not count (${this.lines} lines, frozen=${this.events().frozen})`);
      await sleep(10);
    }
  }

  /** True when the child printed nothing for `ms` (it is stopped). */
  async staysStill(ms = 200): Promise<boolean> {
    await sleep(30); // a line written just before the freeze may still be in the pipe
    const before = this.lines;
    await sleep(ms);
    return this.lines === before;
  }

  /** Kills every process in the cgroup (cgroup.kill) and waits until it is empty. */
  async kill(): Promise<void> {
    fs.writeFileSync(path.join(this.path, 'cgroup.kill'), '1');
    const deadline = Date.now() + 5000;
    while (this.events().populated) {
      if (Date.now() > deadline) throw new Error(`${this.path}: still populated after cgroup.kill`);
      await sleep(10);
    }
  }

  /** Thaws, kills and removes the cgroup; never throws (for afterEach). */
  async remove(): Promise<void> {
    try {
      if (!fs.existsSync(this.path)) return;
      fs.writeFileSync(path.join(this.path, 'cgroup.freeze'), '0');
      await this.kill();
      fs.rmdirSync(this.path);
    } catch (e) {
      process.stderr.write(`test container ${this.path}: cleanup failed: ${(e as Error).message}\n`);
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
