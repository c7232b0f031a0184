// The suspend and wake side of fuchsia.starnix.runner/Manager, shared by every Manager connection
// of one server (as upstream's runner keeps one suspend context): wake watchers, wake sources per
// container, proxied wake channels, the suspends under way, and the ledger of frozen cgroups.
//
// SuspendContainer, as Fuchsia's Starnix runner does it, with a cgroup for the job:
//   1. no container_job, or not a cgroup v2 directory -> SUSPEND_FAILURE (nothing touched);
//      a suspend of that cgroup already under way -> SUSPEND_FAILURE (the first goes on);
//      wake locks already raised (EVENTPAIR_SIGNALED on wake_locks) -> WAKE_LOCKS_EXIST.
//   2. freeze: note the cgroup in the ledger, write 1 to cgroup.freeze, wait (without blocking)
//      until cgroup.events says frozen 1. Any failure, or no "frozen" within freezeTimeoutMs (a
//      task stuck in the kernel), thaws it and answers SUSPEND_FAILURE.
//   3. wake locks raised now -> thaw, WAKE_LOCKS_EXIST (upstream checks here, after the freeze).
//   4. every wake watcher: clear AWAKE (USER_0), set ASLEEP (USER_1); watchers whose peer is gone
//      are dropped.
//   5. wait: with no wake source for this container, not at all (upstream); else until one is
//      raised (resume_reason: the names of the raised ones, joined by ","), or wakeTimeoutMs
//      (9 s upstream; resume_reason "starnix-container-timeout"). Wake locks raised meanwhile end
//      it with WAKE_LOCKS_EXIST; the container emptying ends it with SUSPEND_FAILURE; the asking
//      connection closing ends it without a reply; the server closing thaws it.
//   6. thaw (write 0; a failure is retried once, then SUSPEND_FAILURE, and the ledger keeps the
//      entry so the next start thaws it), watchers: clear ASLEEP, set AWAKE, reply
//      { suspend_time: ns from frozen to thawed, resume_reason }.
// suspend_debounce_duration is accepted and, as upstream's runner does, not used.
import * as runner from '../../gen/fuchsia_starnix_runner';
import * as fidl from '../../fidl';
import { logger } from '../../log';
import { Channel } from '../../transport/channel';
import { Handle } from '../../transport/handle';
import { handleInfo } from '../../transport/handle_info';
import { EventPair, ZX_EVENTPAIR_SIGNALED, ZX_USER_SIGNAL_0, ZX_USER_SIGNAL_1 } from '../../transport/eventpair';
import { ZX } from '../../zx_status';
import { Cgroup, CgroupError, CgroupEventsWatch } from './cgroup';
import { FrozenLedger } from './frozen_ledger';
import { WakeChannelProxy } from './wake_proxy';
import { WakeSource, WakeSourceError, ZX_COUNTER_POSITIVE, objectKey } from './wake_source';

/** Raised on every watcher when a container has resumed (and at registration). */
export const AWAKE_SIGNAL = ZX_USER_SIGNAL_0;
/** Raised on every watcher while a container is suspended. */
export const ASLEEP_SIGNAL = ZX_USER_SIGNAL_1;
/** resume_reason when the wait for a wake source timed out (upstream's string). */
export const TIMEOUT_RESUME_REASON = 'starnix-container-timeout';
const MAX_RESUME_REASON_BYTES = 1024;

export interface SuspendOptions {
  /** The ledger of frozen cgroups (see frozen_ledger.ts); none when undefined. */
  stateFile?: string;
  /** How long a freeze may take to complete. Default 10 s. */
  freezeTimeoutMs?: number;
  /** How long a suspend waits for a wake source. Default 9 s, as upstream. */
  wakeTimeoutMs?: number;
  /** Wake sources kept per container (AddWakeSource and proxies). Default 1024. */
  wakeSourcesPerContainer?: number;
  /** Proxied wake channels alive at once, all containers. Default 1024. */
  maxProxies?: number;
}

type Owner = object;
type SuspendResult = fidl.Result<runner.ManagerSuspendContainerResponse, runner.SuspendError>;

interface Watcher {
  pair: EventPair;
  owner: Owner;
}

interface OwnedSource {
  source: WakeSource;
  owner: Owner | null; // null: a proxy's counter, owned by the proxy
}

/** How a suspend's wait ended. */
type Outcome =
  | { kind: 'woken'; reason?: string }
  | { kind: 'wake-locks' }
  | { kind: 'failure'; why: string }
  | { kind: 'abandoned'; why: string };

class ActiveSuspend {
  private settle: ((o: Outcome) => void) | null = null;
  readonly outcome: Promise<Outcome>;

  constructor(
    readonly cgroup: Cgroup,
    readonly owner: Owner,
  ) {
    this.outcome = new Promise((resolve) => (this.settle = resolve));
  }

  /** The first call decides. */
  end(o: Outcome): void {
    const settle = this.settle;
    this.settle = null;
    settle?.(o);
  }

  get ended(): boolean {
    return this.settle === null;
  }

  /** Set while the wait for a wake is under way: re-arms the sources (one added meanwhile). */
  onSourcesChanged: (() => void) | null = null;
}

export class SuspendManager {
  private readonly watchers = new Set<Watcher>();
  private readonly sources = new Map<string, Map<string, OwnedSource>>(); // cgroup id -> key -> source
  private readonly proxies = new Set<WakeChannelProxy>();
  private readonly active = new Map<string, ActiveSuspend>();
  private readonly ledger: FrozenLedger | null;
  private readonly freezeTimeoutMs: number;
  private readonly wakeTimeoutMs: number;
  private readonly wakeSourcesPerContainer: number;
  private readonly maxProxies: number;
  private closed = false;

  constructor(opts: SuspendOptions = {}) {
    this.ledger = opts.stateFile !== undefined ? new FrozenLedger(opts.stateFile) : null;
    this.freezeTimeoutMs = opts.freezeTimeoutMs ?? 10_000;
    this.wakeTimeoutMs = opts.wakeTimeoutMs ?? 9_000;
    this.wakeSourcesPerContainer = opts.wakeSourcesPerContainer ?? 1024;
    this.maxProxies = opts.maxProxies ?? 1024;
  }

  // ------------------------------------------------------------------ wake watchers

  /** Watchers kept, all connections. */
  get watcherTotal(): number {
    return this.watchers.size;
  }

  watcherCount(owner: Owner): number {
    let n = 0;
    for (const w of this.watchers) if (w.owner === owner) n++;
    return n;
  }

  /**
   * Keeps `handle` (an eventpair end) as a watcher of `owner` and raises AWAKE on it at once, as
   * upstream does. Returns false (the handle closed) when it is not an eventpair end or its peer
   * is already gone.
   */
  registerWatcher(handle: Handle, owner: Owner): boolean {
    let kind: string;
    try {
      kind = handleInfo(handle).kind;
    } catch (e) {
      kind = `fd that cannot be inspected (${(e as Error).message})`;
    }
    if (kind !== 'socket-dgram') {
      handle.close();
      logger.warn(`RegisterWakeWatcher: the watcher is a ${kind}, not an eventpair (a SOCK_DGRAM socket): dropped`);
      return false;
    }
    const pair = EventPair.fromHandle(handle, 'wake watcher');
    if (pair.signalPeer(ASLEEP_SIGNAL, AWAKE_SIGNAL) === ZX.PEER_CLOSED) {
      pair.close();
      return false;
    }
    this.watchers.add({ pair, owner });
    return true;
  }

  /** Drops owner's watchers whose peer is gone (asked of the kernel); returns how many are left. */
  pruneWatchers(owner: Owner): number {
    for (const w of [...this.watchers]) {
      if (w.owner === owner && !w.pair.probePeer()) {
        w.pair.close();
        this.watchers.delete(w);
      }
    }
    return this.watcherCount(owner);
  }

  private signalWatchers(clear: number, set: number): void {
    for (const w of [...this.watchers]) {
      const status = w.pair.signalPeer(clear, set);
      if (status === ZX.PEER_CLOSED || status === ZX.BAD_HANDLE) {
        w.pair.close();
        this.watchers.delete(w);
        logger.info('wake watcher dropped: its peer is gone');
      } else if (status !== ZX.OK) {
        logger.warn(`failed to signal a wake watcher (${status})`);
      }
    }
  }

  // ------------------------------------------------------------------ wake sources

  /** AddWakeSource. Takes every handle; failures are logged (a one-way method has no answer). */
  addWakeSource(req: runner.ManagerAddWakeSourceRequest, owner: Owner): void {
    const { containerJob, name, handle, signals } = req;
    if (containerJob === undefined || name === undefined || handle === undefined || signals === undefined) {
      fidl.closeHandlesIn(req);
      logger.warn('AddWakeSource without container_job, name, handle or signals: ignored', { name });
      return;
    }
    const id = this.containerId(containerJob, 'AddWakeSource');
    if (id === null) {
      handle.close();
      return;
    }
    let source: WakeSource;
    try {
      source = new WakeSource(handle, name, signals);
    } catch (e) {
      logger.warn(`AddWakeSource ${JSON.stringify(name)} refused: ${(e as Error).message}`);
      return;
    }
    this.addSource(id, source, owner);
  }

  /** RemoveWakeSource: the source whose object is that of `handle` (any fd of it). */
  removeWakeSource(req: runner.ManagerRemoveWakeSourceRequest): void {
    const { containerJob, handle } = req;
    if (containerJob === undefined || handle === undefined) {
      fidl.closeHandlesIn(req);
      logger.warn('RemoveWakeSource without container_job or handle: ignored');
      return;
    }
    const id = this.containerId(containerJob, 'RemoveWakeSource');
    let key: string | null = null;
    try {
      key = objectKey(handle);
    } catch (e) {
      logger.warn(`RemoveWakeSource: the handle cannot be inspected: ${(e as Error).message}`);
    }
    handle.close();
    if (id === null || key === null) return;
    const entry = this.sources.get(id)?.get(key);
    if (entry === undefined || entry.owner === null) {
      logger.warn('RemoveWakeSource: no such wake source for this container: ignored');
      return;
    }
    this.removeSource(id, key);
    logger.info(`wake source ${JSON.stringify(entry.source.name)} removed`);
  }

  private addSource(id: string, source: WakeSource, owner: Owner | null): boolean {
    let set = this.sources.get(id);
    if (set === undefined) {
      set = new Map();
      this.sources.set(id, set);
    }
    const existing = set.get(source.key);
    if (existing === undefined && set.size >= this.wakeSourcesPerContainer) {
      source.close();
      logger.warn(`wake source ${JSON.stringify(source.name)} refused: the container has ${set.size} already`);
      return false;
    }
    // The same object added again replaces the old entry (a koid is a map key upstream too).
    existing?.source.close();
    set.set(source.key, { source, owner });
    logger.info(`wake source ${JSON.stringify(source.name)} added (${source.kindName}, signals 0x${source.signals.toString(16)})`);
    this.active.get(id)?.onSourcesChanged?.();
    return true;
  }

  private removeSource(id: string, key: string): void {
    const set = this.sources.get(id);
    const entry = set?.get(key);
    if (set === undefined || entry === undefined) return;
    entry.source.close();
    set.delete(key);
    if (set.size === 0) this.sources.delete(id);
  }

  /** Wake sources of a container (for tests and logs). */
  sourceNames(id: string): string[] {
    return [...(this.sources.get(id)?.values() ?? [])].map((e) => e.source.name);
  }

  // ------------------------------------------------------------------ proxied channels

  proxyWakeChannel(req: runner.ManagerProxyWakeChannelRequest): void {
    const { containerJob, containerChannel, remoteChannel, name, counter } = req;
    if (containerJob === undefined || containerChannel === undefined || remoteChannel === undefined || name === undefined || counter === undefined) {
      fidl.closeHandlesIn(req);
      logger.warn('ProxyWakeChannel without container_job, container_channel, remote_channel, name or counter: ignored', { name });
      return;
    }
    const closeAll = () => {
      containerChannel.close();
      remoteChannel.close();
      counter.close();
    };
    const id = this.containerId(containerJob, 'ProxyWakeChannel');
    if (id === null) return closeAll();
    if (this.proxies.size >= this.maxProxies) {
      logger.warn(`ProxyWakeChannel ${JSON.stringify(name)} refused: ${this.proxies.size} proxies already`);
      return closeAll();
    }
    let source: WakeSource;
    let proxyCounter: Handle;
    try {
      proxyCounter = counter.duplicate();
      source = new WakeSource(counter, name, ZX_COUNTER_POSITIVE);
    } catch (e) {
      logger.warn(`ProxyWakeChannel ${JSON.stringify(name)} refused: the counter: ${(e as Error).message}`);
      containerChannel.close();
      remoteChannel.close();
      counter.close();
      return;
    }
    if (!this.addSource(id, source, null)) {
      proxyCounter.close();
      containerChannel.close();
      remoteChannel.close();
      return;
    }
    let containerSide: Channel;
    let remoteSide: Channel;
    try {
      containerSide = Channel.fromHandle(containerChannel, { name: `proxy ${name}/container` });
      remoteSide = Channel.fromHandle(remoteChannel, { name: `proxy ${name}/remote` });
    } catch (e) {
      logger.warn(`ProxyWakeChannel ${JSON.stringify(name)} refused: ${(e as Error).message}`);
      containerChannel.close();
      remoteChannel.close();
      proxyCounter.close();
      this.removeSource(id, source.key);
      return;
    }
    const key = source.key;
    const proxy = new WakeChannelProxy(name, containerSide, remoteSide, proxyCounter, (p) => {
      this.proxies.delete(p);
      // Its counter stops being a wake source when it ends, as upstream's does.
      if (this.sources.get(id)?.get(key)?.source === source) this.removeSource(id, key);
    });
    this.proxies.add(proxy);
    logger.info(`wake proxy ${JSON.stringify(name)} started`);
  }

  // ------------------------------------------------------------------ suspend

  async suspendContainer(req: runner.ManagerSuspendContainerRequest, owner: Owner): Promise<SuspendResult> {
    const { containerJob, wakeLocks } = req;
    const failure = (why: string): SuspendResult => {
      logger.warn(`SuspendContainer: SUSPEND_FAILURE: ${why}`);
      return { ok: false, error: runner.SuspendError.SUSPEND_FAILURE };
    };
    if (containerJob === undefined) {
      wakeLocks?.close();
      return failure('no container_job');
    }
    if (this.closed) {
      fidl.closeHandlesIn(req);
      return failure('the server is closing');
    }
    let cgroup: Cgroup;
    try {
      cgroup = Cgroup.fromHandle(containerJob);
    } catch (e) {
      wakeLocks?.close();
      return failure((e as Error).message);
    }
    if (this.active.has(cgroup.id)) {
      cgroup.close();
      wakeLocks?.close();
      return failure(`${cgroup.path} is being suspended already`);
    }
    const locks = wakeLocks !== undefined ? EventPair.fromHandle(wakeLocks, 'wake locks').start() : null;
    const suspend = new ActiveSuspend(cgroup, owner);
    this.active.set(cgroup.id, suspend);
    try {
      return await this.runSuspend(suspend, locks);
    } finally {
      this.active.delete(cgroup.id);
      locks?.close();
      cgroup.close();
    }
  }

  private async runSuspend(suspend: ActiveSuspend, locks: EventPair | null): Promise<SuspendResult> {
    const { cgroup } = suspend;
    const where = cgroup.path;
    const locksHeld = () => locks !== null && (locks.signals & ZX_EVENTPAIR_SIGNALED) !== 0;
    const failure = (why: string): SuspendResult => {
      logger.warn(`SuspendContainer ${where}: SUSPEND_FAILURE: ${why}`);
      return { ok: false, error: runner.SuspendError.SUSPEND_FAILURE };
    };
    const wakeLocksExist = (): SuspendResult => {
      logger.info(`SuspendContainer ${where}: WAKE_LOCKS_EXIST`);
      return { ok: false, error: runner.SuspendError.WAKE_LOCKS_EXIST };
    };
    if (locksHeld()) return wakeLocksExist();
    locks?.on('signals', () => {
      if (locksHeld()) suspend.end({ kind: 'wake-locks' });
    });

    // 2. Freeze, and wait for the kernel to say so.
    try {
      this.ledger?.add(cgroup.path, cgroup.id);
    } catch (e) {
      return failure(`the frozen-cgroup ledger cannot be written, so a crash could leave the container frozen: ${(e as Error).message}`);
    }
    let suspendStart: bigint | null = null;
    let onFrozen: () => void = () => {};
    const frozenNow = new Promise<null>((resolve) => (onFrozen = () => resolve(null)));
    let events: CgroupEventsWatch;
    try {
      cgroup.setFrozen(true);
      events = cgroup.watchEvents(
        (ev) => {
          if (ev.frozen) onFrozen();
          if (!ev.populated && suspendStart !== null) suspend.end({ kind: 'failure', why: 'the container emptied while suspended' });
        },
        (e) => suspend.end({ kind: 'failure', why: e.message }),
      );
    } catch (e) {
      const thawError = this.thaw(cgroup);
      return failure(`${(e as Error).message}${thawError ? `; ${thawError}` : ''}`);
    }
    const freezeTimer = setTimeout(
      () => suspend.end({ kind: 'failure', why: `not frozen after ${this.freezeTimeoutMs} ms (a task of it is stuck in the kernel?)` }),
      this.freezeTimeoutMs,
    );
    const first = await Promise.race([frozenNow, suspend.outcome]);
    clearTimeout(freezeTimer);

    // 3.-5. Frozen: wake locks again, watchers, then the wait.
    let outcome: Outcome;
    let wakeTimer: NodeJS.Timeout | undefined;
    let armed: WakeSource[] = [];
    let toldAsleep = false;
    if (first !== null) {
      outcome = first;
    } else if (locksHeld()) {
      outcome = { kind: 'wake-locks' };
    } else {
      suspendStart = process.hrtime.bigint();
      this.signalWatchers(AWAKE_SIGNAL, ASLEEP_SIGNAL);
      toldAsleep = true;
      const raisedNames = (): string[] => armed.filter((s) => s.raised()).map((s) => s.name);
      const arm = () => {
        for (const s of armed) s.disarm();
        armed = [...(this.sources.get(cgroup.id)?.values() ?? [])].map((e) => e.source);
        for (const s of armed) s.arm(() => suspend.end({ kind: 'woken', reason: joinReasons(raisedNames()) }));
      };
      arm();
      if (armed.length === 0) {
        suspend.end({ kind: 'woken' }); // upstream: nothing can wake it, so it does not wait
      } else {
        suspend.onSourcesChanged = arm;
        wakeTimer = setTimeout(() => suspend.end({ kind: 'woken', reason: TIMEOUT_RESUME_REASON }), this.wakeTimeoutMs);
        logger.info(`SuspendContainer ${where}: frozen; waiting for ${armed.length} wake source(s)`);
      }
      outcome = await suspend.outcome;
      suspend.onSourcesChanged = null;
    }
    clearTimeout(wakeTimer);
    for (const s of armed) s.disarm();
    events.close();

    // 6. Thaw, tell the watchers, answer.
    const thawError = this.thaw(cgroup);
    const suspendTime = suspendStart === null ? 0n : process.hrtime.bigint() - suspendStart;
    if (toldAsleep) this.signalWatchers(ASLEEP_SIGNAL, AWAKE_SIGNAL);
    if (thawError !== null) return failure(thawError);
    switch (outcome.kind) {
      case 'woken':
        logger.info(`SuspendContainer ${where}: resumed after ${Number(suspendTime) / 1e6} ms${outcome.reason ? ` (${outcome.reason})` : ''}`);
        return { ok: true, value: { suspendTime, ...(outcome.reason !== undefined ? { resumeReason: outcome.reason } : {}) } };
      case 'wake-locks':
        return wakeLocksExist();
      case 'failure':
      case 'abandoned':
        return failure(outcome.why);
    }
  }

  /** Thaws a cgroup: null when done (or it is gone), else why not (the ledger keeps it then). */
  private thaw(cgroup: Cgroup): string | null {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        cgroup.setFrozen(false);
        this.ledger?.remove(cgroup.id);
        return null;
      } catch (e) {
        if ((e as CgroupError).code === 'ENOENT') {
          this.ledger?.remove(cgroup.id);
          return null; // the cgroup was removed: nothing is left frozen
        }
        if (attempt === 1) {
          const why = `THAW FAILED, the container may still be frozen: ${(e as Error).message}`;
          logger.error(`${cgroup.path}: ${why}`);
          return why;
        }
      }
    }
    return null;
  }

  // ------------------------------------------------------------------ lifetime

  /** A Manager connection went away: its suspend ends (thawed), its watchers and sources go. */
  connectionClosed(owner: Owner): void {
    for (const s of this.active.values()) {
      if (s.owner === owner) s.end({ kind: 'abandoned', why: 'the connection that asked for it closed' });
    }
    for (const w of [...this.watchers]) {
      if (w.owner === owner) {
        w.pair.close();
        this.watchers.delete(w);
      }
    }
    for (const [id, set] of [...this.sources]) {
      for (const [key, entry] of [...set]) if (entry.owner === owner) this.removeSource(id, key);
    }
  }

  /** Cgroups frozen right now by a suspend of this server. */
  get suspendedCount(): number {
    return this.active.size;
  }

  /**
   * Thaws every container this server froze (synchronously: also from a signal handler) and
   * releases everything. Idempotent.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.active.values()) {
      s.end({ kind: 'abandoned', why: 'the server is stopping' });
      const why = this.thaw(s.cgroup);
      if (why === null) logger.info(`${s.cgroup.path}: thawed, the server is stopping`);
    }
    for (const p of [...this.proxies]) p.close();
    for (const w of this.watchers) w.pair.close();
    this.watchers.clear();
    for (const [id, set] of [...this.sources]) for (const key of [...set.keys()]) this.removeSource(id, key);
  }

  private containerId(job: Handle, what: string): string | null {
    try {
      const cg = Cgroup.fromHandle(job);
      const id = cg.id;
      cg.close();
      return id;
    } catch (e) {
      logger.warn(`${what}: the container_job is refused: ${(e as Error).message}`);
      return null;
    }
  }
}

/** Names joined by ",", cut to what resume_reason holds (1024 bytes of UTF-8). */
function joinReasons(names: string[]): string | undefined {
  if (names.length === 0) return undefined;
  let joined = names.join(',');
  while (Buffer.byteLength(joined) > MAX_RESUME_REASON_BYTES) joined = joined.slice(0, -1);
  return joined;
}
