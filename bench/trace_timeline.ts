// A timeline chart (SVG, no dependency) of a trace written with --trace, for the README: what one
// sees in ui.perfetto.dev, drawn by the project from the same file (a screenshot of the UI cannot
// be made offline here).
//   node dist/bench/trace_timeline.js TRACE OUT.svg
// One lane per track that has slices or instants (the FIDL server, each pager, each pager thread),
// vmo_read windows coloured by whether a reader waited on them, and the "bytes supplied" counter
// as a step line under the lanes. The trace is decoded with the types generated from proto/.
import * as fs from 'fs';
import { fromBinary } from '@bufbuild/protobuf';
import { TraceSchema, TrackEvent_Type } from '../src/gen/perfetto/perfetto_trace_pb';

interface Slice { begin: bigint; end: bigint; name: string; waited: boolean }
interface Lane { name: string; slices: Slice[]; instants: { ts: bigint; name: string }[] }

const W = 960;
const LABEL = 190;
const LANE_H = 26;
const COUNTER_H = 110;
const COLORS = { waited: '#d62728', readAhead: '#1f77b4', fidl: '#2ca02c', instant: '#9467bd', counter: '#ff7f0e' };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function timelineSvg(traceBytes: Uint8Array, title: string): string {
  const trace = fromBinary(TraceSchema, traceBytes);
  const names = new Map<bigint, string>();
  for (const p of trace.packet) {
    if (p.data.case !== 'trackDescriptor') continue;
    const d = p.data.value;
    names.set(d.uuid, d.thread?.threadName || d.name || `track ${d.uuid}`);
  }
  const lanes = new Map<bigint, Lane>();
  const lane = (uuid: bigint): Lane => {
    let l = lanes.get(uuid);
    if (l === undefined) lanes.set(uuid, (l = { name: names.get(uuid) ?? String(uuid), slices: [], instants: [] }));
    return l;
  };
  const open = new Map<bigint, Slice[]>();
  const counter: [bigint, bigint][] = [];
  let t0 = -1n;
  let t1 = 0n;
  for (const p of trace.packet) {
    if (p.data.case !== 'trackEvent') continue;
    const e = p.data.value;
    const ts = p.timestamp;
    if (e.type === TrackEvent_Type.COUNTER) {
      if (names.get(e.trackUuid) === 'bytes supplied') counter.push([ts, e.counterValue]);
      continue;
    }
    if (t0 < 0n || ts < t0) t0 = ts;
    if (ts > t1) t1 = ts;
    const name = e.nameField.case === 'name' ? e.nameField.value : '';
    if (e.type === TrackEvent_Type.INSTANT) lane(e.trackUuid).instants.push({ ts, name });
    if (e.type === TrackEvent_Type.SLICE_BEGIN) {
      const waited = e.debugAnnotations.some((a) => a.nameField.value === 'reader_waiting' && a.value.case === 'boolValue' && a.value.value);
      const s: Slice = { begin: ts, end: ts, name, waited };
      lane(e.trackUuid).slices.push(s);
      open.set(e.trackUuid, [...(open.get(e.trackUuid) ?? []), s]);
    }
    if (e.type === TrackEvent_Type.SLICE_END) {
      const stack = open.get(e.trackUuid) ?? [];
      const s = stack.pop();
      if (s !== undefined) s.end = ts;
    }
  }
  if (t0 < 0n) throw new Error('the trace has no events');
  const span = Number(t1 - t0) || 1;
  const plotW = W - LABEL - 20;
  const x = (ts: bigint) => LABEL + (Number(ts - t0) / span) * plotW;
  const rows = [...lanes.values()].sort((a, b) => a.name.localeCompare(b.name));
  const top = 40;
  const counterTop = top + rows.length * LANE_H + 30;
  const H = counterTop + COUNTER_H + 50;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`);
  rows.forEach((r, i) => {
    const y = top + i * LANE_H;
    out.push(`<text x="${LABEL - 6}" y="${y + LANE_H / 2 + 4}" text-anchor="end">${esc(r.name)}</text>`);
    out.push(`<line x1="${LABEL}" x2="${W - 20}" y1="${y + LANE_H}" y2="${y + LANE_H}" stroke="#eee"/>`);
    for (const s of r.slices) {
      const color = s.name === 'vmo_read' ? (s.waited ? COLORS.waited : COLORS.readAhead) : COLORS.fidl;
      const w = Math.max(0.6, x(s.end) - x(s.begin));
      out.push(`<rect x="${x(s.begin).toFixed(1)}" y="${y + 4}" width="${w.toFixed(1)}" height="${LANE_H - 8}" fill="${color}" fill-opacity="0.8"><title>${esc(s.name)} ${(Number(s.end - s.begin) / 1e3).toFixed(0)} us</title></rect>`);
    }
    for (const m of r.instants) {
      const cx = x(m.ts);
      out.push(`<path d="M${cx.toFixed(1)},${y + 4} l5,9 l-10,0 z" fill="${COLORS.instant}"><title>${esc(m.name)}</title></path>`);
      out.push(`<text x="${(cx + 7).toFixed(1)}" y="${y + 20}" fill="${COLORS.instant}">${esc(m.name)}</text>`);
    }
  });
  // Time axis, in ms from the first event.
  const axisY = counterTop + COUNTER_H;
  for (let i = 0; i <= 8; i++) {
    const tx = LABEL + (plotW * i) / 8;
    out.push(`<line x1="${tx}" x2="${tx}" y1="${top}" y2="${axisY}" stroke="#f3f3f3"/>`);
    out.push(`<text x="${tx}" y="${axisY + 16}" text-anchor="middle">${((span * i) / 8 / 1e6).toFixed(1)}</text>`);
  }
  out.push(`<text x="${LABEL + plotW / 2}" y="${axisY + 34}" text-anchor="middle">ms since the first event</text>`);
  // The bytes supplied counter.
  const max = counter.reduce((m, [, v]) => (v > m ? v : m), 1n);
  const cy = (v: bigint) => axisY - (Number(v) / Number(max)) * (COUNTER_H - 10);
  out.push(`<text x="${LABEL - 6}" y="${counterTop + 14}" text-anchor="end">bytes supplied</text>`);
  out.push(`<text x="${LABEL - 6}" y="${counterTop + 28}" text-anchor="end">(max ${(Number(max) / 1048576).toFixed(0)} MiB)</text>`);
  out.push(`<line x1="${LABEL}" x2="${W - 20}" y1="${axisY}" y2="${axisY}" stroke="#999"/>`);
  let d = '';
  let last = 0n;
  for (const [ts, v] of counter) {
    const cx = Math.min(Math.max(x(ts), LABEL), W - 20).toFixed(1);
    d += d === '' ? `M${cx},${cy(last).toFixed(1)}` : '';
    d += ` L${cx},${cy(last).toFixed(1)} L${cx},${cy(v).toFixed(1)}`;
    last = v;
  }
  if (d !== '') out.push(`<path d="${d}" fill="none" stroke="${COLORS.counter}" stroke-width="2"/>`);
  // Legend.
  const legend: [string, string][] = [[COLORS.waited, 'vmo_read, a reader waiting on it'], [COLORS.readAhead, 'vmo_read, read-ahead'], [COLORS.fidl, 'FIDL method'], [COLORS.instant, 'instant event']];
  legend.forEach(([c, label], i) => {
    const lx = 20 + i * 230;
    out.push(`<rect x="${lx}" y="${H - 12}" width="10" height="10" fill="${c}"/><text x="${lx + 14}" y="${H - 3}">${esc(label)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function main(): void {
  const [tracePath, outPath, ...titleWords] = process.argv.slice(2);
  if (tracePath === undefined || outPath === undefined) {
    process.stderr.write('usage: node dist/bench/trace_timeline.js TRACE OUT.svg [TITLE]\n');
    process.exit(2);
  }
  const title = titleWords.length > 0 ? titleWords.join(' ') : `starnix-pager trace: ${tracePath}`;
  fs.writeFileSync(outPath, timelineSvg(fs.readFileSync(tracePath), title));
}

if (require.main === module) main();
