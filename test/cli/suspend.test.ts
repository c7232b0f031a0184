// `starnix-pager suspend` and `thaw` as a person runs them, on a real cgroup with a counting
// child. Needs cgroup v2 write access (root, as CI has); skipped with the reason elsewhere.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { TestContainer, cgroupSkipReason } from '../support/cgroup';

const skipReason = cgroupSkipReason();
const describeCgroups = skipReason === null ? describe : describe.skip;
const cli = path.join(__dirname, '..', '..', 'bin', 'starnix-pager');

function run(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', input, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describeCgroups(`starnix-pager suspend${skipReason === null ? '' : ` [skipped: ${skipReason}]`}`, () => {
  let c: TestContainer;
  beforeEach(async () => {
    c = await TestContainer.create('cli');
  });
  afterEach(async () => {
    await c.remove();
  });

  test('--wake-after-ms: frozen until its timer fires, then the time asleep and the reason', async () => {
    const r = run(['suspend', '--cgroup', c.path, '--wake-after-ms', '300', '--json']);
    expect(r.stderr).toContain('asleep');
    expect(r.stderr).toContain('awake');
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.resumeReason).toBe('cli-timer');
    expect(BigInt(result.suspendTimeNs)).toBeGreaterThanOrEqual(250_000_000n);
    await c.waitCounting();
  });

  test('--wake-on-stdin: a line on stdin wakes it', () => {
    const r = run(['suspend', '--cgroup', c.path, '--wake-on-stdin'], '\n');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/woken by cli-stdin/);
  });

  test('wake locks raised while it sleeps: exit 1, WAKE_LOCKS_EXIST, the container runs', async () => {
    const r = run(['suspend', '--cgroup', c.path, '--wake-after-ms', '5000', '--wake-lock-after-ms', '200']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('WAKE_LOCKS_EXIST');
    expect(c.events().frozen).toBe(false);
    await c.waitCounting();
  });

  test('not a cgroup, a cgroup that holds the CLI itself, usage: one line and the exit code', () => {
    expect(run(['suspend', '--cgroup', os.tmpdir()])).toMatchObject({ code: 1, stderr: expect.stringContaining('not a directory of a cgroup v2') });
    // The test's containers are made inside this process's own cgroup, where the CLI starts too.
    expect(run(['suspend', '--cgroup', path.dirname(c.path)])).toMatchObject({ code: 1, stderr: expect.stringContaining('it would freeze itself') });
    expect(run(['suspend'])).toMatchObject({ code: 2 });
  });

  test('thaw: thaws what a ledger lists, leaves alone what is gone', () => {
    fs.writeFileSync(path.join(c.path, 'cgroup.freeze'), '1');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'thaw-'));
    const ledger = path.join(dir, '.frozen-cgroups.json');
    const bootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
    const id = fs.statSync(c.path, { bigint: true }).ino.toString();
    fs.writeFileSync(ledger, JSON.stringify({ frozen: [
      { path: c.path, id, bootId, pid: 1, since: '' },
      { path: `${c.path}-gone`, id: '1', bootId, pid: 1, since: '' },
    ] }));
    const r = run(['thaw', '--svc-dir', dir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`thawed ${c.path}`);
    expect(r.stdout).toContain('no longer exists');
    expect(c.events().frozen).toBe(false);
    expect(fs.existsSync(ledger)).toBe(false);
    fs.rmSync(dir, { recursive: true });
  });
});
