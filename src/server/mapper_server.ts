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
import { NativePager, PagerError, findPagerForFile } from '../pager/native_pager';
import type { Channel } from '../transport/channel';
import { handleInfo } from '../transport/handle_info';
import { ServerLimits } from './limits';
import { ZX, statusName } from '../zx_status';
import type { ConnectionTrace } from '../trace/tracer';

export class MapperConnection implements mapper.MapperHandler {
  private readonly attachments: { pager: NativePager; id: number }[] = [];
  private readonly binding: fidl.ServerBinding;

  constructor(
    private readonly channel: Channel,
    private readonly limits: ServerLimits,
    private readonly trace?: ConnectionTrace,
  ) {
    this.binding = mapper.serveMapper(channel, this, {
      onClose: () => this.detachAll(),
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
    if (this.attachments.length >= this.limits.mappingsPerConnection) {
      // Attachments of forgotten files end by themselves in the pager: count only live ones.
      this.attachments.splice(0, this.attachments.length, ...this.attachments.filter((a) => a.pager.isAttached(a.id)));
    }
    if (this.attachments.length >= this.limits.mappingsPerConnection) {
      return fail(ZX.NO_RESOURCES, `this connection has ${this.attachments.length} mappings attached already`);
    }
    const pager = findPagerForFile(vmo.fd);
    if (pager === undefined) return fail(ZX.NOT_FOUND, 'vmo is not a file registered with a live pager');
    try {
      const id = pager.attachMapping(vmo.fd, uffd.take(), address, length, offset);
      this.attachments.push({ pager, id });
      this.trace?.tracer.mappingAttached(pager, id, this.trace.peer.pid);
      if (logger.isDebugEnabled()) logger.debug('mapping attached', { channel: this.channel.name, id, address: '0x' + address.toString(16), length: String(length) });
      return { ok: true, value: undefined };
    } catch (e) {
      if (e instanceof PagerError) return fail(e.status, e.message);
      return fail(ZX.INTERNAL, String(e));
    } finally {
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
    }
  }
}
