// The server's budget: how much of each resource every client may make the server hold, so that
// one client, or one uid, can use at most its share and everyone else keeps working.
//
// Three levels of accounts: the server (the totals), one per peer uid (SO_PEERCRED at accept) and
// one per connection. Each level has a limit per resource; a charge goes through only if every
// level above the connection has room, else nothing is charged and the caller answers
// NO_RESOURCES (or closes the connection with that epitaph). Every charge is given back exactly
// once, when what it paid for goes away.
//
// Write queues (bytes and fds waiting for a peer that does not read) are charged natively, by the
// channels themselves, to a parallel chain of NativeQueueBudgets (native/channel.cc) held here.
import { native } from '../native';

export type Resource = 'fds' | 'pagers' | 'files' | 'mappedBytes' | 'attachedUffds' | 'wakeWatchers';
export const RESOURCES: readonly Resource[] = ['fds', 'pagers', 'files', 'mappedBytes', 'attachedUffds', 'wakeWatchers'];

export type Amounts = Record<Resource, number>;
export type Charge = Partial<Amounts>;

/** The server-wide totals, and the fractions of them one uid and one connection may use. */
export interface BudgetLimits {
  /** Fds held for clients: connections, pagers, files, attached uffds, wake watchers. */
  fds: number;
  pagers: number;
  files: number;
  /** Sum of the page-rounded sizes of registered files: each memfd is mapped whole by the server. */
  mappedBytes: number;
  attachedUffds: number;
  wakeWatchers: number;
  /** Bytes in write queues for peers that do not read (on top of each channel's own 4 MiB cap). */
  queuedBytes: number;
  /** Fds in those write queues. */
  queuedHandles: number;
  /** Fraction (0, 1] of every total that one uid may use. */
  uidShare: number;
  /** Fraction (0, 1] of every total that one connection may use. */
  connectionShare: number;
}

/** Fds the server keeps for itself (listeners, stdio, the accept reserve, Node's own). */
export const FD_RESERVE = 256;
/** What one pager holds in fds: its backing, epoll, stop eventfd, inotify, /proc/self/fd dir, fill uffd, channel, and slack. */
export const FDS_PER_PAGER = 8;
/** What one registered file holds: the pager's own description of the memfd. */
export const FDS_PER_FILE = 1;

export interface SystemFacts {
  /** RLIMIT_NOFILE (soft, after raising it to the hard limit). */
  fdLimit: number;
  /** vm.max_map_count: every file is one mapping (VMA) in the server, every pager's backing one more. */
  maxMapCount: number;
  /** fs.inotify.max_user_instances (logged; the pagers share one instance). */
  inotifyInstances: number;
}

function readSysctl(file: string, fallback: number): number {
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const v = Number(require('fs').readFileSync(file, 'utf8').trim());
    return Number.isFinite(v) && v > 0 ? v : fallback;
  } catch {
    return fallback;
  }
}

/** Raises RLIMIT_NOFILE's soft limit to its hard limit and reads the limits the defaults come from. */
export function systemFacts(): SystemFacts {
  const { soft } = native.raiseFdLimit() as { soft: number; hard: number };
  return {
    fdLimit: soft < 0 ? 1 << 20 : soft,
    maxMapCount: readSysctl('/proc/sys/vm/max_map_count', 65530),
    inotifyInstances: readSysctl('/proc/sys/fs/inotify/max_user_instances', 128),
  };
}

/**
 * The default budget, from the limits of this process and machine (docs/hardening.md has the
 * numbers for RLIMIT_NOFILE 20000). Of the fds left after FD_RESERVE, three quarters are for what
 * clients make the server hold and one quarter for write queues.
 */
export function defaultBudgetLimits(facts: SystemFacts): BudgetLimits {
  const usable = Math.max(64, facts.fdLimit - FD_RESERVE);
  const fds = Math.floor(usable * 0.75);
  // Half the VMAs for files (Node, V8 and the threads' stacks use the rest). Pagers share one
  // inotify instance (native/close_watch.cc), so fs.inotify.max_user_instances does not bound them.
  const pagers = Math.max(1, Math.min(Math.floor(fds / 32), 1024));
  return {
    fds,
    pagers,
    files: Math.max(1, Math.min(Math.floor(fds / 2), Math.floor(facts.maxMapCount / 2) - pagers)),
    // 64 TiB: half of x86-64's 128 TiB of user address space.
    mappedBytes: 2 ** 46,
    attachedUffds: Math.floor(fds / 4),
    wakeWatchers: Math.floor(fds / 16),
    queuedBytes: 256 << 20,
    queuedHandles: Math.floor(usable * 0.25),
    uidShare: 0.5,
    connectionShare: 0.25,
  };
}

function zero(): Amounts {
  return { fds: 0, pagers: 0, files: 0, mappedBytes: 0, attachedUffds: 0, wakeWatchers: 0 };
}

const NAMES: Record<Resource, string> = {
  fds: 'fds',
  pagers: 'pagers',
  files: 'files',
  mappedBytes: 'bytes of mapped files',
  attachedUffds: 'attached userfaultfds',
  wakeWatchers: 'wake watchers',
};

interface NativeQueueBudget {
  usage(): { bytes: number; handles: number };
}

/** One level's usage and limits. */
export class Account {
  readonly used: Amounts = zero();
  /** Connections (or, for the server, uids) that hold this account open. */
  users = 0;

  constructor(
    readonly name: string,
    readonly limit: Amounts,
    readonly parent: Account | null,
    readonly queueBudget: NativeQueueBudget,
  ) {}

  /** Charges this account and every one above it, or nothing: the reason when one lacks room. */
  charge(c: Charge): string | null {
    for (let a: Account | null = this; a !== null; a = a.parent) {
      for (const r of RESOURCES) {
        const n = c[r];
        if (n !== undefined && n > 0 && a.used[r] + n > a.limit[r]) {
          return `${a.name} has ${a.used[r]} of its ${a.limit[r]} ${NAMES[r]} in use`;
        }
      }
    }
    for (let a: Account | null = this; a !== null; a = a.parent) {
      for (const r of RESOURCES) a.used[r] += c[r] ?? 0;
    }
    return null;
  }

  release(c: Charge): void {
    for (let a: Account | null = this; a !== null; a = a.parent) {
      for (const r of RESOURCES) a.used[r] = Math.max(0, a.used[r] - (c[r] ?? 0));
    }
  }
}

/** The server's accounts. */
export class Budget {
  readonly limits: BudgetLimits;
  readonly server: Account;
  private readonly uids = new Map<number, Account>();

  constructor(limits: BudgetLimits) {
    this.limits = limits;
    this.server = new Account('the server', pick(limits, 1), null, new native.NativeQueueBudget(limits.queuedBytes, limits.queuedHandles));
  }

  /** A new connection's account (under its uid's), charged one fd for the connection itself; null
   *  with the reason when the uid (or the server) has no fd left for it. */
  openConnection(uid: number, name: string): { account: Account } | { refused: string } {
    let uidAccount = this.uids.get(uid);
    if (uidAccount === undefined) {
      const share = this.limits.uidShare;
      uidAccount = new Account(
        `uid ${uid}`,
        pick(this.limits, share),
        this.server,
        new native.NativeQueueBudget(Math.floor(this.limits.queuedBytes * share), Math.floor(this.limits.queuedHandles * share), this.server.queueBudget),
      );
      this.uids.set(uid, uidAccount);
    }
    const share = this.limits.connectionShare;
    const account = new Account(
      `connection ${name} (uid ${uid})`,
      pick(this.limits, share),
      uidAccount,
      new native.NativeQueueBudget(Math.floor(this.limits.queuedBytes * share), Math.floor(this.limits.queuedHandles * share), uidAccount.queueBudget),
    );
    const why = account.charge({ fds: 1 });
    if (why !== null) {
      if (uidAccount.users === 0) this.uids.delete(uid);
      return { refused: why };
    }
    uidAccount.users++;
    return { account };
  }

  /** The connection is gone and everything it held has been released (or is released later). */
  closeConnection(account: Account): void {
    account.release({ fds: 1 });
    const uidAccount = account.parent!;
    uidAccount.users--;
    // A uid's account goes once nothing of it is left (pagers may outlive their connection).
    this.forgetUidIfIdle(uidAccount);
  }

  /** Called after a late release (a pager or file outliving its connection). */
  forgetUidIfIdle(uidAccount: Account): void {
    if (uidAccount.users > 0 || RESOURCES.some((r) => uidAccount.used[r] > 0)) return;
    if (uidAccount.queueBudget.usage().bytes > 0) return;
    for (const [uid, a] of this.uids) if (a === uidAccount) this.uids.delete(uid);
  }

  /** Usage per level, for logs and tests. */
  usage(): { server: Amounts; uids: Record<number, Amounts>; queued: { bytes: number; handles: number } } {
    const uids: Record<number, Amounts> = {};
    for (const [uid, a] of this.uids) uids[uid] = { ...a.used };
    return { server: { ...this.server.used }, uids, queued: this.server.queueBudget.usage() };
  }
}

function pick(l: BudgetLimits, share: number): Amounts {
  const f = (n: number) => Math.max(1, Math.floor(n * share));
  return {
    fds: f(l.fds),
    pagers: f(l.pagers),
    files: f(l.files),
    mappedBytes: f(l.mappedBytes),
    attachedUffds: f(l.attachedUffds),
    wakeWatchers: f(l.wakeWatchers),
  };
}
