// One pager: the server side of a fuchsia.starnix.runner/Pager channel, over one NativePager
// (the native userfaultfd threads that fill pages from the backing).
//
// Lifetime, as the seed's: a pager lives while its channel is open or any file it handed out is
// still held by someone (a handle or a mapping). When both are gone, its threads stop.
import * as fidl from '../fidl';
import * as runner from '../gen/fuchsia_starnix_runner';
import { logger } from '../log';
import { NativePager, PagerError } from '../pager/native_pager';
import type { Channel } from '../transport/channel';
import { Handle } from '../transport/handle';
import { Account, Charge, FDS_PER_FILE } from './budget';
import { ServerLimits } from './limits';
import { ZX, statusName } from '../zx_status';
import type { ConnectionTrace } from '../trace/tracer';

let nextPagerId = 1;
/** The pager core's cap on a file's size: larger ones it refuses with INVALID_ARGS, uncharged. */
const MAX_FILE_SIZE = 1n << 62n;

export class PagerInstance {
  readonly id = nextPagerId++;
  private readonly binding: fidl.ServerBinding;
  private channelOpen = true;
  private stopped = false;
  private registrations = 0;
  /** Files created and not yet forgotten: kept here so the hot path needs no native stats call. */
  private liveFiles = 0;
  /** What each live file (by inode) was charged to the budget: given back when it is forgotten. */
  private readonly fileCharges = new Map<number, Charge>();

  constructor(
    private readonly nativePager: NativePager,
    channel: Channel,
    private readonly limits: ServerLimits,
    private readonly onStopped: (p: PagerInstance) => void,
    readonly describe: string,
    private readonly account: Account,
    private readonly trace?: ConnectionTrace,
  ) {
    trace?.tracer.pagerCreated(this.id, nativePager, describe);
    nativePager.onFileForgotten((inode, name) => {
      this.liveFiles--;
      this.releaseFile(inode);
      trace?.tracer.fileForgotten(this.id, inode, name);
      if (logger.isDebugEnabled()) logger.debug('file forgotten: no handle or mapping holds it any more', { pager: this.id, inode, name });
      this.maybeStop();
    });
    this.binding = runner.servePager(channel, { registerFile: (req) => this.tracedRegisterFile(req) }, {
      onClose: ({ status }) => {
        this.channelOpen = false;
        logger.info('pager channel closed', { pager: this.id, channel: channel.name, epitaph: status === null ? 'none' : statusName(status) });
        this.maybeStop();
      },
    });
    logger.info('pager created', { pager: this.id, channel: channel.name, backing: describe });
  }

  get active(): boolean {
    return !this.stopped;
  }

  stats() {
    return this.nativePager.stats();
  }

  private tracedRegisterFile(req: runner.PagerRegisterFileRequest): fidl.Result<runner.PagerRegisterFileResponse, number> {
    if (this.trace === undefined) return this.registerFile(req);
    const end = this.trace.span('RegisterFile');
    let result: fidl.Result<runner.PagerRegisterFileResponse, number> | undefined;
    try {
      result = this.registerFile(req);
      return result;
    } finally {
      end(result === undefined ? 'threw' : result.ok ? statusName(ZX.OK) : statusName(result.error));
    }
  }

  /** Pager.RegisterFile: a read-only handle to the inode's memfd, paged in on demand. */
  private registerFile(req: runner.PagerRegisterFileRequest): fidl.Result<runner.PagerRegisterFileResponse, number> {
    const { name, inodeNum, size, extents } = req;
    const fail = (status: number, why: string): fidl.Result<runner.PagerRegisterFileResponse, number> => {
      logger.warn(`RegisterFile refused: ${why}`, { pager: this.id, inode: inodeNum, name, status: statusName(status) });
      return { ok: false, error: status };
    };
    if (name === undefined || inodeNum === undefined || size === undefined || extents === undefined) {
      const missing = ['name', 'inode_num', 'size', 'extents'].filter((_, i) => [name, inodeNum, size, extents][i] === undefined);
      return fail(ZX.INVALID_ARGS, `missing ${missing.join(', ')}`);
    }
    if (this.liveFiles >= this.limits.filesPerPager) {
      return fail(ZX.NO_RESOURCES, `this pager holds ${this.limits.filesPerPager} files already`);
    }
    // A new file costs an fd and, since the server maps each memfd whole, its size in address
    // space: charged before it exists, given back if it turns out not to be new.
    let charge: Charge | undefined;
    if (!this.fileCharges.has(inodeNum) && size <= MAX_FILE_SIZE) {
      charge = { files: 1, fds: FDS_PER_FILE, mappedBytes: pageRounded(size) };
      const overBudget = this.account.charge(charge);
      if (overBudget !== null) return fail(ZX.NO_RESOURCES, `over budget: ${overBudget}`);
    }
    try {
      // The decoded PagerExtents are the pager's Extents already (same fields): no copy per call.
      const { fd, created } = this.nativePager.registerFile(name, inodeNum, size, extents);
      this.registrations++;
      if (created) this.liveFiles++;
      if (charge !== undefined) {
        if (created) this.fileCharges.set(inodeNum, charge);
        else this.account.release(charge);
      }
      this.trace?.tracer.fileRegistered(this.id, { name, inode: inodeNum, size, extents: extents.length, created });
      if (logger.isDebugEnabled()) {
        logger.debug('file registered', { pager: this.id, inode: inodeNum, name, size: String(size), extents: extents.length, created });
      }
      return { ok: true, value: { vmo: new Handle(fd) } };
    } catch (e) {
      if (charge !== undefined) this.account.release(charge);
      if (e instanceof PagerError) return fail(e.status, e.message);
      logger.error('RegisterFile failed unexpectedly', { pager: this.id, inode: inodeNum, error: String(e) });
      return { ok: false, error: ZX.INTERNAL };
    }
  }

  private releaseFile(inode: number): void {
    const charge = this.fileCharges.get(inode);
    if (charge === undefined) return;
    this.fileCharges.delete(inode);
    this.account.release(charge);
  }

  /** Stops the native threads once neither the channel nor any file keeps the pager alive. */
  private maybeStop(): void {
    if (this.stopped || this.channelOpen || this.liveFiles > 0) return;
    this.stop();
  }

  /** Stops now, whoever still holds files (server shutdown): their later faults fail, never zeros. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (!this.binding.closed) this.binding.close();
    const s = this.nativePager.stats();
    this.nativePager.stop();
    for (const inode of [...this.fileCharges.keys()]) this.releaseFile(inode);
    this.trace?.tracer.pagerStopped(this.id);
    logger.info('pager stopped', {
      pager: this.id,
      registrations: this.registrations,
      faults: s.faults,
      bytesSupplied: String(s.bytesSupplied),
      bytesZeroed: String(s.bytesZeroed),
      failures: s.failures,
    });
    this.onStopped(this);
  }
}

/** Bytes of address space a file of `size` bytes takes when mapped whole (whole pages). */
function pageRounded(size: bigint): number {
  const page = 4096n;
  return Number(((size + page - 1n) / page) * page);
}
