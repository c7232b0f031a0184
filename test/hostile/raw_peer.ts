// A raw FIDL peer for hostile tests: sends whatever bytes and fds it is given (no client-side
// checks beyond the transport's own 64 KiB / 64 fds) and reports what comes back: a message, an
// epitaph, or the channel closing. Also makes fds of every kind a hostile client could send.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import * as fidl from '../../src/fidl';
import { FileMapping } from '../../src/client/mapping';
import { native } from '../../src/native';
import { Channel } from '../../src/transport/channel';
import { Handle } from '../../src/transport/handle';
import { createMemfd } from '../../src/transport/memfd';
import { connectService } from '../../src/transport/service_dir';

export type PeerEvent =
  | { type: 'epitaph'; status: number }
  | { type: 'message'; header: fidl.MessageHeader; bytes: Buffer; handles: Handle[] }
  | { type: 'closed' }
  | { type: 'timeout' };

export class RawPeer {
  private readonly queue: PeerEvent[] = [];
  private waiter: ((e: PeerEvent) => void) | null = null;

  constructor(readonly channel: Channel) {
    channel.on('message', (bytes: Buffer, handles: Handle[]) => {
      let ev: PeerEvent;
      try {
        const header = fidl.decodeHeader(bytes);
        ev = header.ordinal === fidl.EPITAPH_ORDINAL
          ? { type: 'epitaph', status: bytes.length >= 20 ? bytes.readInt32LE(16) : NaN }
          : { type: 'message', header, bytes, handles };
      } catch {
        ev = { type: 'message', header: null as unknown as fidl.MessageHeader, bytes, handles };
      }
      this.push(ev);
    });
    channel.on('close', () => this.push({ type: 'closed' }));
    channel.start();
  }

  static connect(svcDir: string, protocol: string): RawPeer {
    return new RawPeer(connectService(svcDir, protocol, { name: `raw-${protocol}` }));
  }

  private push(ev: PeerEvent): void {
    if (this.waiter !== null) {
      const w = this.waiter;
      this.waiter = null;
      w(ev);
    } else {
      this.queue.push(ev);
    }
  }

  /** Sends through the transport (which moves the handles). */
  send(bytes: Uint8Array, handles: Handle[] = []): void {
    this.channel.send(bytes, handles);
  }

  next(timeoutMs = 3000): Promise<PeerEvent> {
    const ev = this.queue.shift();
    if (ev !== undefined) return Promise.resolve(ev);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiter = null;
        resolve({ type: 'timeout' });
      }, timeoutMs);
      this.waiter = (e) => {
        clearTimeout(t);
        resolve(e);
      };
    });
  }

  /** Resolves to the epitaph status (null if it closed without one); throws on anything else. */
  async closure(timeoutMs = 3000): Promise<number | null> {
    const ev = await this.next(timeoutMs);
    if (ev.type === 'closed') return null;
    if (ev.type === 'epitaph') {
      const after = await this.next(timeoutMs);
      if (after.type !== 'closed') throw new Error(`after the epitaph: ${after.type}`);
      return ev.status;
    }
    if (ev.type === 'message') for (const h of ev.handles) h.close();
    throw new Error(`expected the channel to close, got ${ev.type}`);
  }

  close(): void {
    this.channel.close();
  }
}

/** Encodes a request with the method's payload type (no handle checks on this side). */
export function request(method: fidl.MethodDesc, payload: unknown, txid?: number, flexible = !method.strict): fidl.EncodedMessage {
  const id = txid ?? (method.kind === 'twoway' ? 1 + Math.floor(Math.random() * 0x7ffffffe) : 0);
  return fidl.encodeMessage({ txid: id, ordinal: method.ordinal, flexible }, method.payload, payload, { handleCheck: null });
}

/** Decodes a reply to `method` (a result union). */
export function decodeReply(method: fidl.MethodDesc, ev: PeerEvent): { tag: string; value: unknown } {
  if (ev.type !== 'message') throw new Error(`expected a reply, got ${ev.type}${ev.type === 'epitaph' ? ` ${ev.status}` : ''}`);
  return fidl.decodeMessageBody(method.response, ev.bytes, ev.handles) as { tag: string; value: unknown };
}

// ---------- fds of every kind ----------

export type WrongKind = 'pipe' | 'directory' | 'stream socket' | '/dev/zero' | 'write-only file' | 'empty file' | 'uffd' | 'memfd' | 'seqpacket socket';
export const WRONG_KINDS: WrongKind[] = ['pipe', 'directory', 'stream socket', '/dev/zero', 'write-only file', 'empty file', 'uffd', 'memfd', 'seqpacket socket'];

/** Makes fds of every kind on demand; close() releases what it keeps for making them. */
export class FdFactory {
  private readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hostile-fds-'));
  private streamFd = -1;
  private server: net.Server | null = null;
  private client: net.Socket | null = null;
  private uffdSource: { mapping: FileMapping; memfd: Handle } | null = null;

  async init(): Promise<void> {
    // A SOCK_STREAM socket: a connected net.Socket's own fd, dup'ed on demand.
    const sock = path.join(this.dir, 'stream.sock');
    this.server = net.createServer(() => undefined);
    await new Promise<void>((r) => this.server!.listen(sock, r));
    this.client = net.connect(sock);
    await new Promise<void>((r) => this.client!.once('connect', r));
    this.streamFd = (this.client as unknown as { _handle: { fd: number } })._handle.fd;
    fs.writeFileSync(path.join(this.dir, 'empty'), '');
    fs.writeFileSync(path.join(this.dir, 'wo'), 'x'.repeat(8192));
    const memfd = createMemfd('uffd-source', 4096);
    this.uffdSource = { memfd, mapping: FileMapping.open(memfd.fd, 4096n) };
  }

  make(kind: WrongKind): Handle {
    switch (kind) {
      case 'pipe': {
        const fifo = path.join(this.dir, `fifo${Math.random().toString(36).slice(2)}`);
        execFileSync('mkfifo', [fifo]);
        const fd = fs.openSync(fifo, fs.constants.O_RDWR);
        fs.unlinkSync(fifo);
        return new Handle(fd);
      }
      case 'directory':
        return new Handle(fs.openSync(this.dir, 'r'));
      case 'stream socket':
        return new Handle(native.dupFd(this.streamFd) as number);
      case '/dev/zero':
        return new Handle(fs.openSync('/dev/zero', 'r'));
      case 'write-only file':
        return new Handle(fs.openSync(path.join(this.dir, 'wo'), 'w'));
      case 'empty file':
        return new Handle(fs.openSync(path.join(this.dir, 'empty'), 'r'));
      case 'uffd':
        return new Handle(this.uffdSource!.mapping.uffdForPager());
      case 'memfd':
        return createMemfd('not-a-pager-file', 8192);
      case 'seqpacket socket': {
        const [a, b] = native.socketPair() as number[];
        fs.closeSync(b);
        return new Handle(a);
      }
    }
  }

  close(): void {
    this.client?.destroy();
    this.server?.close();
    this.uffdSource?.mapping.close();
    this.uffdSource?.memfd.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
