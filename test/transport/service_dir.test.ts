// The service directory: real listening sockets in a temporary directory, real connections
// from this process and from child processes (one of them running as another uid).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { native } from '../../src/native';
import { Channel } from '../../src/transport/channel';
import { connectService, listenService, PeerCredentials, ServiceDirError, ServiceListener } from '../../src/transport/service_dir';
import { Inbox, spawnPeer, waitFor } from './helpers';

const PROTOCOL = 'fuchsia.starnix.runner.Manager';

let root: string;
let svcDir: string;
const listeners: ServiceListener[] = [];

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'svc-test-'));
  svcDir = path.join(root, 'svc'); // missing: listenService creates it
});

afterEach(() => {
  for (const l of listeners.splice(0)) l.close();
  fs.rmSync(root, { recursive: true, force: true });
});

function listen(onChannel: (ch: Channel, peer: PeerCredentials) => void, allowUids?: number[]): ServiceListener {
  const l = listenService(svcDir, PROTOCOL, onChannel, { allowUids });
  listeners.push(l);
  return l;
}

function expectServiceError(fn: () => unknown, code: string, pathPart: string): ServiceDirError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(ServiceDirError);
  expect((caught as ServiceDirError).code).toBe(code);
  expect((caught as Error).message).toContain(pathPart);
  return caught as ServiceDirError;
}

test('permissions: directory 0700, socket 0600; a connection carries messages both ways', async () => {
  const served = new Promise<{ ch: Channel; peer: PeerCredentials }>((resolve) => listen((ch, peer) => resolve({ ch, peer })));
  expect(fs.statSync(svcDir).mode & 0o777).toBe(0o700);
  const socketStat = fs.lstatSync(path.join(svcDir, PROTOCOL));
  expect(socketStat.isSocket()).toBe(true);
  expect(socketStat.mode & 0o777).toBe(0o600);

  const client = connectService(svcDir, PROTOCOL);
  const clientInbox = new Inbox(client);
  client.start();
  const { ch: server, peer } = await served;
  expect(peer).toEqual({ uid: process.getuid!(), gid: process.getgid!(), pid: process.pid });
  const serverInbox = new Inbox(server);
  server.start();
  client.send(Buffer.from('ping'), []);
  expect((await serverInbox.next()).bytes.toString()).toBe('ping');
  server.send(Buffer.from('pong'), []);
  expect((await clientInbox.next()).bytes.toString()).toBe('pong');
  client.close();
  await waitFor(server, 'close');
});

test('the peer pid of a connection from another process is that process', async () => {
  const served = new Promise<PeerCredentials>((resolve) =>
    listen((ch, peer) => {
      ch.close();
      resolve(peer);
    }),
  );
  const child = spawnPeer('connect', [svcDir, PROTOCOL]);
  const peer = await served;
  expect(await child.exited).toBe(0);
  expect(child.output()).toContain('connected');
  expect(peer.pid).toBe(child.child.pid);
  child.channel.close();
});

test('a stale socket is replaced; a live one is not stolen', async () => {
  // A stale socket: bound and listened on, then its listener died without removing it.
  fs.mkdirSync(svcDir, { mode: 0o700 });
  const socketPath = path.join(svcDir, PROTOCOL);
  fs.closeSync(native.listenSocket(socketPath));
  expect(fs.lstatSync(socketPath).isSocket()).toBe(true);
  expectServiceError(() => connectService(svcDir, PROTOCOL), 'ECONNREFUSED', socketPath);

  let accepted = 0;
  const first = listen((ch) => {
    accepted += 1;
    ch.close();
  });
  // The live one stays: a second listener is refused, naming the path.
  expectServiceError(() => listenService(svcDir, PROTOCOL, () => undefined), 'EADDRINUSE', socketPath);
  const client = connectService(svcDir, PROTOCOL);
  client.start();
  await waitFor(client, 'close'); // the first listener accepted it (and closed it)
  expect(accepted).toBeGreaterThanOrEqual(1); // its own probe from the refused listener may count too
  expect(first.closed).toBe(false);

  // Something that is not a socket is never removed.
  const other = path.join(svcDir, 'not-a-socket');
  fs.writeFileSync(other, 'data');
  expectServiceError(() => listenService(svcDir, 'not-a-socket', () => undefined), 'EEXIST', other);
  expect(fs.readFileSync(other, 'utf8')).toBe('data');
});

test('close() removes the socket; connecting then names the path', () => {
  const l = listen(() => undefined);
  const socketPath = path.join(svcDir, PROTOCOL);
  l.close();
  expect(fs.existsSync(socketPath)).toBe(false);
  expectServiceError(() => connectService(svcDir, PROTOCOL), 'ENOENT', socketPath);
});

test('allow-list: a uid not in it is closed without reaching the handler', async () => {
  let handled = 0;
  listen(() => (handled += 1), [4242]);
  const client = connectService(svcDir, PROTOCOL);
  client.start();
  await waitFor(client, 'close');
  expect(handled).toBe(0);
});

test('another uid cannot even connect: the 0700 directory keeps it out', async () => {
  listen(() => undefined);
  const child = spawnPeer('connect', [svcDir, PROTOCOL], { uid: 65534, gid: 65534 });
  expect(await child.exited).toBe(0);
  expect(child.output()).toContain('error EACCES');
  child.channel.close();
});

test('protocol names that are not a file name are refused', () => {
  expectServiceError(() => listenService(svcDir, '../escape', () => undefined), 'EINVAL', 'escape');
  expectServiceError(() => connectService(svcDir, ''), 'EINVAL', svcDir);
});

test('one listener per protocol: another process serving it is named (pid, lock file); once it is killed, a new listener takes over', async () => {
  const { spawn } = await import('child_process');
  const serviceDir = path.join(__dirname, '..', '..', 'dist', 'src', 'transport', 'service_dir.js');
  const child = spawn(
    process.execPath,
    ['-e', `require(${JSON.stringify(serviceDir)}).listenService(${JSON.stringify(svcDir)}, ${JSON.stringify(PROTOCOL)}, (ch) => ch.close()); console.log('ready'); setInterval(() => {}, 1000);`],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`listener process exited with ${code}`)));
    });
    const socketPath = path.join(svcDir, PROTOCOL);
    const refused = expectServiceError(() => listenService(svcDir, PROTOCOL, () => undefined), 'EADDRINUSE', socketPath);
    expect(refused.message).toContain(`pid ${child.pid}`);
    expect(refused.message).toContain(`.${PROTOCOL}.lock`);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    // Its socket file is left behind, stale; its lock died with it.
    expect(fs.lstatSync(socketPath).isSocket()).toBe(true);
    let accepted = 0;
    listen((ch) => {
      accepted += 1;
      ch.close();
    });
    const client = connectService(svcDir, PROTOCOL);
    client.start();
    await waitFor(client, 'close');
    expect(accepted).toBe(1);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});
