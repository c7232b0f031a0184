// Client side of a FIDL protocol over a channel: txids, pending calls, replies, events,
// epitaphs. Generated client classes (e.g. PagerClient) extend ClientBase and add one typed
// method per FIDL method.
import { logger } from '../log';
import type { Handle } from '../transport/handle';
import { FidlChannel, statusOf } from './channel_like';
import { DecodeOptions, closeAll } from './decoder';
import {
  FidlDecodeError, FidlError, FidlFrameworkError, FidlPeerClosedError, FidlProtocolError, FidlTransportError, Status,
} from './errors';
import { EPITAPH_ORDINAL, decodeEpitaph, decodeHeader, decodeMessageBody, encodeMessage } from './message';
import { MethodDesc, ProtocolDesc, closeHandlesIn, usesResultUnion } from './protocol';

export interface ClientOptions extends DecodeOptions {
  /**
   * The check of each handle against its declared type and rights, on the requests this client
   * sends and the replies and events it receives (default: the installed one; null: none).
   */
  handleCheck?: DecodeOptions['handleCheck'];
}

interface PendingCall {
  method: MethodDesc;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

/** Largest txid userspace may use: the high bit is reserved (zx_channel_call). */
const MAX_TXID = 0x7fffffff;

export class ClientBase {
  protected readonly channel: FidlChannel;
  readonly protocol: ProtocolDesc;
  private readonly options: ClientOptions;
  private readonly pending = new Map<number, PendingCall>();
  private readonly events = new Map<bigint, { method: MethodDesc; listener: (payload: unknown) => void }>();
  private readonly eventMethods = new Map<bigint, MethodDesc>();
  private lastTxid = 0;
  /** Set once the client is unusable; every later call fails with it. */
  private closedError: Error | null = null;

  protected constructor(channel: FidlChannel, protocol: ProtocolDesc, options: ClientOptions = {}) {
    this.channel = channel;
    this.protocol = protocol;
    this.options = options;
    for (const m of protocol.methods) if (m.kind === 'event') this.eventMethods.set(m.ordinal, m);
    channel.on('message', (bytes: Uint8Array, handles: Handle[]) => this.onMessage(bytes, handles));
    channel.on('close', () => this.tearDown(new FidlPeerClosedError(Status.PEER_CLOSED, `${protocol.name} channel closed`)));
    channel.start();
  }

  /** Why the client is closed (the epitaph status, PEER_CLOSED...), or null while it is open. */
  get closedReason(): Error | null {
    return this.closedError;
  }

  /** Closes the channel; pending calls fail with PEER_CLOSED. */
  close(): void {
    this.tearDown(new FidlPeerClosedError(Status.PEER_CLOSED, 'client closed'));
  }

  /** Registers the listener of an event (generated `onXxx` methods call this). */
  protected listen(method: MethodDesc, listener: (payload: unknown) => void): void {
    this.events.set(method.ordinal, { method, listener });
  }

  private allocateTxid(): number {
    do {
      this.lastTxid = this.lastTxid >= MAX_TXID ? 1 : this.lastTxid + 1;
    } while (this.pending.has(this.lastTxid));
    return this.lastTxid;
  }

  private send(method: MethodDesc, txid: number, payload: unknown): void {
    // On a FidlEncodeError, encodeMessage has closed every handle of the payload: they were given to this call.
    const message = encodeMessage({ txid, ordinal: method.ordinal, flexible: !method.strict }, method.payload, payload, this.options);
    try {
      this.channel.send(message.bytes, message.handles);
    } catch (e) {
      closeAll(message.handles.filter((h) => h.valid));
      const status = statusOf(e);
      if (status === Status.PEER_CLOSED) {
        // Not torn down here: an epitaph may still wait in the receive queue, and the channel's
        // 'close' event, which comes after it, tears down with its status.
        throw this.closedError ?? new FidlPeerClosedError(Status.PEER_CLOSED, `${this.protocol.name}.${method.name}`);
      }
      throw new FidlTransportError(status ?? Status.INTERNAL, `${this.protocol.name}.${method.name}: ${(e as Error).message}`);
    }
  }

  /** Sends a one-way call. Throws FidlEncodeError, FidlPeerClosedError or FidlTransportError. */
  protected oneWay(method: MethodDesc, payload: unknown): void {
    if (this.closedError !== null) {
      closeHandlesIn(payload);
      throw this.closedError;
    }
    this.send(method, 0, payload);
  }

  /**
   * Sends a two-way call and resolves with its reply: the payload, or for methods with `error`
   * a Result. A framework error (the server does not know the method) rejects with FidlFrameworkError.
   */
  protected call(method: MethodDesc, payload: unknown): Promise<unknown> {
    if (this.closedError !== null) {
      closeHandlesIn(payload);
      return Promise.reject(this.closedError);
    }
    const txid = this.allocateTxid();
    return new Promise<unknown>((resolve, reject) => {
      try {
        this.send(method, txid, payload);
      } catch (e) {
        if (e instanceof FidlPeerClosedError && this.closedError === null) {
          // The peer is gone: fail this call with the epitaph's status (if one comes) when the
          // channel finishes closing, as every other pending call does.
          this.pending.set(txid, { method, resolve, reject });
          return;
        }
        reject(e as Error);
        return;
      }
      this.pending.set(txid, { method, resolve, reject });
    });
  }

  private onMessage(bytes: Uint8Array, handles: Handle[]): void {
    try {
      this.dispatch(bytes, handles);
    } catch (e) {
      // dispatch handles its own errors; this guards the event loop against bugs.
      closeAll(handles);
      logger.error('FIDL client dispatch failed', { protocol: this.protocol.name, error: String(e) });
    }
  }

  private dispatch(bytes: Uint8Array, handles: Handle[]): void {
    if (this.closedError !== null) {
      closeAll(handles);
      return;
    }
    let header;
    try {
      header = decodeHeader(bytes);
    } catch (e) {
      closeAll(handles);
      this.tearDown(new FidlProtocolError('bad_header', (e as Error).message));
      return;
    }
    if (header.ordinal === EPITAPH_ORDINAL) {
      let status: number;
      try {
        status = decodeEpitaph(header, bytes, handles);
      } catch (e) {
        this.tearDown(new FidlProtocolError('bad_epitaph', (e as Error).message));
        return;
      }
      this.tearDown(new FidlPeerClosedError(status, `epitaph on ${this.protocol.name}`));
      return;
    }
    if (header.txid === 0) {
      this.dispatchEvent(header.ordinal, (header.dynamicFlags & 0x80) !== 0, bytes, handles);
      return;
    }
    const call = this.pending.get(header.txid);
    if (call === undefined || call.method.ordinal !== header.ordinal) {
      closeAll(handles);
      this.tearDown(new FidlProtocolError('unexpected_reply', `reply txid ${header.txid} ordinal 0x${header.ordinal.toString(16)} matches no pending call`));
      return;
    }
    this.pending.delete(header.txid);
    let body: unknown;
    try {
      body = decodeMessageBody(call.method.response, bytes, handles, this.options);
    } catch (e) {
      call.reject(e as FidlDecodeError);
      return;
    }
    try {
      call.resolve(unwrapReply(this.protocol, call.method, body));
    } catch (e) {
      call.reject(e as Error);
    }
  }

  private dispatchEvent(ordinal: bigint, flexible: boolean, bytes: Uint8Array, handles: Handle[]): void {
    const method = this.eventMethods.get(ordinal);
    if (method === undefined) {
      closeAll(handles);
      if (flexible && this.protocol.openness !== 'closed') {
        logger.warn('FIDL client ignores unknown flexible event', { protocol: this.protocol.name, ordinal: ordinal.toString(16) });
        return;
      }
      this.tearDown(new FidlProtocolError('unknown_event', `unknown strict event 0x${ordinal.toString(16)} on ${this.protocol.name}`));
      return;
    }
    let payload: unknown;
    try {
      payload = decodeMessageBody(method.payload, bytes, handles, this.options);
    } catch (e) {
      this.tearDown(e as FidlDecodeError);
      return;
    }
    const registered = this.events.get(ordinal);
    if (registered === undefined) {
      closeHandlesIn(payload);
      logger.debug('FIDL event without listener', { protocol: this.protocol.name, event: method.name });
      return;
    }
    try {
      registered.listener(payload);
    } catch (e) {
      logger.error('FIDL event listener threw', { protocol: this.protocol.name, event: method.name, error: String(e) });
    }
  }

  /** Fails every pending call with `error`, refuses later ones, closes the channel. */
  private tearDown(error: Error): void {
    if (this.closedError !== null) return;
    this.closedError = error;
    const calls = [...this.pending.values()];
    this.pending.clear();
    for (const c of calls) c.reject(error);
    if (!this.channel.closed) this.channel.close();
  }
}

/** Turns the wire reply into what the generated method returns. */
export function unwrapReply(protocol: ProtocolDesc, method: MethodDesc, body: unknown): unknown {
  if (!usesResultUnion(method)) return body;
  const reply = body as { tag: string; value: unknown };
  switch (reply.tag) {
    case 'response': {
      const value = method.emptySuccess ? undefined : reply.value;
      return method.hasError ? { ok: true, value } : value;
    }
    case 'err':
      return { ok: false, error: reply.value };
    case 'frameworkErr':
      throw new FidlFrameworkError(reply.value as number, `${protocol.name}.${method.name}`);
    default:
      throw new FidlProtocolError('bad_result', `result union of ${method.name} has member ${reply.tag}`);
  }
}

export { FidlError };
