// A client whose backing is a file on stallfs (test/support/fuse), for test/hostile/stalled_read.test.ts.
// Runs as compiled JS (dist/test/hostile/stall_client_child.js) with one JSON argument
// { svcDir, backing, blockSize, file: {path, ino, size, extents}, oDirect? }: creates a pager over
// `backing` (opened O_DIRECT when oDirect: the server's dup shares that flag),
// registers and maps the file, prints "mapped", then obeys lines on stdin:
//   read [OFFSET [LENGTH]]
//                starts an asynchronous read of the file (all of it by default: a fault the pager serves from the
//                backing: with stallfs's READ stalled, the pager thread that serves it is stuck);
//                prints "read ok <bytes>" or "read error <code> <message>" when it settles
//   close-pager  closes the pager's channel (the server stops that pager); prints "pager-closed"
//   exit         exits
// Each line is answered on stdout, so the test knows where this client is.
import * as fs from 'fs';
import * as readline from 'readline';
import { FileMapping, PagedFile, PagerClientConnection, RemotePager } from '../../src/client';

interface Args {
  svcDir: string;
  backing: string;
  blockSize: number;
  oDirect?: boolean;
  file: { path: string; ino: number; size: string; extents: { logicalStart: number; logicalEnd: number; physicalBlock: string }[] };
}

const args = JSON.parse(process.argv[2]) as Args;
const say = (line: string): void => {
  process.stdout.write(line + '\n');
};

async function main(): Promise<void> {
  const client = PagerClientConnection.connect(args.svcDir);
  const pager: RemotePager = client.createPager(fs.openSync(args.backing, fs.constants.O_RDONLY | (args.oDirect ? fs.constants.O_DIRECT : 0)), args.blockSize);
  const f = args.file;
  const file: PagedFile = await pager.registerFile({
    name: f.path,
    inode: f.ino,
    size: BigInt(f.size),
    extents: f.extents.map((e) => ({ logicalStart: e.logicalStart, logicalEnd: e.logicalEnd, physicalBlock: BigInt(e.physicalBlock) })),
  });
  const mapping: FileMapping = await file.map();
  say('mapped');
  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const [command, ...rest] = line.trim().split(/\s+/);
    switch (command) {
      case 'read': {
        const offset = Number(rest[0] ?? 0);
        const length = Number(rest[1] ?? Number(f.size) - offset);
        mapping.readAsync(offset, length).then(
          (b) => say(`read ok ${b.length}`),
          (e: NodeJS.ErrnoException) => say(`read error ${e.code ?? '-'} ${e.message}`),
        );
        break;
      }
      case 'close-pager':
        pager.close();
        say('pager-closed');
        break;
      case 'exit':
        process.exit(0);
    }
  });
}

main().catch((e: NodeJS.ErrnoException) => {
  say(`error ${e.code ?? ''} ${e.message}`);
  process.exit(1);
});
