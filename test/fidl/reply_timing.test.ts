// When the server binding sends a reply: a lone request that its handler answers synchronously
// is answered before the delivery returns (no promise hop on the one-call-in-flight path);
// requests delivered as a batch are answered after it, together and in order (one wake-up of
// the client for all of them). A FidlChannel double records what is sent and when.
import { EventEmitter } from 'events';
import * as fidl from '../../src/fidl';
import { decodeHeader, encodeMessage } from '../../src/fidl/message';
import * as runner from '../../src/gen/fuchsia_starnix_runner';
import type { Handle } from '../../src/transport/handle';

const NOT_FOUND = -25;

class RecordingChannel extends EventEmitter {
  readonly name = 'recording';
  closed = false;
  readonly sent: number[] = []; // txids, in send order
  start(): void {}
  send(bytes: Uint8Array, handles: Handle[]): void {
    for (const h of handles) h.close();
    this.sent.push(decodeHeader(bytes).txid);
  }
  close(): void {
    this.closed = true;
  }
}

function request(txid: number): Uint8Array {
  const m = runner.PagerMethods.RegisterFile;
  return encodeMessage({ txid, ordinal: m.ordinal, flexible: true }, m.payload, { name: `f${txid}` }).bytes;
}

const syncHandler = { registerFile: () => fidl.err(NOT_FOUND) as fidl.Result<runner.PagerRegisterFileResponse, number> };

test('a lone request answered synchronously is replied to within its delivery', () => {
  const ch = new RecordingChannel();
  runner.servePager(ch, syncHandler);
  ch.emit('message', request(7), [], false);
  expect(ch.sent).toEqual([7]);
});

test('a batch of requests is replied to after the batch, in order', async () => {
  const ch = new RecordingChannel();
  runner.servePager(ch, syncHandler);
  for (const txid of [1, 2, 3]) ch.emit('message', request(txid), [], true);
  expect(ch.sent).toEqual([]);
  await Promise.resolve();
  await Promise.resolve();
  expect(ch.sent).toEqual([1, 2, 3]);
});

test('an asynchronous handler is replied to when it settles, lone or not', async () => {
  const ch = new RecordingChannel();
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => (release = r));
  runner.servePager(ch, {
    registerFile: async () => {
      await gate;
      return fidl.err(NOT_FOUND);
    },
  });
  ch.emit('message', request(9), [], false);
  await Promise.resolve();
  expect(ch.sent).toEqual([]);
  release();
  await new Promise((r) => setImmediate(r));
  expect(ch.sent).toEqual([9]);
});
