// The client library: what a runner uses to have files of an image paged in.
//
//   const client = PagerClientConnection.connect(svcDir);
//   const pager = client.createPager(fs.openSync(image, 'r'), 4096);
//   const file = await pager.registerFile({ name, inode, size, extents });
//   const mapped = await file.map();            // mmap + a uffd handed to the pager
//   const bytes = mapped.read(0, 4096);         // faults served by the pager's native threads
//   mapped.close(); file.close(); pager.close(); client.close();
//
// A page the pager could not read raises an Error with code 'EIO' (never zeros); if the pager
// dies, reads fail with code 'EPIPE' instead of hanging.
import * as path from 'path';
import * as runner from '../gen/fuchsia_starnix_runner';
import * as mapper from '../gen/starnix_pager';
import '../fidl_linux';
import { FidlPeerClosedError } from '../fidl';
import { native } from '../native';
import { Channel } from '../transport/channel';
import { Handle } from '../transport/handle';
import { connectService } from '../transport/service_dir';
import { FileMapping } from './mapping';

export { FileMapping } from './mapping';

/** A call the server answered with a zx.Status error; `status` is its number. */
export class PagerCallError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'PagerCallError';
  }
}

export interface FileRegistration {
  name: string;
  inode: number;
  size: bigint;
  extents: runner.PagerExtent[];
}

/** One connection to a running service (its Manager, and its Mapper for mappings). */
export class PagerClientConnection {
  private readonly manager: runner.ManagerClient;
  private mapperClient: mapper.MapperClient | null = null;
  private mapperFd = -1;

  private constructor(readonly svcDir: string) {
    this.manager = new runner.ManagerClient(connectService(svcDir, runner.ManagerDiscoverableName, { name: 'manager' }));
  }

  /** Connects to `<svcDir>/fuchsia.starnix.runner.Manager` (a clear error if nothing listens). */
  static connect(svcDir: string): PagerClientConnection {
    return new PagerClientConnection(svcDir);
  }

  get managerClient(): runner.ManagerClient {
    return this.manager;
  }

  /**
   * Manager.CreatePager over `backing` (an fd or Handle of a memfd, image file or block device,
   * moved into the message) with `blockSize`. One-way, as in Starnix: a refusal arrives as an
   * epitaph on the pager channel, so the first registerFile fails with its status.
   */
  createPager(backing: Handle | number, blockSize: number | bigint): RemotePager {
    const backingHandle = typeof backing === 'number' ? new Handle(backing) : backing;
    const [clientEnd, serverEnd] = Channel.pairHandles();
    try {
      this.manager.createPager({ backingVmo: backingHandle, blockSize: BigInt(blockSize), pager: serverEnd });
    } catch (e) {
      // The server hung up (or refused this connection): the handles went with the message, so
      // the pager channel's peer is closed and the pager's first call fails with PEER_CLOSED,
      // just as a refusal by epitaph would.
      if (!(e instanceof FidlPeerClosedError)) {
        // Nothing was sent (a bad block size, an encode or transport error): the backing was
        // moved into this call and the pager channel has no use, so none of them may leak.
        for (const h of [clientEnd, serverEnd, backingHandle]) h.close();
        throw e;
      }
    }
    return new RemotePager(this, Channel.fromHandle(clientEnd, { name: 'pager' }));
  }

  /** The Mapper connection, opened on first use; its socket also tells mappings the server died. */
  mapperConnection(): { client: mapper.MapperClient; fd: number } {
    if (this.mapperClient === null || this.mapperClient.closedReason !== null) {
      this.mapperClient?.close();
      if (this.mapperFd >= 0) new Handle(this.mapperFd).close();
      let fd: number;
      try {
        fd = native.connectSocket(path.join(this.svcDir, mapper.MapperDiscoverableName)) as number;
      } catch {
        // Let the transport say what is wrong (no socket, nothing listening, permission) in its words.
        connectService(this.svcDir, mapper.MapperDiscoverableName).close();
        throw new Error(`cannot connect to ${mapper.MapperDiscoverableName} in ${this.svcDir}`);
      }
      // A dup of the socket stays with us: each mapping's watcher polls it for the hang-up that
      // says the server (and so the pager serving the mapping) is gone.
      this.mapperFd = native.dupFd(fd) as number;
      this.mapperClient = new mapper.MapperClient(Channel.fromHandle(new Handle(fd), { name: 'mapper' }));
    }
    return { client: this.mapperClient, fd: this.mapperFd };
  }

  /** Closes the connection (Manager and Mapper). Pagers, files and mappings made through it
   *  stay usable until closed themselves: each holds its own channel or handle. Idempotent. */
  close(): void {
    this.manager.close();
    this.mapperClient?.close();
    if (this.mapperFd >= 0) new Handle(this.mapperFd).close();
    this.mapperFd = -1;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** A pager on the server: register files with it. */
export class RemotePager {
  readonly client: runner.PagerClient;

  constructor(
    private readonly connection: PagerClientConnection,
    channel: Channel,
  ) {
    this.client = new runner.PagerClient(channel);
  }

  /** Pager.RegisterFile: the file's handle, whose pages the server fills on first touch. */
  async registerFile(reg: FileRegistration): Promise<PagedFile> {
    const result = await this.client.registerFile({ name: reg.name, inodeNum: reg.inode, size: reg.size, extents: reg.extents });
    if (!result.ok) throw new PagerCallError(result.error, `RegisterFile(${reg.name}, inode ${reg.inode}) failed with zx status ${result.error}`);
    const vmo = result.value.vmo;
    if (vmo === undefined) throw new PagerCallError(-1, 'RegisterFile answered without a vmo');
    return new PagedFile(this.connection, vmo, reg.size);
  }

  close(): void {
    this.client.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** A registered file: its read-only handle. Map it to read its bytes. */
export class PagedFile {
  constructor(
    private readonly connection: PagerClientConnection,
    readonly handle: Handle,
    readonly size: bigint,
  ) {}

  /** Maps the file and hands the mapping's uffd to the pager (starnix.pager/Mapper.AttachMapping). */
  async map(): Promise<FileMapping> {
    if (this.size === 0n) return FileMapping.empty(); // no page to map, nothing to fault
    const mapping = FileMapping.open(this.handle.fd, this.size);
    try {
      const { client, fd } = this.connection.mapperConnection();
      const result = await client.attachMapping({
        vmo: this.handle.duplicate(),
        uffd: new Handle(mapping.uffdForPager()),
        address: mapping.address,
        length: mapping.length,
        offset: 0n,
      });
      if (!result.ok) throw new PagerCallError(result.error, `AttachMapping failed with zx status ${result.error}`);
      mapping.watchPager(fd);
      return mapping;
    } catch (e) {
      mapping.close();
      throw e;
    }
  }

  /** Closes this handle of the file; mappings made from it stay readable until closed. */
  close(): void {
    this.handle.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
