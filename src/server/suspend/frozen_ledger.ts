// The ledger of cgroups this server has frozen: a small JSON file, rewritten atomically (write,
// fsync, rename) *before* each freeze and after each thaw. A server stopped by SIGTERM or SIGINT
// thaws what it froze itself; one killed with SIGKILL (or crashed, or OOM-killed) cannot, so the
// next server started with the same file thaws every cgroup listed there before it serves, and
// `starnix-pager thaw --state-file FILE` does the same by hand. An entry is thawed only when its
// path still names the same cgroup (inode = cgroup id) and the machine has not rebooted since
// (boot id): a cgroup made anew under the old name is never touched.
import * as fs from 'fs';
import * as path from 'path';
import { logger } from '../../log';
import { CgroupError, writeFreeze } from './cgroup';

export interface LedgerEntry {
  /** The cgroup directory as the server saw it (readlink of its fd). */
  path: string;
  /** Its inode number (the cgroup id), decimal. */
  id: string;
  /** /proc/sys/kernel/random/boot_id when it was frozen. */
  bootId: string;
  /** The server that froze it. */
  pid: number;
  /** When (ISO 8601). */
  since: string;
}

export interface RecoveryReport {
  thawed: string[];
  /** Entries not touched, with why (gone, another cgroup now, another boot). */
  skipped: { path: string; why: string }[];
  /** Entries that could not be thawed (kept in the file). */
  failed: { path: string; why: string }[];
}

export function currentBootId(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
  } catch {
    return 'unknown';
  }
}

export class FrozenLedger {
  private readonly entries = new Map<string, LedgerEntry>();
  private readonly bootId = currentBootId();

  constructor(readonly file: string) {}

  /** Records a cgroup about to be frozen (durably, before the freeze). Throws if it cannot. */
  add(cgroupPath: string, id: string): void {
    this.entries.set(id, { path: cgroupPath, id, bootId: this.bootId, pid: process.pid, since: new Date().toISOString() });
    this.save();
  }

  /** Forgets a thawed cgroup. A failure to write is logged: the worst case is a needless thaw later. */
  remove(id: string): void {
    if (!this.entries.delete(id)) return;
    try {
      this.save();
    } catch (e) {
      logger.warn(`frozen-cgroup ledger ${this.file}: could not rewrite it: ${(e as Error).message}`);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  private save(): void {
    if (this.entries.size === 0) {
      fs.rmSync(this.file, { force: true });
      return;
    }
    const tmp = path.join(path.dirname(this.file), `.${path.basename(this.file)}.${process.pid}.tmp`);
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeSync(fd, `${JSON.stringify({ frozen: [...this.entries.values()] }, null, 1)}\n`);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.file);
  }

  /**
   * Thaws every cgroup a previous server left frozen in `file`, then rewrites it with only the
   * entries that could not be thawed (or removes it). A missing file is an empty ledger.
   */
  static recover(file: string): RecoveryReport {
    const report: RecoveryReport = { thawed: [], skipped: [], failed: [] };
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return report;
      throw new Error(`frozen-cgroup ledger ${file}: cannot read it: ${(e as Error).message}`);
    }
    let entries: LedgerEntry[];
    try {
      const parsed = JSON.parse(text) as { frozen?: unknown };
      if (!Array.isArray(parsed.frozen)) throw new Error('no "frozen" list');
      entries = parsed.frozen as LedgerEntry[];
    } catch (e) {
      throw new Error(`frozen-cgroup ledger ${file}: not a ledger (${(e as Error).message}); look at it and remove it by hand`);
    }
    const bootId = currentBootId();
    const kept: LedgerEntry[] = [];
    for (const entry of entries) {
      if (typeof entry?.path !== 'string' || typeof entry.id !== 'string') {
        report.skipped.push({ path: String(entry?.path), why: 'malformed entry' });
        continue;
      }
      if (entry.bootId !== bootId) {
        report.skipped.push({ path: entry.path, why: 'frozen before the last reboot' });
        continue;
      }
      let ino: string;
      try {
        ino = fs.statSync(entry.path, { bigint: true }).ino.toString();
      } catch {
        report.skipped.push({ path: entry.path, why: 'the cgroup no longer exists' });
        continue;
      }
      if (ino !== entry.id) {
        report.skipped.push({ path: entry.path, why: `another cgroup now has that path (id ${ino}, was ${entry.id})` });
        continue;
      }
      try {
        writeFreeze(path.join(entry.path, 'cgroup.freeze'), false, entry.path);
        report.thawed.push(entry.path);
      } catch (e) {
        const why = e instanceof CgroupError ? e.message : String(e);
        if ((e as CgroupError).code === 'ENOENT') {
          report.skipped.push({ path: entry.path, why: 'the cgroup no longer exists' });
        } else {
          report.failed.push({ path: entry.path, why });
          kept.push(entry);
        }
      }
    }
    if (kept.length === 0) fs.rmSync(file, { force: true });
    else fs.writeFileSync(file, `${JSON.stringify({ frozen: kept }, null, 1)}\n`, { mode: 0o600 });
    return report;
  }
}
