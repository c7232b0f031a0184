// The part of the transport's Channel the FIDL runtime uses. Declared here, structurally, so
// the wire runtime never loads the native addon: src/transport/channel.ts satisfies it, and so
// does any test double.
import type { Handle } from '../transport/handle';

export interface FidlChannel {
  /**
   * 'message' (bytes, handles, batched?) for each datagram, `batched` true when more messages
   * that arrived with it follow in the same macrotask; 'close' () once the channel is gone.
   */
  on(event: 'message' | 'close', listener: (...args: any[]) => void): unknown; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Begins delivering 'message' events (called after the listeners are attached). */
  start(): void;
  /** Sends one message, moving the handles; throws an error with a zx `status` on failure. */
  send(bytes: Uint8Array, handles: Handle[]): void;
  close(): void;
  readonly closed: boolean;
  readonly name: string;
}

/** zx status carried by a transport error (ChannelError.status), if any. */
export function statusOf(e: unknown): number | undefined {
  const s = (e as { status?: unknown } | null)?.status;
  return typeof s === 'number' ? s : undefined;
}
