// The CLI's manners, as a shell user meets them: a closed pipe ends every command quietly with
// SIGPIPE's status, --version and --help for each command, usage errors and failures in one line
// starting with "starnix-pager:", and an embedded server's refusal as the detail of that line.
import { execFile, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { promisify } from 'util';
import { makeImage } from '../support/images';

const run = promisify(execFile);
const CLI = path.join(__dirname, '..', '..', 'bin', 'starnix-pager');
const PKG = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };

// The CLI as a user runs it: the default log level (tests otherwise run with STARNIX_PAGER_LOG=error).
const ENV = { ...process.env };
delete ENV.STARNIX_PAGER_LOG;

interface Out { code: number; stdout: string; stderr: string }

async function cli(args: string[], input?: string): Promise<Out> {
  const child = execFile(CLI, args, { env: ENV, maxBuffer: 1 << 26 });
  if (input !== undefined) child.stdin!.end(input);
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Runs `starnix-pager ARGS | READER` in bash; the CLI's status (PIPESTATUS[0]) and stderr. */
function piped(args: string[], reader: string): { status: number; stderr: string } {
  const quoted = args.map((a) => `'${a}'`).join(' ');
  const r = spawnSync('bash', ['-c', `'${CLI}' ${quoted} 2>"$ERRFILE" | ${reader} >/dev/null; echo "\${PIPESTATUS[0]}"`], {
    env: { ...ENV, ERRFILE: path.join(tmp, 'stderr.txt'), TMPDIR: childTmp },
    encoding: 'utf8',
  });
  return { status: Number(r.stdout.trim()), stderr: fs.readFileSync(path.join(tmp, 'stderr.txt'), 'utf8') };
}

/** A reader that closes the pipe at once (and outlives the writer's start-up). */
const READER_GONE = '{ exec 0<&-; sleep 1; }';

let tmp: string;
let childTmp: string;
let image: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-habits-'));
  childTmp = path.join(tmp, 'tmpdir');
  fs.mkdirSync(childTmp);
  const src = path.join(tmp, 'src');
  fs.mkdirSync(path.join(src, 'many'), { recursive: true });
  // Enough output that it cannot all fit in a pipe before the reader goes away.
  for (let i = 0; i < 3000; i++) fs.writeFileSync(path.join(src, 'many', `file-with-a-long-name-${i}`), `${i}\n`);
  fs.writeFileSync(path.join(src, 'big'), Buffer.alloc(8 << 20, 7));
  image = path.join(tmp, 'img');
  makeImage({ dir: src, out: image, blockSize: 4096, sizeMiB: 64 });
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('a closed pipe ends a command quietly, with the status of SIGPIPE (141)', () => {
  test.each([
    ['ls | head -1', () => ['ls', image, '/many'], 'head -1'],
    ['ls | true', () => ['ls', image, '/many'], 'true'],
    ['stat | a reader that has already gone', () => ['stat', image, '/big'], READER_GONE],
    ['--help | a reader that has already gone', () => ['--help'], READER_GONE],
    ['cat | head -c10 (embedded server)', () => ['cat', image, '/big'], 'head -c10'],
    ['map | head -c10', () => ['map', '--backing', image, '--block-size', '4096', '--size', String(8 << 20), '--extents', '0-2048:0'], 'head -c10'],
  ])('%s', (_what, args, reader) => {
    const r = piped(args(), reader);
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 141, stderr: '' });
    // The embedded server's folder went with it (TMPDIR is the test's own: other processes on the
    // machine make such folders too).
    expect(fs.readdirSync(childTmp)).toEqual([]);
  });

  test('a reader that takes everything leaves the status 0', () => {
    expect(piped(['ls', image, '/'], 'cat')).toEqual({ status: 0, stderr: '' });
  });
});

test('--version prints the package version', async () => {
  for (const flag of ['--version', '-V']) {
    const r = await cli([flag]);
    expect(r).toEqual({ code: 0, stdout: `starnix-pager ${PKG.version}\n`, stderr: '' });
  }
});

describe('--help', () => {
  test.each(['serve', 'ls', 'stat', 'cat', 'map', 'fidl'])('%s --help (and -h) prints its usage and exits 0', async (command) => {
    for (const flag of ['--help', '-h']) {
      const r = await cli([command, flag]);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(new RegExp(`^usage: starnix-pager ${command} `));
    }
  });

  test('--help alone lists every command', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['serve', 'ls', 'stat', 'cat', 'map', 'fidl']) expect(r.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
  });
});

describe('usage errors: status 2, one line saying what is missing or wrong', () => {
  test.each([
    ['no command', [], /^starnix-pager: no command given/],
    ['unknown command', ['frobnicate'], /^starnix-pager: unknown command "frobnicate" \(commands: serve, inspect, ls/],
    ['missing both arguments', ['cat'], /^starnix-pager: cat: missing IMAGE and PATH \(usage: starnix-pager cat IMAGE PATH/],
    ['missing one argument', ['stat', 'x.img'], /^starnix-pager: stat: missing PATH /],
    ['one argument too many', ['ls', 'a', 'b', 'c'], /^starnix-pager: ls: unexpected argument "c"/],
    ['unknown option', ['serve', '--bogus'], /^starnix-pager: serve: unknown option --bogus \(usage/],
    ['an option without its value', ['cat', 'a', 'b', '--svc-dir'], /^starnix-pager: cat: --svc-dir needs a value/],
    ['a negative number', ['map', '--size', '-5'], /^starnix-pager: map: --size takes a whole number, not "-5"/],
    ['serve without --svc-dir', ['serve'], /^starnix-pager: serve: missing --svc-dir DIR/],
    ['a bad log level', ['ls', 'x', '--log-level', 'loud'], /^starnix-pager: ls: --log-level is error, warn, info or debug, not "loud"/],
    ['fidl without a verb', ['fidl'], /^starnix-pager: fidl: missing encode or decode/],
    ['fidl without a type', ['fidl', 'encode'], /^starnix-pager: fidl: missing --type LIB\/Type/],
  ])('%s', async (_what, args, message) => {
    const r = await cli(args, '');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expect(r.stderr.split('\n')).toEqual([expect.any(String), '']);
  });
});

describe('failures: status 1, one line with the prefix', () => {
  test('an embedded server refusal is the detail of the line, not a log line of its own', async () => {
    const r = await cli(['map', '--backing', image, '--block-size', '4096', '--size', '100000', '--extents', '0-10:999999']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^starnix-pager: map: the server answered ZX_ERR_INVALID_ARGS \(-10\): RegisterFile refused: extent 0 \[0, 10\) at block 999999: outside the backing/);
    expect(r.stderr.split('\n')).toHaveLength(2);
  });

  test('a refused CreatePager, likewise', async () => {
    const r = await cli(['map', '--backing', image, '--block-size', '1000', '--size', '100', '--extents', '0-1:1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^starnix-pager: map: the pager channel closed with ZX_ERR_INVALID_ARGS \(-10\): CreatePager refused: block size 1000/);
    expect(r.stderr.split('\n')).toHaveLength(2);
  });

  test('fidl errors carry the prefix and name the valid fields', async () => {
    const r = await cli(['fidl', 'encode', '--type', 'fuchsia.starnix.runner/PagerRegisterFileRequest'], '{"nmae": "x"}');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^starnix-pager: fidl: .*has no field "nmae" \(its fields: name, inode_num, size, extents/);
    expect(r.stderr.split('\n')).toHaveLength(2);
  });

  test('at --log-level info the server lines are shown as they come, each with the prefix', async () => {
    const r = await cli(['map', '--log-level', 'info', '--backing', image, '--block-size', '1000', '--size', '100', '--extents', '0-1:1']);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines.length).toBeGreaterThan(1);
    for (const l of lines) expect(l).toMatch(/^starnix-pager: /);
    expect(r.stderr).toMatch(/^starnix-pager: warn: CreatePager refused: block size 1000/m);
  });
});

// README, Requirements: without the privileges for a full userfaultfd, the server and the client
// fall back to a user-mode-only one; serve says so, and cat still reads every byte.
function userModeOnlyUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root to switch to uid 65534';
  if (spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status !== 0) return 'no setpriv (util-linux)';
  if (fs.readFileSync('/proc/sys/vm/unprivileged_userfaultfd', 'utf8').trim() !== '0') return 'vm.unprivileged_userfaultfd=1: every user has a full uffd here';
  return null;
}
const noUserModeOnly = userModeOnlyUnavailable();

(noUserModeOnly === null ? test : test.skip)(
  `as uid 65534 (no userfaultfd privilege): serve warns of the user-mode-only fallback, cat through it reads every byte${noUserModeOnly === null ? '' : ` (skipped: ${noUserModeOnly})`}`,
  async () => {
    const asNobody = (args: string[]) => ['--reuid=65534', '--regid=65534', '--clear-groups', CLI, ...args];
    const shared = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-nobody-'));
    fs.chmodSync(shared, 0o777);
    try {
      fs.copyFileSync(image, path.join(shared, 'img'));
      fs.chmodSync(path.join(shared, 'img'), 0o644);
      const svc = path.join(shared, 'svc');
      const server = execFile('setpriv', asNobody(['serve', '--svc-dir', svc]), { env: ENV });
      let serverErr = '';
      server.stderr!.on('data', (d) => (serverErr += d));
      const deadline = Date.now() + 20_000;
      while (!fs.existsSync(path.join(svc, 'fuchsia.starnix.runner.Manager')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const viaServer = spawnSync('setpriv', asNobody(['cat', path.join(shared, 'img'), '/big', '--svc-dir', svc]), { env: ENV, maxBuffer: 1 << 26 });
      const embedded = spawnSync('setpriv', asNobody(['cat', path.join(shared, 'img'), '/big']), { env: ENV, maxBuffer: 1 << 26 });
      const exited = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
      server.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(serverErr).toMatch(/^starnix-pager: warning: only a user-mode-only userfaultfd is allowed here .* fails with EFAULT/m);
      for (const r of [viaServer, embedded]) {
        expect({ status: r.status, stderr: r.stderr.toString() }).toEqual({ status: 0, stderr: '' });
        expect(r.stdout.equals(Buffer.alloc(8 << 20, 7))).toBe(true);
      }
    } finally {
      fs.rmSync(shared, { recursive: true, force: true });
    }
  },
);
