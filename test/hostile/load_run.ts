// The load run shared by the short test (npm test) and the soak: CLIENTS client processes, each
// with its own pager over one image of FILES files, random reads checked byte for byte against the
// source files for SECONDS; the server's memory is sampled all along.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ServerProcess, buildImage, expectFdsBack, removeImage, sleep, spawnClient, statusKb, wellBehavedRead } from './support';

export interface LoadResult {
  clients: number;
  files: number;
  reads: number;
  bytes: number;
  mismatches: number;
  errors: string[];
  rssStartKb: number;
  rssPeakKb: number;
  anonPeakKb: number;
  rssEndKb: number;
  fdsBack: boolean;
}

export async function runLoad(opts: { clients: number; files: number; seconds: number; fileSize?: (i: number) => number }): Promise<LoadResult> {
  const sizes = Array.from({ length: opts.files }, (_, i) => (opts.fileSize ? opts.fileSize(i) : 8192 + ((i * 37_123) % (384 * 1024))));
  const img = buildImage(sizes, { seed: 11 });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hostile-load-'));
  const dataDir = path.join(img.dir, 'src');
  const server = await ServerProcess.start(path.join(tmp, 'svc'), { threads: 2 });
  try {
    await wellBehavedRead(server.svcDir, img);
    await sleep(200);
    const fdBaseline = server.fdCount();
    const rssStartKb = statusKb(server.pid, 'VmRSS');
    let rssPeakKb = rssStartKb;
    let anonPeakKb = statusKb(server.pid, 'RssAnon');
    const sampler = setInterval(() => {
      rssPeakKb = Math.max(rssPeakKb, statusKb(server.pid, 'VmRSS'));
      anonPeakKb = Math.max(anonPeakKb, statusKb(server.pid, 'RssAnon'));
    }, 100);
    const children = Array.from({ length: opts.clients }, (_, c) =>
      spawnClient({ mode: 'load', svcDir: server.svcDir, image: img.image, blockSize: img.blockSize, files: img.files, dataDir, seconds: opts.seconds, seed: c + 1 }),
    );
    const lines = await Promise.all(children.map((c) => c.firstLine));
    clearInterval(sampler);
    const result: LoadResult = { clients: opts.clients, files: opts.files, reads: 0, bytes: 0, mismatches: 0, errors: [], rssStartKb, rssPeakKb, anonPeakKb, rssEndKb: 0, fdsBack: false };
    for (const line of lines) {
      let r: { reads: number; bytes: number; mismatches: number; errors: string[] };
      try {
        r = JSON.parse(line);
      } catch {
        result.errors.push(line);
        continue;
      }
      result.reads += r.reads;
      result.bytes += r.bytes;
      result.mismatches += r.mismatches;
      result.errors.push(...r.errors);
    }
    await Promise.all(children.map((c) => c.output));
    await expectFdsBack(server, fdBaseline, 'the load run', 15_000);
    result.fdsBack = true;
    result.rssEndKb = statusKb(server.pid, 'VmRSS');
    return result;
  } finally {
    await server.stop();
    removeImage(img);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
