// Handles checked as declared, in the codec, with real fds and the real check
// (src/fidl_linux.ts installs handleObjectCheck): a handle that cannot stand for its declared
// object type fails with incorrect_handle_type, one without a declared right with
// missing_required_handle_rights, on encode and on decode; and when encoding fails, every handle
// of the value is closed, also those the encoder had not reached yet.
import '../../src/fidl_linux';
import * as fs from 'fs';
import * as fidl from '../../src/fidl';
import { Channel } from '../../src/transport/channel';
import { Handle } from '../../src/transport/handle';
import { createMemfd } from '../../src/transport/memfd';
import { createEventFd, createEventPair } from '../../src/transport/stand_ins';
import { fdIsOpen } from './helpers';

const VMO = 3;
const CHANNEL = 4;
const EVENT = 5;
const EVENTPAIR = 16;
const READ = 1 << 2;
const WRITE = 1 << 3;

// struct { a zx.Handle:VMO; b zx.Handle:<EVENTPAIR>; c zx.Handle:<VMO, READ|WRITE>; d vector<zx.Handle:CHANNEL>:4; }
const decl = new fidl.StructDecl('test/Handles', 32, 8, true, () => [
  { name: 'a', offset: 0, type: fidl.handle(VMO) },
  { name: 'b', offset: 4, type: fidl.handle(EVENTPAIR) },
  { name: 'c', offset: 8, type: fidl.handle(VMO, READ | WRITE) },
  { name: 'd', offset: 16, type: fidl.vector(fidl.handle(CHANNEL), 4) },
]);
const type = fidl.struct(decl);

const made: Handle[] = [];
function keep<T extends Handle>(h: T): T {
  made.push(h);
  return h;
}
afterAll(() => {
  for (const h of made) h.close();
});

function good() {
  const [pairA] = createEventPair().map(keep);
  const [chA] = Channel.pairHandles().map(keep);
  return { a: keep(createMemfd('a', 1)), b: pairA, c: keep(createMemfd('c', 1)), d: [chA] };
}

/** The fds behind every handle of a value, read before encoding moves or closes them. */
function fdsOf(v: { a: Handle; b: Handle; c: Handle; d: Handle[] }): number[] {
  return [v.a.fd, v.b.fd, v.c.fd, ...v.d.map((h) => h.fd)];
}

test('a value whose handles fit their declarations encodes, and decodes back', () => {
  const v = good();
  const { bytes, handles } = fidl.encodeValue(type, v);
  expect(handles).toHaveLength(4);
  const back = fidl.decodeValue<Record<string, unknown>>(type, bytes, handles, 0);
  expect(back.a).toBe(v.a);
  fidl.closeAll(handles);
});

test.each([
  ['an eventfd where an eventpair is declared', (v: ReturnType<typeof good>) => ({ ...v, b: keep(createEventFd()) }), 'incorrect_handle_type', 'b'],
  ['a channel end where a VMO is declared', (v: ReturnType<typeof good>) => ({ ...v, a: keep(Channel.pairHandles()[0]) }), 'incorrect_handle_type', 'a'],
  ['an eventpair end in a vector of channels', (v: ReturnType<typeof good>) => ({ ...v, d: [v.d[0], keep(createEventPair()[0])] }), 'incorrect_handle_type', 'd.1'],
  ['a read-only VMO where READ|WRITE is declared', (v: ReturnType<typeof good>) => ({ ...v, c: keep(new Handle(fs.openSync(`/proc/self/fd/${v.c.fd}`, 'r'))) }), 'missing_required_handle_rights', 'c'],
])('encode refuses %s, and closes every handle of the value', (_name, spoil, code, where) => {
  const v = spoil(good());
  const fds = fdsOf(v);
  let err: fidl.FidlEncodeError | undefined;
  try {
    fidl.encodeValue(type, v);
  } catch (e) {
    err = e as fidl.FidlEncodeError;
  }
  expect(err).toBeInstanceOf(fidl.FidlEncodeError);
  expect(err!.code).toBe(code);
  expect(err!.path.join('.')).toBe(where);
  expect(err!.status).toBe(code === 'incorrect_handle_type' ? fidl.Status.WRONG_TYPE : fidl.Status.ACCESS_DENIED);
  for (const h of [v.a, v.b, v.c, ...v.d]) expect(h.valid).toBe(false);
  for (const fd of fds) expect(fdIsOpen(fd)).toBe(false);
});

test('encodeMessage closes every handle of the body when one does not fit, and of a body that is not even the right shape', () => {
  const v = { ...good(), b: keep(createEventFd()) };
  expect(() => fidl.encodeMessage({ txid: 1, ordinal: 5n, flexible: false }, type, v)).toThrow(/incorrect_handle_type/);
  for (const h of [v.a, v.b, v.c, ...v.d]) expect(h.valid).toBe(false);
  const odd = { a: keep(createMemfd('x', 1)), b: 'not a handle', extra: { h: keep(createEventFd()) } };
  expect(() => fidl.encodeMessage({ txid: 1, ordinal: 5n, flexible: false }, type, odd)).toThrow(fidl.FidlEncodeError);
  expect(odd.a.valid).toBe(false);
  expect(odd.extra.h.valid).toBe(false);
});

test('decode checks each received handle against its declaration: wrong kind, missing rights; all handles closed', () => {
  // Encode with the check off (a peer that does not check), then decode with the real one.
  const bad = { ...good(), b: keep(createEventFd()) };
  const sent = fidl.encodeValue(type, bad, { handleCheck: null });
  let err = (() => { try { fidl.decodeValue(type, sent.bytes, sent.handles, 0); } catch (e) { return e as fidl.FidlDecodeError; } return undefined; })();
  expect(err?.code).toBe('incorrect_handle_type');
  expect(err?.status).toBe(fidl.Status.WRONG_TYPE);
  expect(err?.message).toMatch(/zx.Handle:EVENTPAIR/);
  for (const h of sent.handles) expect(h.valid).toBe(false);

  const g = good();
  const readOnly = keep(new Handle(fs.openSync(`/proc/self/fd/${g.c.fd}`, 'r')));
  const sent2 = fidl.encodeValue(type, { ...g, c: readOnly }, { handleCheck: null });
  err = (() => { try { fidl.decodeValue(type, sent2.bytes, sent2.handles, 0); } catch (e) { return e as fidl.FidlDecodeError; } return undefined; })();
  expect(err?.code).toBe('missing_required_handle_rights');
  expect(err?.status).toBe(fidl.Status.ACCESS_DENIED);
  for (const h of sent2.handles) expect(h.valid).toBe(false);
});

test('an EVENT handle is an eventfd and nothing else', () => {
  const one = fidl.struct(new fidl.StructDecl('test/One', 4, 4, true, () => [{ name: 'e', offset: 0, type: fidl.handle(EVENT) }]));
  const ok = fidl.encodeValue(one, { e: keep(createEventFd(3)) });
  fidl.closeAll(ok.handles);
  expect(() => fidl.encodeValue(one, { e: keep(createMemfd('not-an-event', 1)) })).toThrow(/incorrect_handle_type/);
});
