// Server side of a FIDL protocol over a channel: decode each request, dispatch it by ordinal
// to a handler, encode and send the reply. Behaves like Fuchsia's bindings on bad input:
//   - unknown flexible two-way method on an open protocol: reply framework_err UNKNOWN_METHOD;
//   - unknown flexible one-way method on an open (or ajar) protocol: ignore, log;
//   - unknown strict method, or a message that fails to decode: close with epitaph INVALID_ARGS;
//   - a handler that throws or rejects: log, close with epitaph INTERNAL.
// Nothing a peer sends can throw out of the event loop.
import { logger } from '../log';
import type { Handle } from '../transport/handle';
import { FidlChannel, statusOf } from './channel_like';
import { DecodeOptions, closeAll } from './decoder';
import { FRAMEWORK_ERR_UNKNOWN_METHOD, Status } from './errors';
import { EPITAPH_ORDINAL, MessageHeader, decodeHeader, decodeMessageBody, encodeEpitaph, encodeMessage, isFlexible } from './message';
import { MethodDesc, ProtocolDesc, Result, closeHandlesIn, unknownMethodReply, usesResultUnion } from './protocol';

/** One function per method, by FIDL method name; two-way ones return (a promise of) the reply. */
export type MethodHandlers = Readonly<Record<string, (payload: unknown) => unknown>>;

/** handleCheck (from DecodeOptions) checks the requests received; replies are checked by the installed check. */
export interface ServeOptions extends DecodeOptions {
  /** Called once when the binding ends (peer closed, epitaph sent, error). */
  onClose?: (reason: { status: number | null; error?: unknown }) => void;
}

export class ServerBinding {
  private readonly methods = new Map<bigint, MethodDesc>();
  private isClosed = false;

  constructor(
    private readonly channel: FidlChannel,
    readonly protocol: ProtocolDesc,
    private readonly handlers: MethodHandlers,
    private readonly options: ServeOptions = {},
  ) {
    for (const m of protocol.methods) if (m.kind !== 'event') this.methods.set(m.ordinal, m);
    channel.on('message', (bytes: Uint8Array, handles: Handle[], batched?: boolean) => this.onMessage(bytes, handles, batched === true));
    channel.on('close', () => this.finish(null));
    channel.start();
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Sends an epitaph with `status` and closes the channel. */
  closeWithEpitaph(status: number, error?: unknown): void {
    if (this.isClosed) return;
    try {
      this.channel.send(encodeEpitaph(status), []);
    } catch (e) {
      logger.debug('FIDL epitaph not sent', { protocol: this.protocol.name, error: String(e) });
    }
    this.finish(status, error);
  }

  /** Closes the channel without an epitaph. */
  close(): void {
    this.finish(null);
  }

  /** Sends an event (a method of kind 'event'). */
  sendEvent(method: MethodDesc, payload: unknown): void {
    if (this.isClosed) {
      closeHandlesIn(payload);
      return;
    }
    this.sendMessage({ txid: 0, ordinal: method.ordinal, flexible: !method.strict }, method.payload, payload, method.name);
  }

  private finish(status: number | null, error?: unknown): void {
    if (this.isClosed) return;
    this.isClosed = true;
    if (!this.channel.closed) this.channel.close();
    this.options.onClose?.({ status, error });
  }

  private onMessage(bytes: Uint8Array, handles: Handle[], batched: boolean): void {
    try {
      this.dispatch(bytes, handles, batched);
    } catch (e) {
      closeAll(handles);
      logger.error('FIDL server dispatch failed', { protocol: this.protocol.name, error: String(e) });
      this.closeWithEpitaph(Status.INTERNAL, e);
    }
  }

  private dispatch(bytes: Uint8Array, handles: Handle[], batched: boolean): void {
    if (this.isClosed) {
      closeAll(handles);
      return;
    }
    let header: MessageHeader;
    try {
      header = decodeHeader(bytes);
    } catch (e) {
      closeAll(handles);
      logger.warn('FIDL server got a bad header', { protocol: this.protocol.name, error: (e as Error).message });
      this.closeWithEpitaph(Status.INVALID_ARGS, e);
      return;
    }
    const method = header.ordinal === EPITAPH_ORDINAL ? undefined : this.methods.get(header.ordinal);
    if (method === undefined) {
      closeAll(handles);
      this.onUnknownMethod(header);
      return;
    }
    const twoWay = method.kind === 'twoway';
    if (twoWay !== (header.txid !== 0)) {
      closeAll(handles);
      logger.warn('FIDL call with a txid that does not fit the method', { protocol: this.protocol.name, method: method.name, txid: header.txid });
      this.closeWithEpitaph(Status.INVALID_ARGS);
      return;
    }
    let payload: unknown;
    try {
      payload = decodeMessageBody(method.payload, bytes, handles, this.options);
    } catch (e) {
      logger.warn('FIDL request failed to decode', { protocol: this.protocol.name, method: method.name, error: (e as Error).message });
      this.closeWithEpitaph(Status.INVALID_ARGS, e);
      return;
    }
    const handler = this.handlers[method.name];
    if (handler === undefined) {
      closeHandlesIn(payload);
      logger.error('FIDL server has no handler', { protocol: this.protocol.name, method: method.name });
      this.closeWithEpitaph(Status.INTERNAL);
      return;
    }
    let result: unknown;
    try {
      result = handler(payload);
    } catch (e) {
      this.handlerFailed(method, e);
      return;
    }
    if (twoWay) {
      if (batched || isThenable(result)) {
        // Replies to a batch of requests go out together after it (in the microtasks that follow
        // the batch's delivery): the client is woken once for them, not once per reply.
        Promise.resolve(result).then(
          (reply) => this.reply(method, header.txid, reply),
          (e) => this.handlerFailed(method, e),
        );
      } else {
        // A lone request that its handler answers at once is answered at once: no promise and no
        // microtask hop between the request and its reply.
        this.reply(method, header.txid, result);
      }
    } else if (result instanceof Promise) {
      result.catch((e) => this.handlerFailed(method, e));
    }
  }

  private onUnknownMethod(header: MessageHeader): void {
    const ordinal = `0x${header.ordinal.toString(16)}`;
    if (isFlexible(header) && header.ordinal !== EPITAPH_ORDINAL) {
      if (header.txid === 0 && this.protocol.openness !== 'closed') {
        logger.warn('FIDL server ignores unknown flexible one-way method', { protocol: this.protocol.name, ordinal });
        return;
      }
      if (header.txid !== 0 && this.protocol.openness === 'open') {
        logger.warn('FIDL server answers unknown flexible method with UNKNOWN_METHOD', { protocol: this.protocol.name, ordinal });
        this.sendMessage(
          { txid: header.txid, ordinal: header.ordinal, flexible: true },
          unknownMethodReply,
          { tag: 'frameworkErr', value: FRAMEWORK_ERR_UNKNOWN_METHOD },
          ordinal,
        );
        return;
      }
    }
    logger.warn('FIDL server got an unknown method', { protocol: this.protocol.name, ordinal, flexible: isFlexible(header) });
    this.closeWithEpitaph(Status.INVALID_ARGS);
  }

  private handlerFailed(method: MethodDesc, e: unknown): void {
    logger.error('FIDL handler failed', { protocol: this.protocol.name, method: method.name, error: e instanceof Error ? e.stack ?? e.message : String(e) });
    this.closeWithEpitaph(Status.INTERNAL, e);
  }

  private reply(method: MethodDesc, txid: number, reply: unknown): void {
    if (this.isClosed) {
      closeHandlesIn(reply);
      logger.debug('FIDL reply dropped: binding closed', { protocol: this.protocol.name, method: method.name });
      return;
    }
    let body: unknown = reply;
    if (usesResultUnion(method)) {
      if (method.hasError) {
        const r = reply as Result<unknown, unknown> | undefined;
        if (r === undefined || r === null || typeof r.ok !== 'boolean') {
          closeHandlesIn(reply);
          this.handlerFailed(method, new TypeError(`handler of ${method.name} must return { ok, value } or { ok: false, error }`));
          return;
        }
        body = r.ok ? { tag: 'response', value: method.emptySuccess ? {} : r.value } : { tag: 'err', value: r.error };
      } else {
        // A flexible method without error: the reply payload (an empty struct for `-> ()`).
        body = { tag: 'response', value: method.emptySuccess || reply === undefined ? {} : reply };
      }
    }
    this.sendMessage({ txid, ordinal: method.ordinal, flexible: !method.strict }, method.response, body, method.name);
  }

  private sendMessage(header: { txid: number; ordinal: bigint; flexible: boolean }, type: MethodDesc['response'], body: unknown, what: string): void {
    let message;
    try {
      message = encodeMessage(header, type, body);
    } catch (e) {
      // encodeMessage closed every handle of the body
      logger.error('FIDL server could not encode a message', { protocol: this.protocol.name, method: what, error: (e as Error).message });
      this.closeWithEpitaph(Status.INTERNAL, e);
      return;
    }
    try {
      this.channel.send(message.bytes, message.handles);
    } catch (e) {
      closeAll(message.handles.filter((h) => h.valid));
      const status = statusOf(e);
      if (status === Status.PEER_CLOSED) {
        this.finish(null, e);
        return;
      }
      logger.error('FIDL server could not send a message', { protocol: this.protocol.name, method: what, status, error: (e as Error).message });
      this.closeWithEpitaph(Status.INTERNAL, e);
    }
  }
}

/** A promise or any other thenable: a reply that is not there yet. */
function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as { then?: unknown }).then === 'function';
}
