// The server side of one starnix.pager/Mapper connection: the project's own protocol through which
// a process that mapped a file returned by RegisterFile hands its userfaultfd to the pager.
//
// userfaultfd works per address space, so the pager cannot see another process's faults unless
// that process gives it a uffd with the mapping registered (Firecracker's snapshot loader does the
// same). The file is identified by the handle the client mapped, never by a name or number the
// client could forge: the pager looks the inode up among the memfds it created.
import * as fidl from '../fidl';
import * as mapper from '../gen/starnix_pager';
import { logger } from '../log';
import { native } from '../native';
import { NativePager, PagerError, findPagerForFile } from '../pager/native_pager';
import type { Channel } from '../transport/channel';
import { handleInfo } from '../transport/handle_info';
import { Account, Charge } from './budget';
import { ServerLimits } from './limits';
import { ZX, statusName } from '../zx_status';
import type { ConnectionTrace } from '../trace/tracer';

const ATTACHMENT_CHARGE: Charge = { attachedUffds: 1, fds: 1 };

interface AttachedUffd {
  pager: NativePager;
  id: number;
  /** The fd the pager holds for it (the number it had when we handed it over). */
  fd: number;
  account: Account;
}

/**
 * Every uffd attached through any Mapper connection, sorted by kcmp(KCMP_FILE)'s order of their
 * open file descriptions, so that the same description sent again (under any fd number, through
 * any connection) is found in log(n) kcmp calls and refused: each attachment holds an fd, and one
 * uffd attached thousands of times was a way to fill the server's fd table.
 *
 * An entry whose attachment has ended (detached, its file forgotten, its pager stopped) is stale:
 * the pager closed its fd, whose number may now be something else. The search only compares
 * against entries it has checked are still attached, and drops stale ones as it meets them, so
 * the live entries stay sorted whatever the stale ones' fds have become.
 */
export class UffdRegistry {
  private readonly entries: AttachedUffd[] = [];

  /** The live entry with the same open file description as `fd`, or where one would go. */
  private search(fd: number): { index: number; found: boolean } {
    for (;;) {
      let lo = 0;
      let hi = this.entries.length;
      let restart = false;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        const e = this.entries[mid];
        if (e.fd === fd || !e.pager.isAttached(e.id)) {
          // Stale (its fd may even be the number `fd` arrived under): drop it and search again.
          this.release(mid);
          restart = true;
          break;
        }
        const order = native.kcmpFile(fd, e.fd) as number;
        if (order === 0) return { index: mid, found: true };
        if (order === 1) hi = mid;
        else if (order === 2) lo = mid + 1;
        else {
          // kcmp failed for this entry (its fd is gone): stale.
          this.release(mid);
          restart = true;
          break;
        }
      }
      if (!restart) return { index: lo, found: false };
    }
  }

  private release(index: number): void {
    const [e] = this.entries.splice(index, 1);
    e.account.release(ATTACHMENT_CHARGE);
  }

  /** True if the open file description of `fd` is attached already. */
  has(fd: number): boolean {
    return this.search(fd).found;
  }

  add(entry: AttachedUffd): void {
    const { index } = this.search(entry.fd);
    this.entries.splice(index, 0, entry);
  }

  /** Gives back the charges of attachments that have ended by themselves. */
  prune(): void {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i];
      if (!e.pager.isAttached(e.id)) this.release(i);
    }
  }

  /** The attachment ended (detached by its connection): its charge goes back. */
  remove(pager: NativePager, id: number): void {
    const i = this.entries.findIndex((e) => e.pager === pager && e.id === id);
    if (i >= 0) this.release(i);
  }

  get size(): number {
    return this.entries.length;
  }
}

export class MapperConnection implements mapper.MapperHandler {
  private readonly attachments: { pager: NativePager; id: number }[] = [];
  private readonly binding: fidl.ServerBinding;

  constructor(
    private readonly channel: Channel,
    private readonly limits: ServerLimits,
    private readonly account: Account,
    private readonly registry: UffdRegistry,
    onClosed: () => void,
    private readonly trace?: ConnectionTrace,
  ) {
    this.binding = mapper.serveMapper(channel, this, {
      onClose: () => {
        this.detachAll();
        onClosed();
      },
    });
  }

  close(): void {
    this.binding.close();
    this.detachAll();
  }

  attachMapping(req: mapper.MapperAttachMappingRequest): fidl.Result<void, number> {
    if (this.trace === undefined) return this.attach(req);
    const end = this.trace.span('AttachMapping');
    let result: fidl.Result<void, number> | undefined;
    try {
      result = this.attach(req);
      return result;
    } finally {
      end(result === undefined ? 'threw' : result.ok ? statusName(ZX.OK) : statusName(result.error));
    }
  }

  private attach(req: mapper.MapperAttachMappingRequest): fidl.Result<void, number> {
    const { vmo, uffd, address, length, offset } = req;
    const fail = (status: number, why: string): fidl.Result<void, number> => {
      fidl.closeHandlesIn(req);
      logger.warn(`AttachMapping refused: ${why}`, { channel: this.channel.name, status: statusName(status) });
      return { ok: false, error: status };
    };
    if (vmo === undefined || uffd === undefined || address === undefined || length === undefined || offset === undefined) {
      return fail(ZX.INVALID_ARGS, 'missing vmo, uffd, address, length or offset');
    }
    let uffdKind: string;
    try {
      uffdKind = handleInfo(uffd).kind;
    } catch (e) {
      return fail(ZX.BAD_HANDLE, `uffd cannot be inspected: ${String(e)}`);
    }
    if (uffdKind !== 'userfaultfd') return fail(ZX.WRONG_TYPE, `uffd is a ${uffdKind}, not a userfaultfd`);
    // Only a memfd can be one of our files; anything else is not looked at further (a file on a
    // FUSE file system whose daemon stalls would block this thread in fstat).
    let vmoKind: string;
    try {
      vmoKind = handleInfo(vmo).kind;
    } catch (e) {
      return fail(ZX.BAD_HANDLE, `vmo cannot be inspected: ${String(e)}`);
    }
    if (vmoKind !== 'memfd') return fail(ZX.NOT_FOUND, `vmo is a ${vmoKind}, not a file registered with a live pager`);
    if (this.registry.has(uffd.fd)) {
      return fail(ZX.ALREADY_EXISTS, 'this userfaultfd (the same open file description) is attached already');
    }
    if (this.attachments.length >= this.limits.mappingsPerConnection) {
      // Attachments of forgotten files end by themselves in the pager: count only live ones.
      this.attachments.splice(0, this.attachments.length, ...this.attachments.filter((a) => a.pager.isAttached(a.id)));
    }
    if (this.attachments.length >= this.limits.mappingsPerConnection) {
      return fail(ZX.NO_RESOURCES, `this connection has ${this.attachments.length} mappings attached already`);
    }
    const pager = findPagerForFile(vmo.fd);
    if (pager === undefined) return fail(ZX.NOT_FOUND, 'vmo is not a file registered with a live pager');
    let overBudget = this.account.charge(ATTACHMENT_CHARGE);
    if (overBudget !== null) {
      this.registry.prune(); // attachments that ended by themselves give their charge back
      overBudget = this.account.charge(ATTACHMENT_CHARGE);
    }
    if (overBudget !== null) return fail(ZX.NO_RESOURCES, `over budget: ${overBudget}`);
    let charged = true;
    try {
      const fd = uffd.fd;
      const id = pager.attachMapping(vmo.fd, uffd.take(), address, length, offset);
      this.registry.add({ pager, id, fd, account: this.account });
      charged = false; // the registry gives the charge back when the attachment ends
      this.attachments.push({ pager, id });
      this.trace?.tracer.mappingAttached(pager, id, this.trace.peer.pid);
      if (logger.isDebugEnabled()) logger.debug('mapping attached', { channel: this.channel.name, id, address: '0x' + address.toString(16), length: String(length) });
      return { ok: true, value: undefined };
    } catch (e) {
      if (e instanceof PagerError) return fail(e.status, e.message);
      return fail(ZX.INTERNAL, String(e));
    } finally {
      if (charged) this.account.release(ATTACHMENT_CHARGE);
      vmo.close();
    }
  }

  /** The client is gone (or the server stops): the pager lets go of its uffds. */
  private detachAll(): void {
    for (const { pager, id } of this.attachments.splice(0)) {
      try {
        pager.detachMapping(id);
      } catch (e) {
        logger.debug('detach after pager stop', { id, error: String(e) });
      }
      this.registry.remove(pager, id);
    }
  }
}
