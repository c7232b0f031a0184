// The commands of `starnix-pager`. Each takes parsed arguments and returns an exit status;
// failures are thrown as CliError (exit 1) or UsageError (exit 2) and printed by main.ts.
import * as fs from 'fs';
import { Ext4Error, Ext4Image } from '../ext4';
import type { Ext4Stat } from '../ext4/image';
import { PagerCallError } from '../client';
import { FidlError } from '../fidl';
import { logger } from '../log';
import { native } from '../native';
import type { BudgetLimits } from '../server/budget';
import { pagesUnderAuto } from '../pager/native_pager';
import { PagerService } from '../server/service';
import { statusName } from '../zx_status';
import { BrokenPipe, CliError, isBrokenPipe, UsageError } from './errors';
import { PagerSession, streamFile, writeAll } from './pager_session';

/** RegisterFile takes at most this many extents (vector<PagerExtent>:1024). */
const MAX_EXTENTS = 1024;

export interface ServerFlags {
  svcDir?: string;
  threads?: number;
  readahead?: 'fixed' | 'adaptive';
  hugePages?: 'auto' | 'always' | 'never';
  /** Capture an embedded server's warnings: they become the detail of this command's error
   *  line, or lines of their own after the output, never lines in the middle of it. */
  captureServerLogs?: boolean;
  /** Write a Perfetto trace of the server (serve, or the embedded server of cat and map). */
  traceFile?: string;
}

function openImage(image: string): Ext4Image {
  if (!fs.existsSync(image)) throw new CliError(`no such image: ${image}`);
  try {
    return Ext4Image.open(image);
  } catch (e) {
    if (e instanceof Ext4Error) throw new CliError(`${image} is not a readable ext4 image: ${e.message}`);
    throw new CliError(`cannot open ${image}: ${(e as Error).message}`);
  }
}

function statPath(img: Ext4Image, image: string, p: string, follow: boolean): Ext4Stat {
  try {
    return img.stat(img.lookup(p, { followFinal: follow }));
  } catch (e) {
    if (e instanceof Ext4Error) {
      const why = e.code === 'ENOENT' ? 'no such path' : e.code === 'ENOTDIR' ? 'not a directory on the way' : e.message;
      throw new CliError(`${image}:${p}: ${why}`);
    }
    throw e;
  }
}

/**
 * Turns the failures of the client stack into one-line CLI errors. `serverSaid` is what an
 * embedded server logged about the refusal (a FIDL answer carries only a status).
 */
function explain(e: unknown, what: string, serverSaid?: string): never {
  if (isBrokenPipe(e)) throw new BrokenPipe();
  if (e instanceof CliError || e instanceof UsageError) throw e;
  const why = serverSaid !== undefined ? `: ${serverSaid}` : '';
  if (e instanceof PagerCallError) throw new CliError(`${what}: the server answered ${statusName(e.status)}${why}`);
  if (e instanceof FidlError) {
    const status = (e as { status?: number }).status;
    throw new CliError(`${what}: ${status !== undefined ? `the pager channel closed with ${statusName(status)}` : e.message}${why}`);
  }
  throw new CliError(`${what}: ${(e as Error).message}`);
}

/** Stops a loop of writes once stdout's reader is gone. */
function checkOpen(out: NodeJS.WritableStream): void {
  if ((out as { destroyed?: boolean }).destroyed) throw new BrokenPipe();
}

export async function cmdServe(
  flags: ServerFlags & { allowUids?: number[]; recordFile?: string; recordMaxBytes?: number; budget?: Partial<BudgetLimits>; stopTimeoutSeconds?: number },
): Promise<number> {
  if (flags.svcDir === undefined) throw new UsageError('serve needs --svc-dir DIR');
  // Each pager needs a uffd of its own (for its mappings of the files' memfds): say so now, not at
  // the first CreatePager, when this process cannot have one.
  const probe = native.probeUserfaultfd() as string | null;
  if (probe !== null && probe.startsWith('cannot')) {
    process.stderr.write(`starnix-pager: warning: ${probe}; every CreatePager will fail (NOT_SUPPORTED) until it can\n`);
  } else if (probe !== null) {
    process.stderr.write(`starnix-pager: warning: ${USER_MODE_ONLY_NOTE}\n`);
  }
  let service: PagerService;
  try {
    service = PagerService.start({
      svcDir: flags.svcDir,
      threads: flags.threads,
      readahead: flags.readahead,
      hugePages: flags.hugePages,
      allowUids: flags.allowUids,
      recordFile: flags.recordFile,
      recordMaxBytes: flags.recordMaxBytes,
      budget: flags.budget,
      traceFile: flags.traceFile,
    });
  } catch (e) {
    throw new CliError(`cannot serve in ${flags.svcDir}: ${(e as Error).message}`);
  }
  process.stderr.write(`starnix-pager: serving in ${flags.svcDir} (pid ${process.pid}); SIGINT or SIGTERM to stop\n`);
  const report = setInterval(() => {
    const s = service.stats();
    logger.info('counters', { connections: s.connections, pagers: s.pagers, files: s.files, faults: s.faults, bytesSupplied: String(s.bytesSupplied), bytesZeroed: String(s.bytesZeroed), failures: s.failures, hugeFiles: s.hugeFiles, hugeFallbacks: s.hugeFallbacks, foreignPages: s.foreignPages });
  }, 10_000);
  report.unref();
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      process.stderr.write(`starnix-pager: ${sig}: stopping\n`);
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    // Installed after the handlers above, which it chains to: the stop is bounded in time even if
    // closing waits on something a client controls, or the JS thread is stuck.
    native.armStopWatchdog(flags.stopTimeoutSeconds ?? 5);
  });
  clearInterval(report);
  service.close();
  return 0;
}

/**
 * What `serve` says when this process may only have a user-mode-only uffd (no root, no
 * CAP_SYS_PTRACE, vm.unprivileged_userfaultfd=0, no access to /dev/userfaultfd): the pager
 * works (it never faults on its own mappings), and clients in the same position read through
 * the library as usual, but the kernel does not deliver faults it takes itself on their behalf.
 */
export const USER_MODE_ONLY_NOTE =
  'only a user-mode-only userfaultfd is allowed here (not root, no CAP_SYS_PTRACE, vm.unprivileged_userfaultfd=0, ' +
  'no access to /dev/userfaultfd): serving anyway, the pager needs no more; clients limited the same way read ' +
  'through the library as usual, but a system call given an address in their mapping (write(2) from it, ' +
  'O_DIRECT, process_vm_readv) fails with EFAULT on a page not yet paged in';

export function cmdLs(image: string, p: string, out: NodeJS.WritableStream): number {
  const img = openImage(image);
  try {
    const st = statPath(img, image, p, true);
    if (st.type !== 'dir') {
      out.write(`${formatEntry(p, st)}\n`);
      return 0;
    }
    const entries = img.readdir(st.ino).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      checkOpen(out);
      out.write(`${formatEntry(e.name, img.stat(e.ino))}\n`);
    }
    return 0;
  } catch (e) {
    return explain(e, `ls ${image}:${p}`);
  } finally {
    img.close();
  }
}

const TYPE_CHAR: Record<string, string> = { file: '-', dir: 'd', symlink: 'l', chardev: 'c', blockdev: 'b', fifo: 'p', socket: 's' };

function formatEntry(name: string, st: Ext4Stat): string {
  const perm = (st.mode & 0o7777).toString(8).padStart(4, '0');
  const target = st.symlinkTarget !== undefined ? ` -> ${st.symlinkTarget}` : '';
  return `${TYPE_CHAR[st.type] ?? '?'} ${perm} ${String(st.ino).padStart(7)} ${String(st.size).padStart(12)}  ${name}${target}`;
}

export function cmdStat(image: string, p: string, out: NodeJS.WritableStream, json: boolean): number {
  const img = openImage(image);
  try {
    const st = statPath(img, image, p, false);
    // The pages `cat` (or a server with --huge-pages auto) would give the file now.
    const pages = st.type === 'file' && st.inlineData === undefined ? pagesUnderAuto(st.size) : undefined;
    if (json) {
      out.write(JSON.stringify({
        path: p, inode: st.ino, type: st.type, mode: st.mode, size: String(st.size), links: st.links, uid: st.uid, gid: st.gid, mtime: st.mtime,
        blockSize: img.blockSize,
        extents: st.extents?.map((e) => ({ logicalStart: e.logicalStart, logicalEnd: e.logicalEnd, physicalBlock: String(e.physicalBlock) })),
        inlineData: st.inlineData !== undefined ? st.inlineData.length : undefined,
        pagesUnderAuto: pages?.kind,
        symlinkTarget: st.symlinkTarget,
      }, null, 2) + '\n');
      return 0;
    }
    out.write(`path:   ${p}\ninode:  ${st.ino}\ntype:   ${st.type}\nmode:   ${(st.mode & 0o7777).toString(8).padStart(4, '0')}\nsize:   ${st.size}\nlinks:  ${st.links}\nuid:    ${st.uid}\ngid:    ${st.gid}\nmtime:  ${new Date(st.mtime * 1000).toISOString()}\nblock size: ${img.blockSize}\n`);
    if (st.symlinkTarget !== undefined) out.write(`target: ${st.symlinkTarget}\n`);
    if (st.inlineData !== undefined) out.write(`inline data: ${st.inlineData.length} bytes (kept in the inode: served directly, not paged)\n`);
    if (pages !== undefined) {
      out.write(`pages:  ${pages.kind === 'huge' ? '2 MiB huge pages' : '4 KiB pages'} with --huge-pages auto (${pages.why})\n`);
    }
    if (st.extents !== undefined) {
      out.write(`extents: ${st.extents.length}  (logical blocks [start, end) -> physical block)\n`);
      for (const e of st.extents) {
        checkOpen(out);
        out.write(`  ${e.logicalStart}-${e.logicalEnd}:${e.physicalBlock}\n`);
      }
    }
    return 0;
  } catch (e) {
    return explain(e, `stat ${image}:${p}`);
  } finally {
    img.close();
  }
}

export async function cmdCat(image: string, p: string, flags: ServerFlags, out: NodeJS.WritableStream): Promise<number> {
  const img = openImage(image);
  let session: PagerSession | null = null;
  try {
    const st = statPath(img, image, p, true);
    if (st.type === 'dir') throw new CliError(`${image}:${p}: is a directory`);
    if (st.type !== 'file') throw new CliError(`${image}:${p}: not a regular file (${st.type})`);
    if (st.inlineData !== undefined) {
      // Inline data lives inside the inode, not in blocks the pager could page in.
      await writeAll(out, st.inlineData.subarray(0, Number(st.size)));
      return 0;
    }
    const extents = st.extents ?? [];
    if (extents.length > MAX_EXTENTS) {
      throw new CliError(`${image}:${p}: ${extents.length} extents, more than the ${MAX_EXTENTS} RegisterFile takes`);
    }
    session = PagerSession.open(flags);
    const pager = session.createPager(image, img.blockSize);
    try {
      await streamFile(pager, { name: p, inode: st.ino, size: st.size, extents }, out);
    } finally {
      pager.close();
    }
    return 0;
  } catch (e) {
    return explain(e, `cat ${image}:${p}`, session?.refusal());
  } finally {
    session?.close();
    img.close();
  }
}

/** Parses "L0-L1:P,..." ([L0, L1) logical blocks stored from physical block P on). */
export function parseExtents(spec: string): { logicalStart: number; logicalEnd: number; physicalBlock: bigint }[] {
  if (spec.trim() === '') return [];
  return spec.split(',').map((part) => {
    const m = /^\s*(\d+)-(\d+):(\d+)\s*$/.exec(part);
    if (m === null) throw new UsageError(`bad extent "${part}": expected L0-L1:P (logical blocks [L0, L1) at physical block P)`);
    const [start, end] = [Number(m[1]), Number(m[2])];
    if (start > 0xffffffff || end > 0xffffffff) throw new UsageError(`bad extent "${part}": logical blocks are 32-bit`);
    return { logicalStart: start, logicalEnd: end, physicalBlock: BigInt(m[3]) };
  });
}

export async function cmdMap(
  args: { backing: string; blockSize: number; size: bigint; extents: string; offset?: bigint; length?: bigint; name?: string; inode?: number },
  flags: ServerFlags,
  out: NodeJS.WritableStream,
): Promise<number> {
  const extents = parseExtents(args.extents);
  if (!fs.existsSync(args.backing)) throw new CliError(`no such backing file: ${args.backing}`);
  const session = PagerSession.open(flags);
  try {
    const pager = session.createPager(args.backing, args.blockSize);
    try {
      await streamFile(pager, { name: args.name ?? 'map', inode: args.inode ?? 1, size: args.size, extents }, out, { offset: args.offset, length: args.length });
    } finally {
      pager.close();
    }
    return 0;
  } catch (e) {
    return explain(e, 'map', session.refusal());
  } finally {
    session.close();
  }
}
