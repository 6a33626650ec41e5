// Small SVG bar charts for the models' metrics: horizontal bars, optionally grouped (one bar per
// series in each group), all on one scale and in one unit.

const COLORS = ["#4f46e5", "#9ca3af", "#d97706", "#059669"];

export interface BarGroup {
  label: string;
  /** One value per series; null where the series has nothing for this group. */
  values: (number | null)[];
}

export interface BarChartSpec {
  title: string;
  /** Appended to each value's label, e.g. "%" or " Hz". */
  unit?: string;
  /** Names of the series (legend); a chart with one series has no legend. */
  series: string[];
  groups: BarGroup[];
  /** The scale's end; the largest value (plus room) when absent. */
  max?: number;
  digits?: number;
  note?: string;
}

function fmt(v: number, digits?: number): string {
  if (digits !== undefined) return v.toFixed(digits);
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1000 || a < 0.001) return v.toExponential(2);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(3).replace(/\.?0+$/, "");
}

export function formatNumber(v: number, digits?: number): string {
  return digits === undefined && Number.isInteger(v) ? String(v) : fmt(v, digits);
}

export function BarChart({ spec }: { spec: BarChartSpec }) {
  const W = 340;
  const bar = 16;
  const gap = 4;
  const groupGap = 12;
  const labelW = 80;
  const valueW = 58;
  const single = spec.series.length === 1;
  const values = spec.groups.flatMap((g) => g.values).filter((v): v is number => v !== null && Number.isFinite(v));
  const max = spec.max ?? Math.max(...values, 1e-12) * 1.05;
  const scale = (v: number) => (Math.max(0, Math.min(v, max)) / max) * (W - labelW - valueW);
  let y = 2;
  const rows = spec.groups.map((g, gi) => {
    const present = g.values.map((v, si) => ({ v, si })).filter((b): b is { v: number; si: number } => b.v !== null);
    const top = y;
    const bars = present.map((b, k) => ({ ...b, y: top + k * (bar + gap) }));
    y += Math.max(1, present.length) * (bar + gap) - gap + groupGap;
    return { g, gi, top, bars };
  });
  const H = y - groupGap + 2;
  return (
    <figure className="plot">
      <figcaption>{spec.title}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={spec.title}>
        <line x1={labelW} x2={labelW} y1={0} y2={H} className="axis" />
        {rows.map(({ g, gi, top, bars }) => (
          <g key={g.label}>
            <text x={labelW - 8} y={top + (bars.length * (bar + gap) - gap) / 2 + 4} textAnchor="end" className="tick group-label">
              {g.label}
            </text>
            {bars.map((b) => (
              <g key={b.si}>
                <rect x={labelW} y={b.y} width={Math.max(scale(b.v), 1.5)} height={bar} rx={3} fill={COLORS[(single ? gi : b.si) % COLORS.length]}>
                  <title>{`${single ? g.label : spec.series[b.si]}: ${fmt(b.v, spec.digits)}${spec.unit ?? ""}`}</title>
                </rect>
                <text x={labelW + scale(b.v) + 5} y={b.y + bar - 4} className="tick value">
                  {fmt(b.v, spec.digits)}
                  {spec.unit ?? ""}
                </text>
              </g>
            ))}
          </g>
        ))}
      </svg>
      {!single && (
        <div className="legend">
          {spec.series.map((s, i) => (
            <span key={s}>
              <i style={{ background: COLORS[i % COLORS.length] }} />
              {s}
            </span>
          ))}
        </div>
      )}
      {spec.note && <p className="plot-note">{spec.note}</p>}
    </figure>
  );
}

export interface LineSeries {
  name: string;
  /** [x, y] points in order of x. */
  points: [number, number][];
}

/** A small SVG line chart: several series on shared axes (y from 0 or the lowest value). */
export function LineChart({ title, xLabel, series }: { title: string; xLabel: string; series: LineSeries[] }) {
  const W = 360;
  const H = 180;
  const left = 44;
  const bottom = 22;
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (all.length === 0) return null;
  const xMax = Math.max(...all.map(([x]) => x), 1);
  const yMin = Math.min(0, ...all.map(([, y]) => y));
  const yMax = Math.max(...all.map(([, y]) => y), yMin + 1e-9) * 1.05;
  const sx = (x: number) => left + (x / xMax) * (W - left - 8);
  const sy = (y: number) => 6 + (1 - (y - yMin) / (yMax - yMin)) * (H - bottom - 6);
  const ticks = [yMin, (yMin + yMax) / 2, yMax];
  return (
    <figure className="plot" data-testid="line-chart">
      <figcaption>{title}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={title}>
        <line x1={left} x2={left} y1={0} y2={H - bottom} className="axis" />
        <line x1={left} x2={W} y1={H - bottom} y2={H - bottom} className="axis" />
        {ticks.map((t) => (
          <text key={t} x={left - 4} y={sy(t) + 4} textAnchor="end" className="tick">
            {fmt(t)}
          </text>
        ))}
        <text x={left} y={H - 6} className="tick">
          0
        </text>
        <text x={W - 8} y={H - 6} textAnchor="end" className="tick">
          {xLabel} {formatNumber(xMax)}
        </text>
        {series.map((s, i) =>
          s.points.length === 0 ? null : (
            <g key={s.name}>
              <polyline
                fill="none"
                stroke={COLORS[i % COLORS.length]}
                strokeWidth={2}
                points={s.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ")}
              />
              {s.points.length === 1 && <circle cx={sx(s.points[0][0])} cy={sy(s.points[0][1])} r={3} fill={COLORS[i % COLORS.length]} />}
            </g>
          ),
        )}
      </svg>
      <div className="legend">
        {series.map((s, i) => (
          <span key={s.name}>
            <i style={{ background: COLORS[i % COLORS.length] }} />
            {s.name}
          </span>
        ))}
      </div>
    </figure>
  );
}
