// A peer process for the transport tests and bench: gets one channel end as fd 3 and acts on
// what arrives, by mode (argv[2]). Runs as compiled JS (dist/test/transport/peer.js).
//   echo        sends every message straight back, handles included; "FDCOUNT" is answered with
//               the number of open fds in this process (for leak checks).
//   inspect     each message carries [memfd, channel end]: reads the memfd, writes "child was here"
//               at offset 0, sends "seen:<memfd text>" through the channel end, and answers on the
//               main channel with a JSON report of the handle kinds.
//   nolistener  starts the channel with no 'message' listener (arriving handles must be closed).
//   gc          (with --expose-gc) drops 100 idle pairs, collects, answers fd counts "before mid after".
//   unref       starts the channel, unrefs it, and should exit at once with the channel still open.
//   close-on-message  closes the channel when the first message arrives.
//   connect SVC_DIR PROTOCOL  connects to a service and prints "connected" or "error CODE".
// The process exits when its channel closes: a closed channel must not hold the event loop.
import * as fs from 'fs';
import { Channel } from '../../src/transport/channel';
import { Handle } from '../../src/transport/handle';
import { handleInfo } from '../../src/transport/handle_info';
import { connectService } from '../../src/transport/service_dir';

const mode = process.argv[2];

function openFdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

function main(): void {
  if (mode === 'connect') {
    try {
      const ch = connectService(process.argv[3], process.argv[4]);
      process.stdout.write('connected\n');
      ch.close();
    } catch (e) {
      process.stdout.write(`error ${(e as NodeJS.ErrnoException).code ?? String(e)}\n`);
    }
    return;
  }
  const ch = Channel.fromHandle(new Handle(3), { name: `peer-${mode}` });
  ch.on('close', () => process.stdout.write(`peer-closed ${mode}\n`));
  switch (mode) {
    case 'echo':
      ch.on('message', (bytes: Buffer, handles: Handle[]) => {
        if (handles.length === 0 && bytes.length === 7 && bytes.toString() === 'FDCOUNT') {
          ch.send(Buffer.from(String(openFdCount())), []);
          return;
        }
        ch.send(bytes, handles);
      });
      break;
    case 'inspect':
      ch.on('message', (_bytes: Buffer, handles: Handle[]) => {
        const [memfd, end] = handles;
        const kinds = handles.map((h) => handleInfo(h).kind);
        const size = Number(handleInfo(memfd).size ?? 0n);
        const text = Buffer.alloc(size);
        fs.readSync(memfd.fd, text, 0, size, 0);
        fs.writeSync(memfd.fd, Buffer.from('child was here'), 0, 14, 0);
        const side = Channel.fromHandle(end, { name: 'peer-side' });
        side.send(Buffer.from(`seen:${text.toString()}`), []);
        side.close();
        memfd.close();
        ch.send(Buffer.from(JSON.stringify({ kinds, size })), []);
      });
      break;
    case 'nolistener':
      break;
    case 'gc': {
      // Run with --expose-gc: idle channels nobody holds are collected and close their fds;
      // a started one stays open (it is listening). Answers "before mid after".
      const gc = (globalThis as { gc?: () => void }).gc;
      if (!gc) throw new Error('peer gc: run node with --expose-gc');
      const before = openFdCount();
      (() => {
        for (let i = 0; i < 100; i++) Channel.pair();
      })();
      const mid = openFdCount();
      void (async () => {
        for (let i = 0; i < 5; i++) {
          gc();
          await new Promise((r) => setImmediate(r));
        }
        ch.send(Buffer.from(`${before} ${mid} ${openFdCount()}`), []);
      })();
      break;
    }
    case 'unref':
      // Open and started, but unref'd: must not keep this process alive.
      ch.on('message', () => undefined);
      ch.unref();
      process.on('exit', () => process.stdout.write(`exiting with channel open: ${!ch.closed}\n`));
      break;
    case 'close-on-message':
      ch.on('message', (_bytes: Buffer, handles: Handle[]) => {
        for (const h of handles) h.close();
        ch.close();
      });
      break;
    default:
      throw new Error(`peer: unknown mode ${mode}`);
  }
  ch.start();
}

main();
