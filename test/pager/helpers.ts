// Shared helpers for the pager tests: a pager over a memfd, and a mapping attached to it.
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { NativePager, Extent, createMemfdForTests, PagerOptions } from '../../src/pager/native_pager';
import { FileMapping } from '../../src/client/mapping';

export const PAGE = 4096;

export interface Opened {
  fd: number;
  mapping: FileMapping;
  id: number;
  close(): void;
}

/** Registers a file and maps it the way a client does: map, hand the uffd to the pager. */
export function openFile(pager: NativePager, name: string, inode: number, size: number, extents: Extent[]): Opened {
  const { fd } = pager.registerFile(name, inode, BigInt(size), extents);
  const mapping = FileMapping.open(fd, BigInt(size));
  const id = pager.attachMapping(fd, mapping.uffdForPager(), mapping.address, mapping.length, 0n);
  return {
    fd,
    mapping,
    id,
    close() {
      mapping.close();
      fs.closeSync(fd);
    },
  };
}

export function memfdPager(backingSize: number, blockSize: number, opts?: PagerOptions): { backing: number; pager: NativePager } {
  const backing = createMemfdForTests('backing', backingSize);
  const pager = NativePager.create(backing, blockSize, opts);
  return { backing, pager };
}

export async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function ext(logicalStart: number, logicalEnd: number, physicalBlock: number): Extent {
  return { logicalStart, logicalEnd, physicalBlock: BigInt(physicalBlock) };
}

export { openFdCount } from '../transport/helpers';

/** A connected Unix stream socket pair: a mapping watches `client`'s fd; destroying `serverSide` is the pager's death. */
export async function socketPair(name: string): Promise<{ client: net.Socket; serverSide: net.Socket; close(): void }> {
  const sockPath = path.join(os.tmpdir(), `review-${name}-${process.pid}`);
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(sockPath, r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.connect(sockPath);
  await new Promise((r) => client.once('connect', r));
  const serverSide = await accepted;
  return {
    client,
    serverSide,
    close() {
      client.destroy();
      serverSide.destroy();
      server.close();
    },
  };
}
