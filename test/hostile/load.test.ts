// Load, short version (the soak runs the long one): 16 client processes x 64 files, random reads
// for a few seconds, every byte checked against the image's source files.
import { runLoad } from './load_run';

test('16 clients x 64 files, random reads: zero mismatches, no errors, server memory bounded, fds back', async () => {
  const r = await runLoad({ clients: 16, files: 64, seconds: Number(process.env.LOAD_SECONDS ?? 3) });
  // eslint-disable-next-line no-console
  console.log(`load: ${JSON.stringify(r)}`);
  expect(r.errors).toEqual([]);
  expect(r.mismatches).toBe(0);
  expect(r.reads).toBeGreaterThan(16 * 50);
  // The page cache of the files (memfds, 16 pagers x ~12 MiB) shows in RssShmem; the server's own
  // (anonymous) memory must stay within a fixed bound whatever the read count.
  expect(r.anonPeakKb).toBeLessThan(256 * 1024);
  expect(r.fdsBack).toBe(true);
}, 120_000);
