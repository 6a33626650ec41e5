// Small SVG plots for model metrics: line plots (training curves) and bar plots (comparisons),
// and a reader that finds what to plot in a metrics.json whose exact shape varies by model.

const COLORS = ["#4f46e5", "#db2777", "#059669", "#d97706", "#0891b2", "#7c3aed"];

export interface Series {
  name: string;
  points: [number, number][];
}

export interface LinePlotSpec {
  title: string;
  x_label: string;
  series: Series[];
}

export interface BarPlotSpec {
  title: string;
  bars: { label: string; value: number }[];
}

export interface MetricsView {
  scalars: { name: string; value: string }[];
  lines: LinePlotSpec[];
  bars: BarPlotSpec[];
}

function fmt(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1000 || a < 0.001) return v.toExponential(2);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(3).replace(/\.?0+$/, "");
}

export function formatNumber(v: number): string {
  return Number.isInteger(v) ? String(v) : fmt(v);
}

function niceRange(min: number, max: number): [number, number] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  if (min === max) return min === 0 ? [0, 1] : [Math.min(0, min), Math.max(0, max) * 1.1 || 1];
  const pad = (max - min) * 0.05;
  return [min - pad, max + pad];
}

export function LinePlot({ spec }: { spec: LinePlotSpec }) {
  const W = 360;
  const H = 200;
  const m = { l: 46, r: 10, t: 10, b: 30 };
  const all = spec.series.flatMap((s) => s.points);
  const xs = all.map((p) => p[0]);
  const [x0, x1] = Math.min(...xs) < Math.max(...xs) ? [Math.min(...xs), Math.max(...xs)] : niceRange(Math.min(...xs), Math.max(...xs));
  const [y0, y1] = niceRange(Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1])));
  const sx = (x: number) => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const sy = (y: number) => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b);
  const yTicks = [0, 0.5, 1].map((f) => y0 + f * (y1 - y0));
  const xTicks = [0, 0.5, 1].map((f) => x0 + f * (x1 - x0));
  return (
    <figure className="plot">
      <figcaption>{spec.title}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={spec.title}>
        {yTicks.map((y, i) => (
          <g key={`y${i}`}>
            <line x1={m.l} x2={W - m.r} y1={sy(y)} y2={sy(y)} className="grid" />
            <text x={m.l - 6} y={sy(y) + 4} textAnchor="end" className="tick">
              {fmt(y)}
            </text>
          </g>
        ))}
        {xTicks.map((x, i) => (
          <text key={`x${i}`} x={sx(x)} y={H - m.b + 16} textAnchor="middle" className="tick">
            {fmt(x)}
          </text>
        ))}
        <text x={(m.l + W - m.r) / 2} y={H - 2} textAnchor="middle" className="axis-label">
          {spec.x_label}
        </text>
        {spec.series.map((s, i) => (
          <polyline
            key={s.name}
            fill="none"
            stroke={COLORS[i % COLORS.length]}
            strokeWidth={2}
            strokeLinejoin="round"
            points={s.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ")}
          />
        ))}
      </svg>
      {spec.series.length > 1 && (
        <div className="legend">
          {spec.series.map((s, i) => (
            <span key={s.name}>
              <i style={{ background: COLORS[i % COLORS.length] }} />
              {s.name}
            </span>
          ))}
        </div>
      )}
    </figure>
  );
}

export function BarPlot({ spec }: { spec: BarPlotSpec }) {
  const W = 360;
  const row = 26;
  const labelW = 120;
  const H = spec.bars.length * row + 8;
  const max = Math.max(...spec.bars.map((b) => Math.abs(b.value)), 1e-12);
  return (
    <figure className="plot">
      <figcaption>{spec.title}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={spec.title}>
        {spec.bars.map((b, i) => {
          const w = (Math.abs(b.value) / max) * (W - labelW - 60);
          const y = 4 + i * row;
          return (
            <g key={b.label}>
              <text x={labelW - 6} y={y + 16} textAnchor="end" className="tick">
                {b.label.length > 18 ? b.label.slice(0, 17) + "…" : b.label}
              </text>
              <rect x={labelW} y={y + 3} width={Math.max(w, 1)} height={row - 8} rx={3} fill={COLORS[i % COLORS.length]} />
              <text x={labelW + w + 6} y={y + 16} className="tick">
                {fmt(b.value)}
              </text>
            </g>
          );
        })}
      </svg>
    </figure>
  );
}

const X_KEYS = ["step", "epoch", "iteration", "iter", "x", "t", "time_s"];

function isNumberArray(v: unknown): v is number[] {
  return Array.isArray(v) && v.length >= 2 && v.every((x) => typeof x === "number" && Number.isFinite(x));
}

function isRecordArray(v: unknown): v is Record<string, unknown>[] {
  return Array.isArray(v) && v.length >= 2 && v.every((x) => x !== null && typeof x === "object" && !Array.isArray(x));
}

function pretty(path: string): string {
  return path.replace(/_/g, " ").replace(/\./g, " · ");
}

/** Reads a model's metrics.json: numbers become a table, series become line plots, groups of
 * numbers under one key become bar plots. */
export function readMetrics(metrics: unknown): MetricsView {
  const view: MetricsView = { scalars: [], lines: [], bars: [] };
  const walk = (v: unknown, path: string, depth: number) => {
    if (typeof v === "number") {
      view.scalars.push({ name: path, value: formatNumber(v) });
    } else if (typeof v === "string" || typeof v === "boolean") {
      const s = String(v);
      if (s.length <= 80) view.scalars.push({ name: path, value: s });
    } else if (isNumberArray(v)) {
      view.lines.push({ title: pretty(path), x_label: "index", series: [{ name: path, points: v.map((y, i) => [i, y]) }] });
    } else if (isRecordArray(v)) {
      const keys = Object.keys(v[0]).filter((k) => typeof v[0][k] === "number");
      const xKey = X_KEYS.find((k) => keys.includes(k));
      const series = keys
        .filter((k) => k !== xKey)
        .map((k) => ({
          name: k,
          points: v
            .map((row, i) => [xKey ? Number(row[xKey]) : i, Number(row[k])] as [number, number])
            .filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1])),
        }))
        .filter((s) => s.points.length >= 2);
      if (series.length > 0) view.lines.push({ title: pretty(path), x_label: xKey ?? "index", series });
    } else if (v && typeof v === "object" && !Array.isArray(v)) {
      const entries = Object.entries(v as Record<string, unknown>);
      if (entries.length >= 2 && entries.every(([, x]) => isNumberArray(x))) {
        view.lines.push({
          title: pretty(path),
          x_label: "step",
          series: entries.map(([k, x]) => ({ name: k, points: (x as number[]).map((y, i) => [i, y] as [number, number]) })),
        });
        return;
      }
      const numeric = entries.filter(([, x]) => typeof x === "number" && Number.isFinite(x));
      if (depth > 0 && numeric.length >= 2 && numeric.length === entries.length && numeric.length <= 12) {
        view.bars.push({ title: pretty(path), bars: numeric.map(([k, x]) => ({ label: k, value: x as number })) });
      }
      for (const [k, x] of entries) {
        if (depth > 0 && numeric.length === entries.length && numeric.length >= 2 && numeric.length <= 12) {
          view.scalars.push({ name: path ? `${path}.${k}` : k, value: formatNumber(x as number) });
        } else {
          walk(x, path ? `${path}.${k}` : k, depth + 1);
        }
      }
    }
  };
  walk(metrics, "", 0);
  return view;
}
