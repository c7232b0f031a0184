// The benchmark's server process: a PagerService in its own process, so that its RSS and open
// fds are its own and the client talks to it over the real sockets.
//   node dist/bench/server.js SVC_DIR fixed|adaptive [THREADS] [--trace=FILE] [--huge-pages=never|auto|always]   (default never)
// Prints "ready" once both sockets listen. Each line "stats" on stdin is answered with one line
// of JSON (the service's counters); stdin closing or SIGTERM stops it.
// dropCache is off: the benchmark's image is on tmpfs, where the page cache is the storage
// (a DONTNEED hint could do nothing there), and every contender must read the same warm image.
import * as readline from 'readline';
import { setLogLevel } from '../src/log';
import { PagerService } from '../src/server/service';

function main(): void {
  const args = process.argv.slice(2);
  const traceFile = args.find((a) => a.startsWith('--trace='))?.slice('--trace='.length);
  const hugePages = args.find((a) => a.startsWith('--huge-pages='))?.slice('--huge-pages='.length);
  const [svcDir, readahead, threads] = args.filter((a) => !a.startsWith('--'));
  if (svcDir === undefined || (readahead !== 'fixed' && readahead !== 'adaptive')) {
    process.stderr.write('usage: node dist/bench/server.js SVC_DIR fixed|adaptive [THREADS]\n');
    process.exit(2);
  }
  setLogLevel('error');
  // The benchmark's one client may use the whole budget (10,000 files in one pager: more than a
  // connection's or a uid's share of the default, and than the default's count of files; the fds
  // budget still bounds it).
  const budget = { files: 1 << 20, uidShare: 1, connectionShare: 1 };
  const huge = hugePages === 'auto' || hugePages === 'always' ? hugePages : 'never';
  const service = PagerService.start({ svcDir, readahead, threads: threads ? Number(threads) : undefined, dropCache: false, traceFile, hugePages: huge, budget });
  const stop = () => {
    service.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (line.trim() !== 'stats') return;
    const s = service.stats();
    process.stdout.write(
      JSON.stringify({ ...s, bytesSupplied: Number(s.bytesSupplied), bytesZeroed: Number(s.bytesZeroed) }) + '\n',
    );
  });
  lines.on('close', stop);
  process.stdout.write('ready\n');
}

main();
