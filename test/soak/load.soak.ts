// Soak: 16 clients x 64 files of random reads for SOAK_SECONDS (default 120), then 1000 clients
// killed mid-fault (KILL_ITERATIONS). Run with `npm run test:soak`.
import { runLoad } from '../hostile/load_run';

test('soak: 16 clients x 64 files of random reads: zero mismatches, bounded memory', async () => {
  const seconds = Number(process.env.SOAK_SECONDS ?? 120);
  const r = await runLoad({ clients: 16, files: 64, seconds });
  // eslint-disable-next-line no-console
  console.log(`soak load (${seconds} s): ${JSON.stringify(r)}`);
  expect(r.errors).toEqual([]);
  expect(r.mismatches).toBe(0);
  expect(r.anonPeakKb).toBeLessThan(256 * 1024);
  expect(r.fdsBack).toBe(true);
}, 30 * 60_000);
