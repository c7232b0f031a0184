// The server under test, in its own process (so its fds, memory and death are its own):
// PagerService.start with options from argv[2] (JSON: svcDir, allowUids, limits, budget, threads).
// Runs as compiled JS (dist/test/hostile/server_child.js); stops on SIGTERM.
import { PagerService } from '../../src/server/service';

const opts = JSON.parse(process.argv[2]) as { svcDir: string; allowUids?: number[]; limits?: Record<string, number>; budget?: Record<string, number>; threads?: number };
const service = PagerService.start({ svcDir: opts.svcDir, allowUids: opts.allowUids, limits: opts.limits, budget: opts.budget, threads: opts.threads });
process.on('SIGTERM', () => {
  service.close();
  process.exit(0);
});
