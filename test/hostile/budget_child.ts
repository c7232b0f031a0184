// A hostile client in its own process (run as another uid by test/hostile/budget.test.ts): it opens
// several Manager connections and takes as much of one resource as the server lets it, keeping
// everything it gets. It prints one JSON line saying how far each connection got, then holds on to
// it all until killed (so that the test can check the server while the hostile client is there,
// and that everything comes back once it is gone).
//
// argv[2]: JSON { mode: 'mapped' | 'pagers' | 'watchers', svcDir, image, blockSize, connections,
//                 perConnection (how many each connection asks for: one number, or one per connection), fileSize? }
import * as fs from 'fs';
import * as runner from '../../src/gen/fuchsia_starnix_runner';
import { native } from '../../src/native';
import { Channel } from '../../src/transport/channel';
import { Handle } from '../../src/transport/handle';
import { RawPeer, decodeReply, request } from './raw_peer';

interface Args {
  mode: 'mapped' | 'pagers' | 'watchers';
  svcDir: string;
  image: string;
  blockSize: number;
  connections: number;
  perConnection: number | number[];
  fileSize?: string;
}

/** How far one connection got: how many it was given, and how it was stopped. */
interface Outcome {
  got: number;
  stoppedBy: string;
}

const args = JSON.parse(process.argv[2]) as Args;
const kept: unknown[] = []; // everything the server gave us: held until we are killed
let want = 0; // how many the current connection asks for

async function createPager(manager: RawPeer): Promise<RawPeer> {
  const [clientEnd, serverEnd] = Channel.pairHandles();
  const backing = new Handle(fs.openSync(args.image, 'r'));
  const m = request(runner.ManagerMethods.CreatePager, { backingVmo: backing, blockSize: BigInt(args.blockSize), pager: serverEnd });
  manager.send(m.bytes, m.handles as Handle[]);
  return new RawPeer(Channel.fromHandle(clientEnd));
}

/** A reply to a RegisterFile, or how the pager channel ended. */
async function registerFile(pager: RawPeer, inode: number, size: bigint): Promise<string> {
  const r = request(runner.PagerMethods.RegisterFile, { name: `sparse${inode}`, inodeNum: inode, size, extents: [] });
  try {
    pager.send(r.bytes, r.handles as Handle[]);
  } catch {
    // Closed already (a refused pager): its epitaph is still to be read.
  }
  const ev = await pager.next(5000);
  if (ev.type === 'epitaph') return `epitaph ${ev.status}`;
  if (ev.type !== 'message') return ev.type;
  const reply = decodeReply(runner.PagerMethods.RegisterFile, ev) as { tag: string; value: { vmo?: Handle } | number };
  if (reply.tag !== 'response') return `error ${reply.value as number}`;
  kept.push((reply.value as { vmo?: Handle }).vmo);
  return 'ok';
}

async function mapped(manager: RawPeer, first: number): Promise<Outcome> {
  const pager = await createPager(manager);
  kept.push(pager);
  for (let i = 0; i < want; i++) {
    const r = await registerFile(pager, first + i, BigInt(args.fileSize ?? String(1n << 40n)));
    if (r !== 'ok') return { got: i, stoppedBy: r };
  }
  return { got: want, stoppedBy: 'none' };
}

async function pagers(manager: RawPeer, first: number): Promise<Outcome> {
  for (let i = 0; i < want; i++) {
    const pager = await createPager(manager);
    kept.push(pager);
    // A live pager answers; a refused one is closed with an epitaph.
    const r = await registerFile(pager, first + i, 4096n);
    if (r !== 'ok') return { got: i, stoppedBy: r };
  }
  return { got: want, stoppedBy: 'none' };
}

async function watchers(manager: RawPeer): Promise<Outcome> {
  for (let i = 0; i < want; i++) {
    const [mine, theirs] = native.unixSocketPair(2 /* SOCK_DGRAM: an eventpair */) as [number, number];
    kept.push(new Handle(mine)); // our end of the eventpair stays open: the watcher never hangs up
    const m = request(runner.ManagerMethods.RegisterWakeWatcher, { watcher: new Handle(theirs) });
    manager.send(m.bytes, m.handles as Handle[]);
    const ev = await manager.next(5000);
    if (ev.type === 'epitaph') return { got: i, stoppedBy: `epitaph ${ev.status}` };
    if (ev.type !== 'message') return { got: i, stoppedBy: ev.type };
  }
  return { got: want, stoppedBy: 'none' };
}

async function main(): Promise<void> {
  const outcomes: Outcome[] = [];
  for (let c = 0; c < args.connections; c++) {
    const manager = RawPeer.connect(args.svcDir, runner.ManagerDiscoverableName);
    kept.push(manager);
    const first = 1000 * (c + 1);
    want = Array.isArray(args.perConnection) ? args.perConnection[c] : args.perConnection;
    outcomes.push(args.mode === 'mapped' ? await mapped(manager, first) : args.mode === 'pagers' ? await pagers(manager, first) : await watchers(manager));
  }
  process.stdout.write(JSON.stringify(outcomes) + '\n');
  setInterval(() => undefined, 1 << 30); // hold everything until killed
}

main().catch((e) => {
  process.stdout.write(`error ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
