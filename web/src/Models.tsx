// Studio's "Models" panel: the figures that matter from each models/<kind>/metrics.json (see
// docs/FORMATS.md, "`dself say` outputs and `dself eval say --json`"), a curated view per known
// kind and a short table of key figures for any other.

import type { ReactNode } from "react";
import type { Metrics } from "./api";
import { BarChart, formatNumber } from "./plots";

type Rec = Record<string, unknown>;

const KNOWN = ["voice", "motion", "render"];

// The targets of `dself eval say` (its "targets" field).
const TARGET_FACE_FOUND = 1.0;
const TARGET_MOUTH_ERROR_IOD_PCT = 5;
const TARGET_OPENING_CORRELATION = 0.9;

function isRec(v: unknown): v is Rec {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function rec(v: unknown): Rec {
  return isRec(v) ? v : {};
}

/** Two significant digits for small numbers, fewer decimals for large ones. */
function sig(v: number): string {
  const a = Math.abs(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return Number(v.toPrecision(2)).toString();
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function PartError({ part, value }: { part: string; value: unknown }) {
  const why = isRec(value) && typeof value.error === "string" ? value.error : "not measured";
  return (
    <p className="part-error" data-part-error={part}>
      <b>{part}:</b> not measured — {why}
    </p>
  );
}

function Figure({ label, value, hint, pass }: { label: string; value: string; hint?: ReactNode; pass?: boolean }) {
  return (
    <div className="figure">
      <div className="figure-value">
        {value}
        {pass !== undefined && (
          <span className={`mark ${pass ? "pass" : "fail"}`} title={pass ? "meets the target" : "misses the target"}>
            {pass ? "✓" : "✗"}
          </span>
        )}
      </div>
      <div className="figure-label">{label}</div>
      {hint && <div className="figure-hint">{hint}</div>}
    </div>
  );
}

function Voice({ m }: { m: Rec }) {
  if ("error" in m) return <PartError part="voice" value={m} />;
  const fallback = m.fallback === true;
  const name = String(m.voice ?? m.espeak_voice ?? "unknown voice").replace(/\s*\(fallback voice\)\s*$/, "");
  const wer = num(m.wer);
  const rtf = num(m.real_time_factor);
  const person = rec(m.person_pitch);
  const voice = rec(m.voice_pitch);
  const personHz = num(person.median_hz);
  const voiceHz = num(voice.median_hz);
  const semis = num(m.pitch_difference_semitones);
  const words = num(m.reference_words);
  const utts = num(m.utterance_count);
  return (
    <>
      <p className="model-sub">
        <span className="model-name">{name}</span>
        {fallback && <span className="badge">fallback voice</span>}
      </p>
      <div className="model-body">
        <div className="figures">
          {wer !== null && (
            <Figure
              label="intelligibility: word error rate"
              value={`${(wer * 100).toFixed(0)}%`}
              hint={`lower is better${words !== null ? ` · ${plural(words, "word")}` : ""}${utts !== null ? `, ${plural(utts, "utterance")}` : ""}`}
            />
          )}
          {rtf !== null && <Figure label="real-time factor" value={`${sig(rtf)}×`} hint="synthesis time ÷ audio length; below 1 is faster than real time" />}
        </div>
        {personHz !== null && voiceHz !== null && (
          <BarChart
            spec={{
              title: "Median pitch (Hz)",
              unit: " Hz",
              digits: 0,
              series: ["median"],
              groups: [
                { label: "person", values: [personHz] },
                { label: "voice", values: [voiceHz] },
              ],
              note: semis !== null ? `The voice is ${Math.abs(semis).toFixed(2)} semitones ${semis < 0 ? "lower" : "higher"} than the person.` : undefined,
            }}
          />
        )}
      </div>
    </>
  );
}

function Motion({ m }: { m: Rec }) {
  if ("error" in m) return <PartError part="motion" value={m} />;
  const tracked = rec(m.tracked);
  const truth = isRec(m.truth) && num(m.truth.lmd_iod_pct) !== null ? m.truth : null;
  const tracker = truth ? num(truth.tracker_lmd_iod_pct) : null;
  const groups = [
    { label: "vs tracked", values: [num(tracked.lmd_iod_pct), num(tracked.rest_lmd_iod_pct), null] },
    ...(truth ? [{ label: "vs truth", values: [num(truth.lmd_iod_pct), num(truth.rest_lmd_iod_pct), tracker] }] : []),
  ].filter((g) => g.values[0] !== null);
  const series = ["model", "rest face (baseline)", ...(tracker !== null ? ["tracker's own error"] : [])];
  const corrTracked = num(tracked.opening_correlation);
  const corrTruth = truth ? num(truth.opening_correlation) : null;
  const frames = num(tracked.frames);
  const held = num(m.held_out_utterances);
  return (
    <>
      <p className="model-sub">
        <span className="model-name">{String(m.engine ?? "motion")}</span>
        {(held !== null || frames !== null) && (
          <span className="muted">
            {[held !== null ? plural(held, "held-out utterance") : "", frames !== null ? plural(frames, "frame") : ""].filter(Boolean).join(", ")}
          </span>
        )}
      </p>
      <div className="model-body">
        <div className="figures">
          {corrTracked !== null && <Figure label="mouth-opening correlation vs tracked" value={corrTracked.toFixed(2)} hint="1 is perfect" />}
          {corrTruth !== null && <Figure label="mouth-opening correlation vs truth" value={corrTruth.toFixed(2)} hint="1 is perfect" />}
        </div>
        {groups.length > 0 && (
          <BarChart
            spec={{
              title: "Mouth and jaw landmark distance on held-out frames (% IOD)",
              unit: "%",
              digits: 2,
              series,
              groups,
              note: `Lower is better.${tracker !== null ? " The tracker's own error is the floor for any motion judged by the track." : ""}`,
            }}
          />
        )}
      </div>
    </>
  );
}

function LipSync({ m }: { m: Rec }) {
  if ("error" in m) return <PartError part="lip sync" value={m} />;
  const found = num(m.face_found_share);
  const mouth = num(m.mouth_error_iod_pct);
  const corr = num(m.opening_correlation);
  const sentences = num(m.sentences);
  const frames = num(m.frames);
  return (
    <div className="render-part">
      <h4>
        Lip sync{" "}
        <span className="muted">
          {[sentences !== null ? plural(sentences, "sentence") : "", frames !== null ? `${plural(frames, "frame")}, faces re-detected` : ""]
            .filter(Boolean)
            .join(", ")}
        </span>
      </h4>
      <div className="figures">
        {found !== null && (
          <Figure label="face found" value={`${(found * 100).toFixed(found < 1 && found > 0.99 ? 1 : 0)}%`} hint={`target ${TARGET_FACE_FOUND * 100}%`} pass={found >= TARGET_FACE_FOUND} />
        )}
        {mouth !== null && (
          <Figure label="mouth error (% IOD)" value={`${mouth.toFixed(2)}%`} hint={`target ≤ ${TARGET_MOUTH_ERROR_IOD_PCT}%`} pass={mouth <= TARGET_MOUTH_ERROR_IOD_PCT} />
        )}
        {corr !== null && (
          <Figure label="opening correlation" value={corr.toFixed(2)} hint={`target ≥ ${TARGET_OPENING_CORRELATION}`} pass={corr >= TARGET_OPENING_CORRELATION} />
        )}
      </div>
    </div>
  );
}

function Reenactment({ m }: { m: Rec }) {
  if ("error" in m) return <PartError part="reenactment" value={m} />;
  const base = rec(m.reference_only);
  const engine = typeof m.engine === "string" ? m.engine : "model";
  const regions = [
    ["face", "face"],
    ["lower_face", "lower face"],
  ] as const;
  const chart = (key: "psnr_db" | "ssim") =>
    regions
      .map(([k, label]) => ({ label, values: [num(rec(m[k])[key]), num(rec(base[k])[key])] }))
      .filter((g) => g.values[0] !== null);
  const psnr = chart("psnr_db");
  const ssim = chart("ssim");
  const series = [engine, "reference only (baseline)"];
  const frames = num(m.frames);
  return (
    <div className="render-part">
      <h4>
        Reenactment{" "}
        <span className="muted">
          {[frames !== null ? `${plural(frames, "frame")}` : "", typeof m.held_out === "string" ? `held out: ${m.held_out}` : ""].filter(Boolean).join(", ")}
        </span>
      </h4>
      <div className="plots">
        {psnr.length > 0 && <BarChart spec={{ title: "PSNR (dB, higher is better)", unit: " dB", digits: 1, series, groups: psnr }} />}
        {ssim.length > 0 && <BarChart spec={{ title: "SSIM (higher is better)", digits: 3, max: 1, series, groups: ssim }} />}
      </div>
    </div>
  );
}

function Render({ m }: { m: Rec }) {
  if ("error" in m) return <PartError part="render" value={m} />;
  return (
    <>
      {isRec(m.lip_sync) && <LipSync m={m.lip_sync} />}
      {isRec(m.reenactment) && <Reenactment m={m.reenactment} />}
    </>
  );
}

/** Any other kind: its top-level figures (and those one level down), as a short table. */
function Generic({ m }: { m: Rec }) {
  if ("error" in m) return <PartError part="metrics" value={m} />;
  const rows: [string, string][] = [];
  const add = (name: string, v: unknown) => {
    if (typeof v === "number" && Number.isFinite(v)) rows.push([name, formatNumber(v)]);
    else if (typeof v === "boolean") rows.push([name, v ? "yes" : "no"]);
    else if (typeof v === "string" && v.length <= 60 && name !== "format") rows.push([name, v]);
  };
  for (const [k, v] of Object.entries(m)) {
    if (isRec(v)) for (const [k2, v2] of Object.entries(v)) add(`${k} · ${k2}`, v2);
    else add(k, v);
  }
  if (rows.length === 0) return <p className="muted small">no figures</p>;
  return (
    <table className="kv">
      <tbody>
        {rows.slice(0, 12).map(([name, value]) => (
          <tr key={name}>
            <th>{name.replace(/_/g, " ")}</th>
            <td>{value}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const TITLES: Record<string, string> = { voice: "Voice", motion: "Motion", render: "Render" };

export function ModelMetrics({ metrics, error }: { metrics: Metrics | null; error: string | null }) {
  if (error) return <p className="error">{error}</p>;
  if (!metrics) return <p className="muted">loading…</p>;
  const models = metrics.models ?? {};
  const kinds = [...KNOWN.filter((k) => k in models), ...Object.keys(models).filter((k) => !KNOWN.includes(k)).sort()];
  return (
    <>
      {metrics.server && (
        <p className="muted small">
          server: {metrics.server.live_sessions ?? 0} live session{metrics.server.live_sessions === 1 ? "" : "s"},{" "}
          {metrics.server.jobs_done ?? 0} job{metrics.server.jobs_done === 1 ? "" : "s"} done
        </p>
      )}
      {kinds.length === 0 ? (
        <p className="muted" data-testid="no-metrics">
          No measurements yet. The voice, the motion and the picture are measured against the person's held-out
          videos when the avatar is evaluated; the figures appear here then. The avatar can talk without them.
        </p>
      ) : (
        <div className="models">
          {kinds.map((kind) => {
            const m = rec(models[kind]);
            return (
              <section key={kind} className="model" data-model={kind}>
                <h3>{TITLES[kind] ?? kind.replace(/_/g, " ")}</h3>
                {kind === "voice" ? <Voice m={m} /> : kind === "motion" ? <Motion m={m} /> : kind === "render" ? <Render m={m} /> : <Generic m={m} />}
              </section>
            );
          })}
        </div>
      )}
    </>
  );
}
