// starnix-pager as a library. The pieces a program usually needs:
//   client:  PagerClientConnection -> RemotePager -> PagedFile -> FileMapping (read paged bytes)
//   server:  PagerService (a service directory), EmbeddedService (in-process, temporary)
//   ext4:    Ext4Image (read an image's metadata on the client side)
//   fidl:    the wire runtime; gen: the generated bindings of fuchsia.starnix.runner, zx, starnix.pager
import './fidl_linux';

export { PagerClientConnection, RemotePager, PagedFile, PagerCallError, FileMapping } from './client';
export type { FileRegistration } from './client';
export { PagerService, EmbeddedService } from './server/service';
export type { PagerServiceOptions, ServiceStats } from './server/service';
export { DEFAULT_LIMITS } from './server/limits';
export type { ServerLimits } from './server/limits';
export { ZX, statusName } from './zx_status';
export { Ext4Image, Ext4Error } from './ext4';
export { Channel, ChannelError } from './transport/channel';
export { Handle } from './transport/handle';
export { createEventPair, createSocketPair, createEventFd } from './transport/stand_ins';
export { connectService, listenService } from './transport/service_dir';
export * as fidl from './fidl';
export * as runner from './gen/fuchsia_starnix_runner';
export * as zx from './gen/zx';
export * as mapper from './gen/starnix_pager';
