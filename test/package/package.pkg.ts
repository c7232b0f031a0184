// The package as a user meets it (`npm run test:package`; .ci/run runs it after npm test): `npm pack`,
// the tarball installed into an empty project (its addon built by the install script, which the
// project allows as the README says), then every TypeScript block of the README written out
// unmodified, compiled with the project's own TypeScript ("module": "nodenext": ES modules and a
// CommonJS .cts) and run: against a running `starnix-pager serve` and against an embedded server;
// the README's FIDL library compiled by the installed `starnix-pager codegen`, its echo server and
// client run in two processes over a service directory.
import { ChildProcess, execFileSync, spawn, spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { findTool, seededBytes } from '../support/images';

const REPO = path.resolve(__dirname, '..', '..');
const README = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');

interface Block {
  lang: string;
  name: string | undefined;
  body: string;
}

/** The fenced blocks of the README: ```lang [file name]. */
function readmeBlocks(): Block[] {
  const blocks: Block[] = [];
  const fence = /^```(\w+)(?:[ \t]+(\S+))?[ \t]*\n([\s\S]*?)^```[ \t]*$/gm;
  for (let m = fence.exec(README); m !== null; m = fence.exec(README)) blocks.push({ lang: m[1], name: m[2], body: m[3] });
  return blocks;
}

/** What this test does with each TypeScript block of the README (a new block needs a line here). */
const PLANNED_TS_BLOCKS = ['read_motd.ts', 'read_big.cts', 'echo_server.ts', 'echo_client.ts'];

const MOTD = 'Hello from /etc/motd, paged in from an installed starnix-pager.\n';
const BIG = seededBytes(42, 5 * 1024 * 1024 + 123);

let tmp: string;
let project: string;
let tarball: string;
let packedFiles: string[];
let installLog: string;
const servers: ChildProcess[] = [];

function versionOf(pkg: string): string {
  return (JSON.parse(fs.readFileSync(path.join(REPO, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
}

function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout + r.stderr;
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  leftovers: string[];
}

/** Runs `node FILE ARGS` in the project with a TMPDIR of its own (to see what it leaves there). */
function runNode(file: string, args: string[], env: NodeJS.ProcessEnv = {}): Ran {
  const childTmp = fs.mkdtempSync(path.join(tmp, 'run-tmp-'));
  const r = spawnSync(process.execPath, [file, ...args], {
    cwd: project,
    env: { ...process.env, TMPDIR: childTmp, ...env },
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 1 << 26,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, leftovers: fs.readdirSync(childTmp) };
}

async function waitForFile(p: string, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!fs.existsSync(p)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts a long-running process in the project; it is stopped with SIGTERM in afterAll. */
function startProcess(cmd: string, args: string[]): { child: ChildProcess; stderr: () => string } {
  const child = spawn(cmd, args, { cwd: project, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  child.stdout!.resume();
  servers.push(child);
  return { child, stderr: () => err };
}

function stop(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.kill('SIGTERM');
  });
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'package-test-'));
  // npm pack, as a publisher would (dist/ is built by `npm run test:package` first).
  const packed = JSON.parse(sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], REPO).replace(/^[^[]*/, '')) as {
    filename: string;
    files: { path: string }[];
  }[];
  tarball = path.join(tmp, packed[0].filename);
  packedFiles = packed[0].files.map((f) => f.path).sort();

  // An empty project, ES modules by default, that allows the package's install script the way
  // the README says (the key of a tarball is its file: path; from the registry, its name).
  project = path.join(tmp, 'project');
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({
    name: 'uses-starnix-pager',
    version: '1.0.0',
    private: true,
    type: 'module',
    allowScripts: { [`file:${tarball}`]: true, 'msgpackr-extract': false },
  }, null, 2));
  installLog = sh('npm', [
    'install', '--no-audit', '--no-fund', '--prefer-offline',
    tarball, `typescript@${versionOf('typescript')}`, `@types/node@${versionOf('@types/node')}`,
  ], project);

  // The README's blocks, as files of the project.
  for (const b of readmeBlocks()) {
    if ((b.lang === 'ts' || b.lang === 'fidl') && b.name !== undefined) fs.writeFileSync(path.join(project, b.name), b.body);
  }
  // The README's codegen command line, run as written.
  const codegen = README.split('\n').find((l) => l.startsWith('npx starnix-pager codegen '));
  if (codegen === undefined) throw new Error('the README shows no `npx starnix-pager codegen` line');
  sh('sh', ['-c', codegen.replace(/#.*$/, '')], project);
  fs.writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { module: 'nodenext', target: 'ES2022', strict: true, types: ['node'], skipLibCheck: false },
    include: ['*.ts', '*.cts', 'gen/*.ts'],
  }, null, 2));
  sh(process.execPath, [path.join(project, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], project);

  // disk.img with what the examples read.
  const root = path.join(tmp, 'root');
  fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
  fs.mkdirSync(path.join(root, 'data'));
  fs.writeFileSync(path.join(root, 'etc', 'motd'), MOTD);
  fs.writeFileSync(path.join(root, 'data', 'big.bin'), BIG);
  execFileSync(findTool('mkfs.ext4'), ['-q', '-F', '-b', '4096', '-d', root, path.join(project, 'disk.img'), '32M']);
}, 900_000);

afterAll(async () => {
  for (const s of servers) await stop(s);
  if (tmp !== undefined) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('the tarball', () => {
  test('holds the library, its types, the FIDL runtime, the CLI, the addon sources and LICENSE; no tests, sources or maps', () => {
    for (const f of [
      'LICENSE', 'README.md', 'package.json', 'binding.gyp', 'bin/starnix-pager',
      'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/fidl/index.js', 'dist/src/fidl/index.d.ts',
      'dist/src/cli/main.js', 'dist/codegen/cli.js', 'native/pager_core.cc', 'native/uffd.h', 'fidl/zx.fidl',
    ]) expect(packedFiles).toContain(f);
    const stray = packedFiles.filter((f) => /^(test|bench|examples|docker|src|codegen|scripts|dist\/(test|bench|examples))\//.test(f) || f.endsWith('.map'));
    expect(stray).toEqual([]);
  });

  test('LICENSE is the BSD-2-Clause package.json names, of the starnix-pager authors', () => {
    const license = fs.readFileSync(path.join(project, 'node_modules', 'starnix-pager', 'LICENSE'), 'utf8');
    expect(license).toMatch(/^BSD 2-Clause License/);
    expect(license).toMatch(/Copyright \(c\) \d{4}, The starnix-pager authors/);
    expect(JSON.parse(fs.readFileSync(path.join(project, 'node_modules', 'starnix-pager', 'package.json'), 'utf8')).license).toBe('BSD-2-Clause');
  });

  test('installs into an empty project: the addon is built, and npm has no install-script warning left', () => {
    expect(fs.existsSync(path.join(project, 'node_modules', 'starnix-pager', 'build', 'Release', 'starnix_native.node'))).toBe(true);
    expect(installLog).not.toMatch(/install-scripts|allowScripts/);
  });

  test('the installed CLI runs', () => {
    const r = spawnSync(path.join(project, 'node_modules', '.bin', 'starnix-pager'), ['--version'], { encoding: 'utf8' });
    const version = (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
    expect({ status: r.status, stdout: r.stdout }).toEqual({ status: 0, stdout: `starnix-pager ${version}\n` });
  });
});

test('every TypeScript block of the README has a file name and a run below', () => {
  const names = readmeBlocks().filter((b) => b.lang === 'ts' || b.lang === 'typescript').map((b) => b.name);
  expect(names.sort()).toEqual([...PLANNED_TS_BLOCKS].sort());
});

describe('README blocks, compiled in the project and run', () => {
  let svcDir: string;
  beforeAll(async () => {
    svcDir = path.join(tmp, 'svc');
    startProcess(path.join(project, 'node_modules', '.bin', 'starnix-pager'), ['serve', '--svc-dir', svcDir]);
    await waitForFile(path.join(svcDir, 'fuchsia.starnix.runner.Manager'), 'starnix-pager serve');
  }, 60_000);

  test.each([
    ['an embedded server', () => ({})],
    ['a running server', () => ({ STARNIX_PAGER_SVC: svcDir })],
  ])('read_motd.ts (ES module, `using`), with %s', (_what, env) => {
    const r = runNode('read_motd.js', [], env());
    expect(r).toEqual({ code: 0, stdout: MOTD, stderr: '', leftovers: [] });
  });

  test.each([
    ['an embedded server', () => ({})],
    ['a running server', () => ({ STARNIX_PAGER_SVC: svcDir })],
  ])('read_big.cts (CommonJS, close() by hand), with %s', (_what, env) => {
    const r = runNode('read_big.cjs', [], env());
    expect(r).toEqual({ code: 0, stdout: `${crypto.createHash('sha256').update(BIG).digest('hex')}\n`, stderr: '', leftovers: [] });
  });

  test('my.echo.fidl -> gen/my_echo.ts importing starnix-pager/fidl; echo_server.ts and echo_client.ts in two processes', async () => {
    const generated = fs.readFileSync(path.join(project, 'gen', 'my_echo.ts'), 'utf8');
    expect(generated).toMatch(/^import \* as fidl from 'starnix-pager\/fidl';$/m);
    const echoSvc = path.join(tmp, 'echo-svc');
    const server = startProcess(process.execPath, ['echo_server.js', echoSvc]);
    await waitForFile(path.join(echoSvc, 'my.echo.Echo'), 'the echo server');
    const client = runNode('echo_client.js', [echoSvc]);
    expect(client).toEqual({ code: 0, stdout: 'hello over a SOCK_SEQPACKET channel\n', stderr: '', leftovers: [] });
    expect(await stop(server.child)).toEqual({ code: 0, signal: null });
    expect(server.stderr()).toBe('');
    expect(fs.existsSync(path.join(echoSvc, 'my.echo.Echo'))).toBe(false);
  });
});
