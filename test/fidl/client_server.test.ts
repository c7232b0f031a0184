// Client and server bindings over a real Channel pair (AF_UNIX SOCK_SEQPACKET, fds in SCM_RIGHTS).
import * as fs from 'fs';
import * as fidl from '../../src/fidl';
import * as runner from '../../src/gen/fuchsia_starnix_runner';
import { Channel } from '../../src/transport/channel';
import type { Handle } from '../../src/transport/handle';
import { devNullHandle, fdIsOpen } from './helpers';
import { captureLogs } from '../support/log_capture';

const NOT_FOUND = -25;

/** Collects messages that arrive on a raw channel end. */
function recorder(ch: Channel): { messages: { bytes: Uint8Array; handles: Handle[] }[]; closed: Promise<void> } {
  const messages: { bytes: Uint8Array; handles: Handle[] }[] = [];
  const closed = new Promise<void>((resolve) => ch.on('close', () => resolve()));
  ch.on('message', (bytes: Uint8Array, handles: Handle[]) => messages.push({ bytes, handles }));
  ch.start();
  return { messages, closed };
}

function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const tick = () => (cond() ? resolve() : Date.now() - start > ms ? reject(new Error('timed out')) : setTimeout(tick, 5));
    tick();
  });
}

const isDevNull = (h: Handle) => fs.fstatSync(h.fd).isCharacterDevice();

describe('FIDL client and server over a Channel pair', () => {
  const open: Channel[] = [];
  const pair = () => {
    const p = Channel.pair();
    open.push(...p);
    return p;
  };
  afterEach(() => {
    for (const c of open.splice(0)) if (!c.closed) c.close();
  });

  test('RegisterFile: success carries the VMO handle across, errors come back as Result', async () => {
    const [clientEnd, serverEnd] = pair();
    const seen: runner.PagerRegisterFileRequest[] = [];
    runner.servePager(serverEnd, {
      async registerFile(req) {
        seen.push(req);
        if (req.name === 'missing') return fidl.err(NOT_FOUND);
        return fidl.ok({ vmo: devNullHandle() });
      },
    });
    const client = new runner.PagerClient(clientEnd);
    const extents = [{ logicalStart: 0, logicalEnd: 2, physicalBlock: 77n }];
    const ok = await client.registerFile({ name: 'a', inodeNum: 3, size: 4096n, extents });
    expect(ok.ok).toBe(true);
    const vmo = (ok as { ok: true; value: runner.PagerRegisterFileResponse }).value.vmo!;
    expect(isDevNull(vmo)).toBe(true);
    vmo.close();
    expect(seen[0]).toEqual({ name: 'a', inodeNum: 3, size: 4096n, extents });
    expect(await client.registerFile({ name: 'missing' })).toEqual({ ok: false, error: NOT_FOUND });
  });

  test('concurrent calls are matched to their replies by txid', async () => {
    const [clientEnd, serverEnd] = pair();
    runner.servePager(serverEnd, {
      registerFile: (req) => new Promise((resolve) => setTimeout(() => resolve(fidl.err(-(req.inodeNum ?? 0))), (req.inodeNum! * 7) % 13)),
    });
    const client = new runner.PagerClient(clientEnd);
    const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => client.registerFile({ inodeNum: i + 1 })));
    replies.forEach((r, i) => expect(r).toEqual({ ok: false, error: -(i + 1) }));
  });

  test('Manager: one-way CreatePager moves both handles; flexible -> () resolves undefined', async () => {
    const [clientEnd, serverEnd] = pair();
    const got: runner.ManagerCreatePagerRequest[] = [];
    const unused = () => Promise.reject(new Error('not used'));
    runner.serveManager(serverEnd, {
      suspendContainer: unused, proxyWakeChannel: () => {}, addWakeSource: () => {}, removeWakeSource: () => {},
      registerWakeWatcher: (req) => { req.watcher?.close(); },
      createPager: (req) => { got.push(req); },
    });
    const client = new runner.ManagerClient(clientEnd);
    const backingVmo = devNullHandle();
    const [pagerClient, pagerServer] = Channel.pairHandles();
    client.createPager({ backingVmo, blockSize: 4096n, pager: pagerServer });
    expect(backingVmo.valid).toBe(false); // moved into the message
    await expect(client.registerWakeWatcher({ watcher: devNullHandle() })).resolves.toBeUndefined();
    await waitFor(() => got.length === 1);
    expect(got[0].blockSize).toBe(4096n);
    expect(isDevNull(got[0].backingVmo!)).toBe(true);
    expect(fs.fstatSync(got[0].pager!.fd).isSocket()).toBe(true);
    got[0].backingVmo!.close();
    got[0].pager!.close();
    pagerClient.close();
  });

  test('unknown flexible two-way method: server replies UNKNOWN_METHOD, client raises FidlFrameworkError', async () => {
    const [clientEnd, serverEnd] = pair();
    const empty: fidl.ProtocolDesc = { ...runner.PagerProtocol, methods: [] };
    const binding = new fidl.ServerBinding(serverEnd, empty, {});
    const client = new runner.PagerClient(clientEnd);
    const err = await client.registerFile({ name: 'x' }).catch((e) => e);
    expect(err).toBeInstanceOf(fidl.FidlFrameworkError);
    expect(err.status).toBe(-2);
    expect(binding.closed).toBe(false); // the binding goes on
  });

  test('unknown flexible one-way method is ignored; unknown strict one closes with INVALID_ARGS', async () => {
    const [raw, serverEnd] = pair();
    const binding = runner.servePager(serverEnd, { registerFile: () => fidl.err(NOT_FOUND) });
    const rec = recorder(raw);
    const h = devNullHandle();
    const fd = h.fd;
    raw.send(fidl.encodeMessage({ txid: 0, ordinal: 0x1234n, flexible: true }, null, undefined).bytes, [h]);
    raw.send(fidl.encodeMessage({ txid: 5, ordinal: runner.PagerRegisterFileOrdinal, flexible: true }, runner.PagerMethods.RegisterFile.payload, {}).bytes, []);
    await waitFor(() => rec.messages.length === 1);
    expect(binding.closed).toBe(false);
    expect(h.valid).toBe(false); // moved by send; the server closed the copy it received
    expect(fdIsOpen(fd)).toBe(false);
    raw.send(fidl.encodeMessage({ txid: 0, ordinal: 0x1234n, flexible: false }, null, undefined).bytes, []);
    await rec.closed;
    const last = rec.messages[rec.messages.length - 1];
    const header = fidl.decodeHeader(last.bytes);
    expect(header.ordinal).toBe(fidl.EPITAPH_ORDINAL);
    expect(fidl.decodeEpitaph(header, last.bytes, last.handles)).toBe(fidl.Status.INVALID_ARGS);
  });

  test('a request that fails to decode closes the channel with INVALID_ARGS', async () => {
    const [raw, serverEnd] = pair();
    const onClose = jest.fn();
    runner.servePager(serverEnd, { registerFile: () => fidl.err(NOT_FOUND) }, { onClose });
    const rec = recorder(raw);
    const bytes = Uint8Array.from(fidl.encodeMessage({ txid: 3, ordinal: runner.PagerRegisterFileOrdinal, flexible: true }, runner.PagerMethods.RegisterFile.payload, { name: 'abc' }).bytes);
    bytes[bytes.length - 1] = 0x7f; // a padding byte after "abc"
    raw.send(bytes, []);
    await rec.closed;
    const last = rec.messages[0];
    expect(fidl.decodeEpitaph(fidl.decodeHeader(last.bytes), last.bytes, [])).toBe(fidl.Status.INVALID_ARGS);
    expect(onClose).toHaveBeenCalledWith(expect.objectContaining({ status: fidl.Status.INVALID_ARGS }));
  });

  test('a handler that throws: epitaph INTERNAL, the pending call rejects with FidlPeerClosedError', async () => {
    const [clientEnd, serverEnd] = pair();
    const logs = captureLogs();
    runner.servePager(serverEnd, { registerFile: () => { throw new Error('boom'); } });
    const client = new runner.PagerClient(clientEnd);
    const err = await client.registerFile({}).catch((e) => e);
    logs.restore();
    expect(logs.lines.find((l) => / error: /.test(l))).toMatch(/error: FIDL handler failed protocol=fuchsia.starnix.runner\/Pager method=RegisterFile error=Error: boom/);
    expect(err).toBeInstanceOf(fidl.FidlPeerClosedError);
    expect(err.status).toBe(fidl.Status.INTERNAL);
    await expect(client.registerFile({})).rejects.toBe(err); // later calls fail the same way
  });

  test('closeWithEpitaph: every pending call rejects with the epitaph status', async () => {
    const [clientEnd, serverEnd] = pair();
    let binding: fidl.ServerBinding | null = null;
    let calls = 0;
    binding = runner.servePager(serverEnd, {
      registerFile: () => {
        calls += 1;
        if (calls === 3) binding!.closeWithEpitaph(NOT_FOUND);
        return new Promise(() => {}); // never answers
      },
    });
    const client = new runner.PagerClient(clientEnd);
    const results = await Promise.all([1, 2, 3].map(() => client.registerFile({}).catch((e) => e)));
    for (const r of results) {
      expect(r).toBeInstanceOf(fidl.FidlPeerClosedError);
      expect(r.status).toBe(NOT_FOUND);
    }
  });

  test('peer closed without epitaph: pending calls reject with PEER_CLOSED', async () => {
    const [clientEnd, serverEnd] = pair();
    const rec = recorder(serverEnd);
    const client = new runner.PagerClient(clientEnd);
    const pending = client.registerFile({ name: 'x' });
    await waitFor(() => rec.messages.length === 1);
    serverEnd.close();
    await expect(pending).rejects.toMatchObject({ status: fidl.Status.PEER_CLOSED });
  });

  test('txids start at 1 and are never 0', async () => {
    const [clientEnd, serverEnd] = pair();
    const rec = recorder(serverEnd);
    const client = new runner.PagerClient(clientEnd);
    void client.registerFile({}).catch(() => {});
    void client.registerFile({}).catch(() => {});
    await waitFor(() => rec.messages.length === 2);
    expect(rec.messages.map((m) => fidl.decodeHeader(m.bytes).txid)).toEqual([1, 2]);
    client.close();
  });
});
