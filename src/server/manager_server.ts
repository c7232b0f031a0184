// The server side of one fuchsia.starnix.runner/Manager connection.
//
// CreatePager is the method this project exists for. The others steer a Starnix container's
// suspension and wake sources; a container here is a cgroup v2 directory, frozen with cgroup.freeze.
// They are the server's SuspendManager's (src/server/suspend/, shared by every connection):
// this class only hands requests over and keeps its own bound on watchers.
import * as fidl from '../fidl';
import * as runner from '../gen/fuchsia_starnix_runner';
import { logger } from '../log';
import { NativePager, PagerError, PagerOptions } from '../pager/native_pager';
import { native } from '../native';
import { Channel, isOwnChannelInode } from '../transport/channel';
import { Handle } from '../transport/handle';
import { handleInfo, handleObjectCheck } from '../transport/handle_info';
import { Account, Charge, FDS_PER_PAGER } from './budget';
import { ServerLimits } from './limits';
import { PagerInstance } from './pager_server';
import type { ConnectionTrace } from '../trace/tracer';
import { ZX, statusName } from '../zx_status';
import { SuspendManager } from './suspend/suspend_manager';

const MAX_BLOCK_SIZE = 1024 * 1024;
const ZX_OBJ_TYPE_VMO = 3;
const ZX_OBJ_TYPE_JOB = 17;

/**
 * The codec's handle check for Manager requests, with two exceptions checked by the methods
 * themselves, so that a wrong one gets the method's own answer instead of closing the whole
 * Manager connection: the backing VMO (CreatePager closes the new Pager channel with WRONG_TYPE)
 * and the container JOB (SuspendContainer answers SUSPEND_FAILURE, the one-way methods log it).
 */
export function managerHandleCheck(h: Handle, objType: number, rights: number): number {
  return objType === ZX_OBJ_TYPE_VMO || objType === ZX_OBJ_TYPE_JOB ? ZX.OK : handleObjectCheck(h, objType, rights);
}

const WAKE_WATCHER_CHARGE: Charge = { wakeWatchers: 1, fds: 1 };
const ENOENT = 2;

/**
 * Who is on the other end of a socket handed to us: its inode and its peer's (0 when it has none,
 * or -errno when the kernel cannot say). Both -1 when the handle is not a socket.
 */
function socketFacts(h: Handle): { inode: number; peer: number } {
  const inode = native.socketInode(h.fd) as number;
  if (inode <= 0) return { inode: -1, peer: -1 };
  return { inode, peer: native.unixPeerInode(inode) as number };
}

/**
 * Socket inodes of the wake watchers every connection keeps (the SuspendManager holds the fds). A
 * new watcher whose peer is one of them (two ends of one eventpair sent back to us) would never
 * hang up. An inode whose socket is gone (sock_diag: ENOENT) was dropped by the SuspendManager.
 */
const keptWatcherInodes = new Set<number>();

export class ManagerConnection implements runner.ManagerHandler {
  private readonly pagers = new Set<PagerInstance>();
  /** Inodes of this connection's watchers, each charged WAKE_WATCHER_CHARGE to the budget. */
  private readonly watcherInodes = new Set<number>();
  private readonly binding: fidl.ServerBinding;

  constructor(
    private readonly channel: Channel,
    private readonly limits: ServerLimits,
    private readonly pagerOptions: PagerOptions,
    private readonly onPager: (p: PagerInstance) => void,
    private readonly suspend: SuspendManager,
    private readonly account: Account,
    onClosed: () => void,
    private readonly trace?: ConnectionTrace,
  ) {
    this.binding = runner.serveManager(channel, this, {
      handleCheck: managerHandleCheck,
      onClose: ({ status }) => {
        this.suspend.connectionClosed(this);
        for (const inode of this.watcherInodes) this.forgetWatcher(inode);
        logger.info('manager connection closed', { channel: channel.name, epitaph: status === null ? 'none' : statusName(status), pagers: this.pagers.size });
        onClosed();
      },
    });
  }

  private forgetWatcher(inode: number): void {
    this.watcherInodes.delete(inode);
    keptWatcherInodes.delete(inode);
    this.account.release(WAKE_WATCHER_CHARGE);
  }

  /** Gives back the charge of every watcher the SuspendManager has dropped (its socket is gone). */
  private reconcileWatchers(): void {
    for (const inode of [...this.watcherInodes]) {
      if ((native.unixPeerInode(inode) as number) === -ENOENT) this.forgetWatcher(inode);
    }
  }

  /**
   * Drops the wake watchers whose peer has hung up (an eventpair's other end closed: nobody is
   * left to signal), closing their fds, and gives their charge back. Run now and then by the
   * service: a datagram socket shows no hang-up to poll, so sock_diag is asked (no datagram is
   * sent unless a peer is gone).
   */
  sweepWakeWatchers(): void {
    let someGone = false;
    for (const inode of this.watcherInodes) {
      const peer = native.unixPeerInode(inode) as number;
      if (peer === 0 || peer === -ENOENT) someGone = true;
    }
    if (!someGone) return;
    this.suspend.pruneWatchers(this);
    const before = this.watcherInodes.size;
    this.reconcileWatchers();
    const dropped = before - this.watcherInodes.size;
    if (dropped > 0) logger.info(`dropped ${dropped} wake watcher(s) whose peer hung up`, { channel: this.channel.name });
  }

  close(): void {
    this.binding.close();
  }

  createPager(req: runner.ManagerCreatePagerRequest): void {
    // Traced as a span whose status is the epitaph a refusal sent (OK when the pager started).
    let outcome = statusName(ZX.OK);
    const end = this.trace?.span('CreatePager');
    try {
      this.startPager(req, (status) => { outcome = statusName(status); });
    } finally {
      end?.(outcome);
    }
  }

  private startPager(req: runner.ManagerCreatePagerRequest, refused: (status: number) => void): void {
    const { backingVmo, blockSize, pager } = req;
    if (pager === undefined) {
      backingVmo?.close();
      logger.error('CreatePager without a pager server_end: nothing to serve, request dropped', { channel: this.channel.name });
      return;
    }
    let pagerChannel: Channel;
    try {
      pagerChannel = Channel.fromHandle(pager, { name: `${this.channel.name}/pager`, tap: this.channel.tap?.derive(runner.PagerProtocol.name) });
      // A pager opened over a connection that does not keep the process alive (an embedded
      // service's) does not either.
      if (!this.channel.holdsProcess) pagerChannel.unref();
    } catch (e) {
      backingVmo?.close();
      logger.error('CreatePager: the pager server_end is not a channel', { channel: this.channel.name, error: String(e) });
      return;
    }
    const refuse = (status: number, why: string): void => {
      refused(status);
      backingVmo?.close();
      logger.warn(`CreatePager refused: ${why}`, { channel: pagerChannel.name, epitaph: statusName(status) });
      try {
        pagerChannel.send(fidl.encodeEpitaph(status), []);
      } catch {
        // The client already closed its end: nobody to tell.
      }
      pagerChannel.close();
    };

    if (backingVmo === undefined) return refuse(ZX.INVALID_ARGS, 'missing backing_vmo');
    if (blockSize === undefined) return refuse(ZX.INVALID_ARGS, 'missing block_size');
    if (blockSize === 0n || blockSize > BigInt(MAX_BLOCK_SIZE) || (blockSize & (blockSize - 1n)) !== 0n) {
      return refuse(ZX.INVALID_ARGS, `block size ${blockSize} is not a power of two of at most 1 MiB`);
    }
    let kind: string;
    try {
      const info = handleInfo(backingVmo);
      kind = info.kind;
      if (kind !== 'memfd' && kind !== 'file' && kind !== 'blockdev') {
        return refuse(ZX.WRONG_TYPE, `backing_vmo is a ${kind}, not a memfd, regular file or block device`);
      }
      if (!info.readable) return refuse(ZX.ACCESS_DENIED, 'backing_vmo is not open for reading');
    } catch (e) {
      return refuse(ZX.BAD_HANDLE, `backing_vmo cannot be inspected: ${String(e)}`);
    }
    const live = [...this.pagers].filter((p) => p.active).length;
    if (live >= this.limits.pagersPerConnection) {
      return refuse(ZX.NO_RESOURCES, `this connection has ${live} pagers already`);
    }
    const pagerCharge: Charge = { pagers: 1, fds: FDS_PER_PAGER };
    const overBudget = this.account.charge(pagerCharge);
    if (overBudget !== null) return refuse(ZX.NO_RESOURCES, `over budget: ${overBudget}`);

    let nativePager: NativePager;
    try {
      nativePager = NativePager.create(backingVmo.fd, Number(blockSize), this.pagerOptions);
    } catch (e) {
      this.account.release(pagerCharge);
      const status = e instanceof PagerError ? e.status : ZX.INTERNAL;
      return refuse(status, `the pager could not start: ${(e as Error).message}`);
    }
    // Its write queue counts against this connection's (and uid's, and the server's) budget.
    pagerChannel.setQueueBudget(this.account.queueBudget);
    backingVmo.close(); // NativePager keeps its own duplicate of the backing fd.
    const instance = new PagerInstance(
      nativePager,
      pagerChannel,
      this.limits,
      (p) => {
        this.pagers.delete(p);
        // Its threads and fds are the pager's until its last thread leaves, which a thread stuck in
        // a read of a backing that never answers delays: the charge goes back then, not before
        // (else a client could leave any number of stuck pagers behind, each over its budget).
        nativePager.whenFreed(() => this.account.release(pagerCharge));
      },
      `${kind} block_size=${blockSize}`,
      this.account,
      this.trace?.derive(pagerChannel.name),
    );
    this.pagers.add(instance);
    this.onPager(instance);
  }

  suspendContainer(req: runner.ManagerSuspendContainerRequest): Promise<fidl.Result<runner.ManagerSuspendContainerResponse, runner.SuspendError>> {
    return this.suspend.suspendContainer(req, this);
  }

  proxyWakeChannel(req: runner.ManagerProxyWakeChannelRequest): void {
    this.suspend.proxyWakeChannel(req);
  }

  addWakeSource(req: runner.ManagerAddWakeSourceRequest): void {
    this.suspend.addWakeSource(req, this);
  }

  removeWakeSource(req: runner.ManagerRemoveWakeSourceRequest): void {
    this.suspend.removeWakeSource(req);
  }

  registerWakeWatcher(req: runner.ManagerRegisterWakeWatcherRequest): void {
    if (req.watcher === undefined) {
      logger.warn('RegisterWakeWatcher without a watcher: nothing kept', { channel: this.channel.name });
      return;
    }
    // A watcher whose peer is a socket this server holds (the connection's own client end, a Pager
    // end, another watcher) would never hang up, and would keep whatever it holds alive for good.
    const { inode, peer } = socketFacts(req.watcher);
    if (peer > 0 && (isOwnChannelInode(peer) || keptWatcherInodes.has(peer))) {
      req.watcher.close();
      logger.warn('RegisterWakeWatcher refused: the watcher is the peer of a socket this server holds (its own endpoint fed back to it); closing the connection', {
        channel: this.channel.name,
        epitaph: statusName(ZX.INVALID_ARGS),
      });
      this.binding.closeWithEpitaph(ZX.INVALID_ARGS);
      return;
    }
    const held = this.suspend.watcherCount(this);
    let overBudget: string | null = null;
    if (held >= this.limits.wakeWatchersPerConnection && this.suspend.pruneWatchers(this) >= this.limits.wakeWatchersPerConnection) {
      overBudget = `this connection has ${held} watchers already`;
    } else {
      overBudget = this.account.charge(WAKE_WATCHER_CHARGE);
      if (overBudget !== null) {
        // Watchers dropped meanwhile (their peers gone) give their charge back first.
        this.suspend.pruneWatchers(this);
        this.reconcileWatchers();
        overBudget = this.account.charge(WAKE_WATCHER_CHARGE);
      }
    }
    if (overBudget !== null) {
      // Each one is an fd held for the connection's life: past the bound, the connection goes
      // (the method has no error to answer with), so that one client cannot fill our fd table.
      req.watcher.close();
      logger.warn(`RegisterWakeWatcher refused: ${overBudget}; closing the connection`, {
        channel: this.channel.name,
        epitaph: statusName(ZX.NO_RESOURCES),
      });
      this.binding.closeWithEpitaph(ZX.NO_RESOURCES);
      return;
    }
    // AWAKE is raised on it at once, ASLEEP and AWAKE on every suspend and resume.
    if (this.suspend.registerWatcher(req.watcher, this)) {
      this.watcherInodes.add(inode);
      keptWatcherInodes.add(inode);
      logger.info('RegisterWakeWatcher: watcher kept', { channel: this.channel.name });
    } else {
      this.account.release(WAKE_WATCHER_CHARGE);
      logger.info('RegisterWakeWatcher: watcher dropped (not an eventpair, or its peer is gone)', { channel: this.channel.name });
    }
  }
}
