// One inotify instance for the whole server, not one per pager: 3 connections x 60 pagers, each
// with a registered file, would need 180 instances of the uid's 128 (fs.inotify.max_user_instances)
// if every pager made its own, and CreatePager would fail for everyone (and every other process of
// the uid would get EMFILE from inotify_init1).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PagerClientConnection, PagedFile, RemotePager } from '../../src/client';
import { ServerProcess, TestImage, buildImage, expectFdsBack, removeImage, wellBehavedRead } from './support';

let img: TestImage;
let svcDir: string;
let server: ServerProcess;

beforeAll(async () => {
  img = buildImage([64 << 10, 128 << 10]);
  svcDir = fs.mkdtempSync(path.join(os.tmpdir(), 'inotify-'));
  server = await ServerProcess.start(svcDir);
});

afterAll(async () => {
  await server?.stop();
  if (img) removeImage(img);
  if (svcDir) fs.rmSync(svcDir, { recursive: true, force: true });
});

function inotifyFdsOf(pid: number): string[] {
  return fs.readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:inotify';
    } catch {
      return false; // closed meanwhile
    }
  });
}

function inotifyInstancesOf(pid: number): number {
  return inotifyFdsOf(pid).length;
}

/** Watches of the process's inotify instances (one "inotify wd:" line each in fdinfo). */
function inotifyWatchesOf(pid: number): number {
  let n = 0;
  for (const fd of inotifyFdsOf(pid)) n += (fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8').match(/^inotify wd:/gm) ?? []).length;
  return n;
}

test('3 connections x 60 pagers with a file each: the server holds one inotify instance, and still serves', async () => {
  await wellBehavedRead(svcDir, img, 1);
  const fds = server.fdCount();
  const conns: PagerClientConnection[] = [];
  const pagers: RemotePager[] = [];
  const files: PagedFile[] = [];
  const f = img.files[0];
  try {
    for (let c = 0; c < 3; c++) {
      const conn = PagerClientConnection.connect(svcDir);
      conns.push(conn);
      for (let p = 0; p < 60; p++) {
        const pager = conn.createPager(fs.openSync(img.image, 'r'), img.blockSize);
        pagers.push(pager);
        files.push(await pager.registerFile({ name: f.path, inode: f.ino, size: f.size, extents: f.extents }));
      }
    }
    expect(inotifyInstancesOf(server.pid)).toBe(1);
    expect(inotifyWatchesOf(server.pid)).toBe(180);
    // A new client is served meanwhile, through a 181st pager.
    await wellBehavedRead(svcDir, img, 1);
    // And one of the 180 files reads right.
    const mapping = await files[177].map();
    try {
      expect((await mapping.readAsync(0, Number(f.size))).equals(f.data)).toBe(true);
    } finally {
      mapping.close();
    }
  } finally {
    for (const file of files) file.close();
    for (const pager of pagers) pager.close();
    for (const conn of conns) conn.close();
  }
  // Every pager stops and lets go of its watch; the shared instance stays (made once).
  await expectFdsBack(server, fds, '180 pagers', 15000);
  expect(inotifyInstancesOf(server.pid)).toBe(1);
  expect(inotifyWatchesOf(server.pid)).toBe(0);
});
