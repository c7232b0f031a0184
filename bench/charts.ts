// Small SVG line charts for BENCHMARKS.md (no dependency): series of points joined by lines,
// horizontal reference lines, linear or log axes, a legend under the plot.

export interface Series {
  name: string;
  points: [number, number][];
  color: string;
  /** Draw a marker on every point (for sparse series). */
  markers?: boolean;
}

export interface ReferenceLine {
  name: string;
  y: number;
  color: string;
}

export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  xLog?: boolean;
  yLog?: boolean;
  /** Explicit ticks (else chosen from the data). */
  xTicks?: number[];
  yMin?: number;
  series: Series[];
  references?: ReferenceLine[];
}

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#17becf', '#7f7f7f'];

const W = 760;
const PLOT = { left: 70, right: 20, top: 40, height: 330 };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1000) return String(Math.round(v));
  if (a >= 10) return String(Number(v.toFixed(0)));
  if (a >= 1) return String(Number(v.toFixed(1)));
  return String(Number(v.toPrecision(2)));
}

function niceTicks(min: number, max: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** e;
        if (v >= min * 0.999 && v <= max * 1.001) out.push(v);
      }
    }
    return out;
  }
  const span = max - min || 1;
  const step0 = 10 ** Math.floor(Math.log10(span / 5));
  const step = [1, 2, 5, 10].map((m) => m * step0).find((s) => span / s <= 7) ?? step0 * 10;
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

export function lineChart(spec: ChartSpec): string {
  const xs = spec.series.flatMap((s) => s.points.map((p) => p[0])).concat(spec.xTicks ?? []);
  const ys = spec.series.flatMap((s) => s.points.map((p) => p[1])).concat((spec.references ?? []).map((r) => r.y));
  const positive = (v: number[]) => v.filter((x) => x > 0);
  let xMin = Math.min(...(spec.xLog ? positive(xs) : xs));
  let xMax = Math.max(...xs);
  let yMin = spec.yMin ?? (spec.yLog ? Math.min(...positive(ys)) : 0);
  let yMax = Math.max(...ys) * (spec.yLog ? 1.5 : 1.1);
  if (!(xMax > xMin)) [xMin, xMax] = [xMin * 0.5 || 0, xMax * 2 || 1];
  if (!(yMax > yMin)) yMax = yMin + 1;
  if (spec.xLog) [xMin, xMax] = [xMin / 1.3, xMax * 1.3];
  const legendRows = Math.ceil((spec.series.length + (spec.references?.length ?? 0)) / 2);
  const H = PLOT.top + PLOT.height + 60 + legendRows * 20;
  const pw = W - PLOT.left - PLOT.right;
  const tx = (v: number) => {
    const f = spec.xLog ? (Math.log(v) - Math.log(xMin)) / (Math.log(xMax) - Math.log(xMin)) : (v - xMin) / (xMax - xMin);
    return PLOT.left + f * pw;
  };
  const ty = (v: number) => {
    const f = spec.yLog ? (Math.log(v) - Math.log(yMin)) / (Math.log(yMax) - Math.log(yMin)) : (v - yMin) / (yMax - yMin);
    return PLOT.top + PLOT.height * (1 - f);
  };
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(spec.title)}</text>`);
  const bottom = PLOT.top + PLOT.height;
  for (const t of spec.xTicks ?? niceTicks(xMin, xMax, !!spec.xLog)) {
    const x = tx(t).toFixed(1);
    out.push(`<line x1="${x}" y1="${PLOT.top}" x2="${x}" y2="${bottom}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${x}" y="${bottom + 16}" text-anchor="middle">${fmt(t)}</text>`);
  }
  for (const t of niceTicks(yMin, yMax, !!spec.yLog)) {
    const y = ty(t).toFixed(1);
    out.push(`<line x1="${PLOT.left}" y1="${y}" x2="${W - PLOT.right}" y2="${y}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${PLOT.left - 6}" y="${Number(y) + 4}" text-anchor="end">${fmt(t)}</text>`);
  }
  out.push(`<rect x="${PLOT.left}" y="${PLOT.top}" width="${pw}" height="${PLOT.height}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${PLOT.left + pw / 2}" y="${bottom + 36}" text-anchor="middle">${esc(spec.xLabel)}</text>`);
  out.push(
    `<text transform="translate(18 ${PLOT.top + PLOT.height / 2}) rotate(-90)" text-anchor="middle">${esc(spec.yLabel)}</text>`,
  );
  for (const r of spec.references ?? []) {
    const y = ty(r.y).toFixed(1);
    out.push(`<line x1="${PLOT.left}" y1="${y}" x2="${W - PLOT.right}" y2="${y}" stroke="${r.color}" stroke-width="2" stroke-dasharray="6 4"/>`);
  }
  for (const s of spec.series) {
    if (s.points.length === 0) continue;
    const d = s.points.map((p, i) => `${i ? 'L' : 'M'}${tx(p[0]).toFixed(1)} ${ty(p[1]).toFixed(1)}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    if (s.markers) {
      for (const p of s.points) out.push(`<circle cx="${tx(p[0]).toFixed(1)}" cy="${ty(p[1]).toFixed(1)}" r="4" fill="${s.color}"/>`);
    }
  }
  const legend = [
    ...spec.series.map((s) => ({ name: s.name, color: s.color, dashed: false })),
    ...(spec.references ?? []).map((r) => ({ name: r.name, color: r.color, dashed: true })),
  ];
  legend.forEach((e, i) => {
    const x = PLOT.left + (i % 2) * (pw / 2);
    const y = bottom + 58 + Math.floor(i / 2) * 20;
    out.push(`<line x1="${x}" y1="${y - 4}" x2="${x + 24}" y2="${y - 4}" stroke="${e.color}" stroke-width="3"${e.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    out.push(`<text x="${x + 30}" y="${y}">${esc(e.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** The empirical CDF of `values` as at most `maxPoints` points (x = value, y = fraction <= x). */
export function cdfPoints(values: number[], maxPoints = 300): [number, number][] {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return [];
  const step = Math.max(1, Math.floor(n / maxPoints));
  const out: [number, number][] = [];
  for (let i = 0; i < n; i += step) out.push([Math.max(sorted[i], 1e-3), (i + 1) / n]);
  if (out[out.length - 1][1] !== 1) out.push([Math.max(sorted[n - 1], 1e-3), 1]);
  return out;
}
