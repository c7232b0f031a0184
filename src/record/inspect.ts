// `starnix-pager inspect FILE`: the conversation in a record file (see format.ts), decoded with
// the generated coding tables, like fidlcat: method names, requests paired with their replies by
// txid, payloads as the same JSON as `fidl decode`, epitaphs, and every message that fails to
// decode shown as raw bytes with the decoder's error. A message of an unknown protocol is shown
// raw, never dropped.
import { decodeValue } from '../fidl/decoder';
import { toJson } from '../fidl/json';
import { EPITAPH_ORDINAL, HEADER_SIZE, MessageHeader, decodeHeader } from '../fidl/message';
import { MethodDesc, ProtocolDesc } from '../fidl/protocol';
import { FidlType, int32 } from '../fidl/types';
import { HandleStandIn } from '../fidl/codec_cli';
import * as runner from '../gen/fuchsia_starnix_runner';
import * as mapper from '../gen/starnix_pager';
import { ZX_RIGHT_READ, ZX_RIGHT_WRITE } from '../transport/handle_info';
import { statusName } from '../zx_status';
import { FidlRecord, MessageRecord, RECORD_FORMAT, ReadProblem, readRecords } from './format';

const PROTOCOLS: ReadonlyMap<string, ProtocolDesc> = new Map(
  [runner.ManagerProtocol, runner.PagerProtocol, mapper.MapperProtocol].map((p) => [p.name, p]),
);

/** One decoded message: what both the text and the --json output are made from. */
export interface InspectedMessage {
  /** 1-based number of the message in the file. */
  n: number;
  t: number;
  conn: number;
  protocol: string;
  pid: number;
  uid: number;
  dir: 'in' | 'out';
  /** request, reply, event, epitaph, undecodable (a known protocol, a message that failed), raw (unknown protocol). */
  kind: 'request' | 'reply' | 'event' | 'epitaph' | 'undecodable' | 'raw';
  method?: string;
  txid?: number;
  /** For a reply: the number of the request it answers, and the time between them. */
  replyTo?: number;
  latencyMs?: number;
  payload?: unknown;
  epitaph?: string;
  error?: string;
  handles: string[];
  /** The raw bytes in hex, for undecodable and raw messages. */
  bytes?: string;
}

export interface InspectFilter {
  connection?: number;
  method?: string;
}

export interface InspectResult {
  messages: number;
  shown: number;
  problem: ReadProblem | null;
  notes: string[];
}

/** Reads FILE and calls onMessage for each message that passes the filter. Throws only for an unreadable file. */
export function inspectFile(path: string, filter: InspectFilter, onMessage: (m: InspectedMessage) => void): InspectResult {
  const pending = new Map<string, { n: number; t: number; method: MethodDesc }>(); // conn/txid -> request
  const notes: string[] = [];
  let messages = 0;
  let shown = 0;
  let first = true;
  const problem = readRecords(path, (rec: FidlRecord, offset) => {
    if (first) {
      first = false;
      if (!isObject(rec) || rec.type !== 'header' || rec.format !== RECORD_FORMAT) {
        notes.push(`${path} does not start with a ${RECORD_FORMAT} header: reading it anyway`);
      }
      if (isObject(rec) && rec.type === 'header') return;
    }
    if (!isObject(rec) || rec.type !== 'message') {
      if (isObject(rec) && rec.type === 'limit') notes.push(`recording stopped at its bound of ${rec.maxBytes} bytes (--record-max-bytes)`);
      else notes.push(`record at byte ${offset} is not a message: skipped`);
      return;
    }
    messages++;
    const m = inspectMessage(messages, rec, pending);
    if (filter.connection !== undefined && m.conn !== filter.connection) return;
    if (filter.method !== undefined && m.method !== filter.method) return;
    shown++;
    onMessage(m);
  });
  return { messages, shown, problem, notes };
}

function isObject(v: unknown): v is Record<string, unknown> & FidlRecord {
  return typeof v === 'object' && v !== null;
}

function inspectMessage(n: number, rec: MessageRecord, pending: Map<string, { n: number; t: number; method: MethodDesc }>): InspectedMessage {
  const handles = Array.isArray(rec.handles) ? rec.handles : [];
  const bytes = rec.bytes instanceof Uint8Array ? rec.bytes : new Uint8Array(0);
  const base: InspectedMessage = {
    n,
    t: rec.t,
    conn: rec.conn,
    protocol: String(rec.protocol),
    pid: rec.pid,
    uid: rec.uid,
    dir: rec.dir,
    kind: 'raw',
    handles: handles.map((h) => `${h.kind} ${rightsName(h.rights)}`),
  };
  const raw = (kind: 'raw' | 'undecodable', error?: string): InspectedMessage => ({ ...base, kind, error, bytes: Buffer.from(bytes).toString('hex') });
  const protocol = PROTOCOLS.get(base.protocol);
  if (protocol === undefined) return raw('raw', `protocol ${base.protocol} is not one inspect knows`);
  let header: MessageHeader;
  try {
    header = decodeHeader(bytes);
  } catch (e) {
    return raw('undecodable', (e as Error).message);
  }
  base.txid = header.txid;
  if (header.ordinal === EPITAPH_ORDINAL) {
    try {
      const status = decodeBody(int32, bytes, handles.length) as number;
      return { ...base, kind: 'epitaph', epitaph: statusName(status) };
    } catch (e) {
      return raw('undecodable', `epitaph: ${(e as Error).message}`);
    }
  }
  const method = protocol.methods.find((m) => m.ordinal === header.ordinal);
  if (method === undefined) return raw('undecodable', `no method of ${protocol.name} has ordinal 0x${header.ordinal.toString(16)}`);
  base.method = method.name;
  const key = `${rec.conn}/${header.txid}`;
  let kind: InspectedMessage['kind'];
  let type: FidlType | null;
  if (rec.dir === 'in') {
    kind = 'request';
    type = method.payload;
    if (header.txid !== 0) pending.set(key, { n, t: rec.t, method });
  } else if (header.txid === 0) {
    kind = 'event';
    type = method.payload;
  } else {
    kind = 'reply';
    type = method.response;
    const request = pending.get(key);
    if (request !== undefined && request.method === method) {
      pending.delete(key);
      base.replyTo = request.n;
      base.latencyMs = Math.round((rec.t - request.t) * 1000) / 1000;
    }
  }
  try {
    const payload = type === null ? null : decodeBody(type, bytes, handles.length);
    return { ...base, kind, payload };
  } catch (e) {
    return { ...raw('undecodable', (e as Error).message), method: method.name, txid: header.txid };
  }
}

/** Decodes a body after the header with one stand-in per recorded handle, to `fidl decode`'s JSON. */
function decodeBody(type: FidlType, bytes: Uint8Array, handleCount: number): unknown {
  const standIns = Array.from({ length: handleCount }, (_, i) => new HandleStandIn(i));
  const value = decodeValue(type, bytes, standIns, HEADER_SIZE, { handleCheck: null });
  return toJson(type, value, (h) => (h as HandleStandIn).id);
}

function rightsName(rights: number): string {
  const names = [(rights & ZX_RIGHT_READ) !== 0 ? 'READ' : '', (rights & ZX_RIGHT_WRITE) !== 0 ? 'WRITE' : ''].filter((s) => s !== '');
  return names.length > 0 ? names.join('|') : 'no rights';
}

/** One line of text for a message (the default output). */
export function formatMessage(m: InspectedMessage, t0: number): string {
  const when = `+${((m.t - t0) / 1000).toFixed(6)}s`;
  const who = `conn ${m.conn} ${m.protocol} pid ${m.pid} uid ${m.uid}`;
  const arrow = m.dir === 'in' ? '->' : '<-';
  const handles = m.handles.length > 0 ? ` handles [${m.handles.join(', ')}]` : '';
  switch (m.kind) {
    case 'request':
    case 'event':
      return `#${m.n} ${when} ${who} ${arrow} ${m.method} ${m.kind}${m.txid ? ` txid ${m.txid}` : ''} ${JSON.stringify(m.payload)}${handles}`;
    case 'reply': {
      const to = m.replyTo !== undefined ? ` (reply to #${m.replyTo}, ${m.latencyMs} ms)` : ' (no request seen)';
      return `#${m.n} ${when} ${who} ${arrow} ${m.method} reply txid ${m.txid}${to} ${JSON.stringify(m.payload)}${handles}`;
    }
    case 'epitaph':
      return `#${m.n} ${when} ${who} ${arrow} epitaph ${m.epitaph}`;
    default:
      return `#${m.n} ${when} ${who} ${arrow} ${m.kind.toUpperCase()}${m.method ? ` ${m.method}` : ''}: ${m.error} bytes ${m.bytes}${handles}`;
  }
}
