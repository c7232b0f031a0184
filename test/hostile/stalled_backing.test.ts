// Nothing on the server's JavaScript thread waits on a client (issue 12): a client hands the
// server fds of a file on a FUSE file system whose daemon stops answering GETATTR (stallfs,
// test/support/fuse), as a backing (CreatePager, RegisterFile), as the vmo of AttachMapping and as
// a wake watcher. fstat of such an fd would block until the daemon answers; the server looks at
// cached attributes only (statx AT_STATX_DONT_SYNC), so another client keeps being served.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as runner from '../../src/gen/fuchsia_starnix_runner';
import * as mapperLib from '../../src/gen/starnix_pager';
import { Channel } from '../../src/transport/channel';
import { Handle } from '../../src/transport/handle';
import { mountStallfs, stallfsUnavailable } from '../support/fuse';
import { RawPeer, decodeReply, request } from './raw_peer';
import { ServerProcess, TestImage, buildImage, removeImage, sleep, wellBehavedRead } from './support';

const reason = stallfsUnavailable();
let img: TestImage;

beforeAll(() => {
  img = buildImage([150_000], { seed: 33 });
}, 60_000);

afterAll(() => {
  if (img) removeImage(img);
});

/** Resolves with the value, or rejects after ms: a server that waits on the daemon times out. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, sleep(ms).then(() => Promise.reject(new Error(`${what}: no answer within ${ms} ms (the server waits on the stalled file system?)`)))]);
}

(reason === null ? test : test.skip)(
  `a backing, a vmo and a watcher on a file system whose GETATTR stalls: every request is answered and other clients are served${reason === null ? '' : ` (skipped: ${reason})`}`,
  async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hostile-stall-'));
    // The image itself, served through stallfs: a real backing whose attributes stop coming.
    const fsys = await mountStallfs(img.image);
    const server = await ServerProcess.start(path.join(dir, 'svc'), { logLevel: 'error' });
    // Opened while the daemon answers (this process must not look the path up once it stalls).
    const keep = new Handle(fs.openSync(fsys.filePath, 'r'));
    const asVmo = keep.duplicate();
    try {
      fsys.control('stall-getattr 1');
      await sleep(1100); // past the attribute cache's validity: a fstat now would ask the daemon
      const manager = RawPeer.connect(server.svcDir, runner.ManagerDiscoverableName);
      // CreatePager over it, and a RegisterFile (which checks extents against the backing's size).
      const [clientEnd, serverEnd] = Channel.pairHandles();
      const m = request(runner.ManagerMethods.CreatePager, { backingVmo: keep, blockSize: BigInt(img.blockSize), pager: serverEnd });
      manager.send(m.bytes, m.handles as Handle[]);
      const pager = new RawPeer(Channel.fromHandle(clientEnd));
      const f = img.files[0];
      const r = request(runner.PagerMethods.RegisterFile, { name: f.path, inodeNum: f.ino, size: f.size, extents: f.extents });
      pager.send(r.bytes, r.handles as Handle[]);
      const reply = decodeReply(runner.PagerMethods.RegisterFile, await within(pager.next(5000), 5000, 'RegisterFile'));
      expect(reply.tag).toBe('response');
      ((reply.value as { vmo: Handle }).vmo).close();
      // The FUSE file as AttachMapping's vmo: not one of ours, said at once.
      const mapper = RawPeer.connect(server.svcDir, mapperLib.MapperDiscoverableName);
      const [a, b] = Channel.pairHandles(); // any uffd-looking handle will do: the vmo is looked at first
      a.close();
      const am = request(mapperLib.MapperMethods.AttachMapping, { vmo: asVmo, uffd: b, address: 0x10000n, length: 4096n, offset: 0n });
      mapper.send(am.bytes, am.handles as Handle[]);
      const attach = decodeReply(mapperLib.MapperMethods.AttachMapping, await within(mapper.next(5000), 5000, 'AttachMapping'));
      expect(attach.tag).toBe('err');
      // Meanwhile, another client is served, start to end.
      await within(wellBehavedRead(server.svcDir, img), 10_000, 'a well-behaved client');
      expect(server.alive).toBe(true);
      pager.close();
      manager.close();
      mapper.close();
    } finally {
      fsys.control('stall-getattr 0');
      if (asVmo.valid) asVmo.close();
      await server.stop();
      await fsys.unmount();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
  60_000,
);
