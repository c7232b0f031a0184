// The service: a service directory with two sockets, served until close().
//   <svc-dir>/fuchsia.starnix.runner.Manager  the real Starnix protocol (CreatePager, ...)
//   <svc-dir>/starnix.pager.Mapper            this project's own: clients hand over their uffds
// Each accepted connection is one channel; one bad client never disturbs the others.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as fidl from '../fidl';
import * as runner from '../gen/fuchsia_starnix_runner';
import * as mapper from '../gen/starnix_pager';
import '../fidl_linux';
import { logger } from '../log';
import { native } from '../native';
import { PagerOptions } from '../pager/native_pager';
// Type-only: the recorder (msgpackr) and the tracer (Perfetto's protobuf classes) are loaded when
// --record or --trace asks for them. Loading them costs 100-200 ms of start-up on these VMs, which
// every `starnix-pager cat` (an embedded server) paid without using them.
import type { FidlRecorder } from '../record/recorder';
import type { ServiceTracer } from '../trace/tracer';
import { Channel } from '../transport/channel';
import { PeerCredentials, ServiceListener, listenService } from '../transport/service_dir';
import { ZX } from '../zx_status';
import { Account, Budget, BudgetLimits, defaultBudgetLimits, systemFacts } from './budget';
import { DEFAULT_LIMITS, ServerLimits } from './limits';
import { ManagerConnection } from './manager_server';
import { MapperConnection, UffdRegistry } from './mapper_server';
import { PagerInstance } from './pager_server';
import { FrozenLedger } from './suspend/frozen_ledger';
import { SuspendManager, SuspendOptions } from './suspend/suspend_manager';

/** How often kept wake watchers are checked for a peer that hung up. */
const WAKE_WATCHER_SWEEP_MS = 2000;

export interface PagerServiceOptions {
  svcDir: string;
  /** Native pager threads per pager: default 2, so read-ahead fills in parallel (the seed uses 1). */
  threads?: number;
  readahead?: PagerOptions['readahead'];
  dropCache?: boolean;
  /** Huge pages for large files: 'auto' (default here: files of at least hugeThreshold bytes get
   *  2 MiB hugetlb pages when the pool has room, else 4 KiB), 'always' (RegisterFile fails with
   *  NO_RESOURCES when it cannot), 'never'. See the README's "Huge pages". */
  hugePages?: PagerOptions['hugePages'];
  hugeThreshold?: number;
  /** Peer uids allowed to connect (SO_PEERCRED); default: whoever can open the sockets. */
  allowUids?: number[];
  limits?: Partial<ServerLimits>;
  /**
   * The server-wide budget and the shares of it one uid and one connection may use (see
   * src/server/budget.ts and docs/hardening.md). Default: derived from RLIMIT_NOFILE (whose soft
   * limit is raised to the hard one at start), vm.max_map_count and fs.inotify.max_user_instances.
   */
  budget?: Partial<BudgetLimits>;
  /**
   * SuspendContainer's settings. The ledger of frozen cgroups (`stateFile`) defaults to
   * `<svcDir>/.frozen-cgroups.json`: one server per service directory, so the next server started
   * there thaws what a killed one left frozen (see src/server/suspend/frozen_ledger.ts).
   */
  suspend?: SuspendOptions;
  /** Record every FIDL message of every connection to this file (see src/record); off by default. */
  recordFile?: string;
  /** Bound on the record file's size (default DEFAULT_RECORD_MAX_BYTES). */
  recordMaxBytes?: number;
  /**
   * Whether the listening sockets and the connections keep the process alive (default true, as
   * a server's should). An EmbeddedService serves only its own process, so it sets false: the
   * process lives as long as its clients' ends of the connections, and an idle service never
   * holds up its exit.
   */
  holdsProcess?: boolean;
  /** Write a Perfetto trace of the service to this file (see src/trace); off by default. */
  traceFile?: string;
}

export interface ServiceStats {
  connections: number;
  pagers: number;
  files: number;
  faults: number;
  bytesSupplied: bigint;
  bytesZeroed: bigint;
  failures: number;
  /** Files registered now that got 2 MiB huge pages. */
  hugeFiles: number;
  /** Registrations that wanted huge pages and got 4 KiB pages (the pool was short). */
  hugeFallbacks: number;
  /** Pages a holder put into the page cache unfilled (zeros), written over before any reader got them. */
  foreignPages: number;
}

export class PagerService {
  readonly svcDir: string;
  private readonly listeners: ServiceListener[] = [];
  private readonly connections = new Set<{ close(): void }>();
  private readonly managers = new Set<ManagerConnection>();
  readonly budget: Budget;
  private readonly uffds = new UffdRegistry();
  private sweepTimer?: NodeJS.Timeout;
  private readonly pagers = new Set<PagerInstance>();
  private readonly limits: ServerLimits;
  private readonly pagerOptions: PagerOptions;
  readonly suspend: SuspendManager;
  private readonly stateFile: string;
  private recorder: FidlRecorder | undefined;
  private readonly holdsProcess: boolean;
  private tracer: ServiceTracer | undefined;
  private closed = false;

  private constructor(opts: PagerServiceOptions) {
    this.svcDir = opts.svcDir;
    this.holdsProcess = opts.holdsProcess ?? true;
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.pagerOptions = {
      threads: opts.threads,
      readahead: opts.readahead,
      dropCache: opts.dropCache,
      hugePages: opts.hugePages ?? 'auto',
      hugeThreshold: opts.hugeThreshold,
    };
    this.budget = new Budget({ ...defaultBudgetLimits(systemFacts()), ...opts.budget });
    logger.info('budget', { ...this.budget.limits });
    // Opens the sock_diag socket that wake-watcher checks use, now rather than at the first
    // RegisterWakeWatcher (a lookup of inode 0 finds nothing): it is one of the server's own fds.
    native.unixPeerInode(0);
    this.stateFile = opts.suspend?.stateFile ?? path.join(opts.svcDir, '.frozen-cgroups.json');
    this.suspend = new SuspendManager({ ...opts.suspend, stateFile: this.stateFile });
  }

  /** Binds both sockets in opts.svcDir (created 0700 when missing) and starts serving. */
  static start(opts: PagerServiceOptions): PagerService {
    const service = new PagerService(opts);
    const listenOpts = { allowUids: opts.allowUids };
    try {
      // A record file that cannot be written is refused now, before any client connects.
      if (opts.recordFile !== undefined) {
        const { FidlRecorder } = require('../record/recorder') as typeof import('../record/recorder');
        service.recorder = FidlRecorder.open(opts.recordFile, { maxBytes: opts.recordMaxBytes });
      }
      if (opts.traceFile !== undefined) {
        const { ServiceTracer } = require('../trace/tracer') as typeof import('../trace/tracer');
        service.tracer = ServiceTracer.start(opts.traceFile);
        service.pagerOptions.trace = true;
      }
      service.listeners.push(
        listenService(opts.svcDir, runner.ManagerDiscoverableName, (ch, peer) => service.acceptManager(ch, peer), listenOpts),
        listenService(opts.svcDir, mapper.MapperDiscoverableName, (ch, peer) => service.acceptMapper(ch, peer), listenOpts),
      );
      if (!service.holdsProcess) for (const l of service.listeners) l.unref();
    } catch (e) {
      service.close();
      throw e;
    }
    // The service directory is ours now (its flocks): thaw what a killed server left frozen.
    service.recoverFrozen();
    service.sweepTimer = setInterval(() => {
      for (const m of service.managers) m.sweepWakeWatchers();
    }, WAKE_WATCHER_SWEEP_MS);
    service.sweepTimer.unref();
    logger.info('serving', { svcDir: opts.svcDir, protocols: `${runner.ManagerDiscoverableName}, ${mapper.MapperDiscoverableName}` });
    return service;
  }

  /** The connection's account in the budget, or null after closing it with NO_RESOURCES. */
  private openAccount(ch: Channel, peer: PeerCredentials): Account | null {
    const opened = this.budget.openConnection(peer.uid, ch.name);
    if ('refused' in opened) {
      logger.warn(`connection refused: over budget: ${opened.refused}`, { channel: ch.name, uid: peer.uid, pid: peer.pid, epitaph: 'NO_RESOURCES' });
      try {
        ch.send(fidl.encodeEpitaph(ZX.NO_RESOURCES), []);
      } catch {
        // Gone already: nobody to tell.
      }
      ch.close();
      return null;
    }
    ch.setQueueBudget(opened.account.queueBudget);
    return opened.account;
  }

  private recoverFrozen(): void {
    try {
      const report = FrozenLedger.recover(this.stateFile);
      for (const p of report.thawed) logger.warn(`thawed ${p}: a previous server froze it and did not thaw it`);
      for (const s of report.skipped) logger.info(`frozen-cgroup ledger: ${s.path} left alone: ${s.why}`);
      for (const f of report.failed) logger.error(`frozen-cgroup ledger: ${f.path} could not be thawed: ${f.why}`);
    } catch (e) {
      logger.error((e as Error).message);
    }
  }

  private acceptManager(ch: Channel, peer: PeerCredentials): void {
    logger.info('manager connection', { channel: ch.name, uid: peer.uid, pid: peer.pid });
    if (!this.holdsProcess) ch.unref(); // and so the pagers opened over it (ManagerConnection)
    ch.tap = this.recorder?.tap(runner.ManagerProtocol.name, peer);
    const account = this.openAccount(ch, peer);
    if (account === null) return;
    const conn = new ManagerConnection(ch, this.limits, this.pagerOptions, (p) => this.pagers.add(p), this.suspend, account, () => {
      this.managers.delete(conn);
      this.budget.closeConnection(account);
    }, this.tracer?.connection(ch.name, peer));
    this.managers.add(conn);
    this.track(ch, conn);
  }

  private acceptMapper(ch: Channel, peer: PeerCredentials): void {
    logger.info('mapper connection', { channel: ch.name, uid: peer.uid, pid: peer.pid });
    if (!this.holdsProcess) ch.unref();
    ch.tap = this.recorder?.tap(mapper.MapperProtocol.name, peer);
    const account = this.openAccount(ch, peer);
    if (account === null) return;
    this.track(ch, new MapperConnection(ch, this.limits, account, this.uffds, () => this.budget.closeConnection(account), this.tracer?.connection(ch.name, peer)));
  }

  private track(ch: Channel, conn: { close(): void }): void {
    this.connections.add(conn);
    ch.once('close', () => this.connections.delete(conn));
  }

  stats(): ServiceStats {
    const s: ServiceStats = { connections: this.connections.size, pagers: 0, files: 0, faults: 0, bytesSupplied: 0n, bytesZeroed: 0n, failures: 0, hugeFiles: 0, hugeFallbacks: 0, foreignPages: 0 };
    for (const p of this.pagers) {
      if (!p.active) {
        this.pagers.delete(p);
        continue;
      }
      const n = p.stats();
      s.pagers++;
      s.files += n.files;
      s.faults += n.faults;
      s.bytesSupplied += n.bytesSupplied;
      s.bytesZeroed += n.bytesZeroed;
      s.failures += n.failures;
      s.hugeFiles += n.hugeFiles;
      s.hugeFallbacks += n.hugeFallbacks;
      s.foreignPages += n.foreignPages;
    }
    return s;
  }

  /** Stops listening, thaws every container it froze, closes every connection and stops every pager. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.suspend.close();
    for (const l of this.listeners) l.close();
    for (const c of [...this.connections]) c.close();
    for (const p of [...this.pagers]) p.stop();
    this.pagers.clear();
    this.recorder?.close();
    this.tracer?.close();
    logger.info('service closed', { svcDir: this.svcDir });
  }

  /** close(), for `using service = PagerService.start(...)`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** Embedded services not closed yet: their folders are removed when the process exits. */
const liveEmbedded = new Set<EmbeddedService>();
let exitHookInstalled = false;

function removeFoldersAtExit(): void {
  for (const e of [...liveEmbedded]) e.close();
}

/**
 * An in-process service in a private temporary service directory (the CLI's default). It never
 * keeps the process alive by itself (holdsProcess: false), and its folder goes with it: at
 * close(), or when the process exits without close() (not when it dies by a signal it does
 * not handle).
 */
export class EmbeddedService {
  private closed = false;

  private constructor(readonly service: PagerService, readonly svcDir: string) {}

  static start(opts: Omit<PagerServiceOptions, 'svcDir'> = {}): EmbeddedService {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'starnix-pager-svc-'));
    fs.chmodSync(dir, 0o700);
    let embedded: EmbeddedService;
    try {
      embedded = new EmbeddedService(PagerService.start({ holdsProcess: false, ...opts, svcDir: dir }), dir);
    } catch (e) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    liveEmbedded.add(embedded);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on('exit', removeFoldersAtExit);
    }
    return embedded;
  }

  /** Stops the service and removes its folder. Idempotent; any order with its clients' close(). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    liveEmbedded.delete(this);
    this.service.close();
    fs.rmSync(this.svcDir, { recursive: true, force: true });
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
