// Faults: clients killed (SIGKILL) in the middle of faulting, and the server killed under a
// reading client. The server's fds, and the machine's Shmem (the memfds' pages), must come back
// to where they started; a client of a dead server must fail fast and clearly; a restarted
// server must serve new clients.
//
// KILL_ITERATIONS (default 30) sets how many clients are killed; the soak runs 1000.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PagerClientConnection } from '../../src/client';
import {
  ServerProcess, TestImage, buildImage, expectFdsBack, fdKindsOf, pagerMemfdsOf, removeImage, shmemKb, sleep, spawnClient, waitFor, wellBehavedRead,
} from './support';

const KILLS = Number(process.env.KILL_ITERATIONS ?? 30);
const CONCURRENT = 3;
const MiB = 1 << 20;

let img: TestImage;
let tmp: string;

beforeAll(() => {
  // Eight 1 MiB files that the killed clients fault in, and one of 64 MiB read while the server dies.
  img = buildImage([...Array.from({ length: 8 }, () => MiB), 64 * MiB], { seed: 3 });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hostile-faults-'));
}, 60_000);

afterAll(() => {
  if (img) removeImage(img);
  fs.rmSync(tmp, { recursive: true, force: true });
});

test(`${KILLS} clients killed with SIGKILL while faulting: server fds and machine Shmem come back`, async () => {
  const server = await ServerProcess.start(path.join(tmp, 'svc-kill'));
  try {
    await wellBehavedRead(server.svcDir, img);
    await sleep(200);
    const fdBaseline = server.fdCount();
    const shmemBefore = shmemKb();
    let killed = 0;
    let mappedFirst = 0;
    const rng = (() => {
      let s = 12345;
      return () => ((s = (s * 1103515245 + 12345) >>> 0) % 1000) / 1000;
    })();
    const one = async (): Promise<void> => {
      const c = spawnClient({ mode: 'fault', svcDir: server.svcDir, image: img.image, blockSize: img.blockSize, files: img.files.slice(0, 8) });
      const line = await c.firstLine;
      if (line !== 'mapped') throw new Error(`client failed before faulting: ${line}`);
      mappedFirst++;
      await sleep(Math.floor(rng() * 40)); // somewhere in the middle of its faults
      c.child.kill('SIGKILL');
      await c.output;
      killed++;
    };
    for (let i = 0; i < KILLS; i += CONCURRENT) {
      await Promise.all(Array.from({ length: Math.min(CONCURRENT, KILLS - i) }, one));
    }
    expect(killed).toBe(KILLS);
    expect(mappedFirst).toBe(KILLS);
    expect(server.alive).toBe(true);
    await expectFdsBack(server, fdBaseline, `${KILLS} killed clients`, 10_000);
    expect(pagerMemfdsOf(server.pid)).toBe(0);
    // Machine-wide, so other processes add noise; a leaked pager would hold up to 8 MiB per client.
    const shmemAfter = await waitFor(shmemKb, (kb) => kb - shmemBefore < 8 * 1024, 10_000, `Shmem back near ${shmemBefore} kB`);
    // eslint-disable-next-line no-console
    console.log(`faults: ${KILLS} clients killed mid-fault; server fds ${fdBaseline} -> ${server.fdCount()}; Shmem ${shmemBefore} -> ${shmemAfter} kB`);
    await wellBehavedRead(server.svcDir, img, 3);
  } finally {
    await server.stop();
  }
}, 60_000 + KILLS * 2000);

test('the server killed while a client reads: the read fails with EPIPE within a second, never zeros; a restarted server serves', async () => {
  const svc = path.join(tmp, 'svc-die');
  let server = await ServerProcess.start(svc, { cli: true });
  const big = img.files[8];
  const client = PagerClientConnection.connect(svc);
  const pager = client.createPager(fs.openSync(img.image, 'r'), img.blockSize);
  const file = await pager.registerFile({ name: big.path, inode: big.ino, size: big.size, extents: big.extents });
  const mapping = await file.map();
  let killedAt = 0;
  let failure: NodeJS.ErrnoException | null = null;
  let failedAt = 0;
  let goodChunks = 0;
  const CHUNK = 256 * 1024;
  try {
    for (let off = 0; off < big.data.length; off += CHUNK) {
      if (off === 4 * CHUNK) {
        server.child.kill('SIGKILL');
        await server.waitExit();
        killedAt = Date.now();
      }
      let got: Buffer;
      try {
        got = await mapping.readAsync(off, CHUNK);
      } catch (e) {
        failure = e as NodeJS.ErrnoException;
        failedAt = Date.now();
        break;
      }
      // Pages already paged in before the kill may still be read; whatever is read must be right.
      expect(got.equals(big.data.subarray(off, off + CHUNK))).toBe(true);
      goodChunks++;
      if (killedAt > 0 && Date.now() - killedAt > 1000) break;
    }
    expect(killedAt).toBeGreaterThan(0);
    expect(failure).not.toBeNull();
    expect(failure!.code).toBe('EPIPE');
    expect(failedAt - killedAt).toBeLessThan(1000);
    expect(goodChunks).toBeLessThan(big.data.length / CHUNK);
    // A failed page stays failed, also for a synchronous read.
    expect(() => mapping.read(big.data.length - 4096, 4096)).toThrow(expect.objectContaining({ code: 'EPIPE' }));
  } finally {
    mapping.close();
    file.close();
    pager.close();
    client.close();
  }
  // The stale socket is replaced; new clients are served.
  server = await ServerProcess.start(svc, { cli: true });
  try {
    await wellBehavedRead(svc, img, 8);
    expect(fdKindsOf(server.pid)).toBeDefined();
  } finally {
    await server.stop();
  }
}, 60_000);
