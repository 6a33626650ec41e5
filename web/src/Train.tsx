// The Studio's Train panel: train the person's voice as a job (start, stop, resume), its loss
// curves as they come, the voice's figures before → after, and the held-out sentences: the
// person's real recording beside the trained voice saying the same text.

import { useEffect, useMemo, useState } from "react";
import {
  ApiError,
  getJson,
  postJson,
  withToken,
  type CurvePoint,
  type Job,
  type VoiceCurve,
  type VoiceSamples,
} from "./api";
import { LineChart } from "./plots";

function message(e: unknown): string {
  return e instanceof ApiError || e instanceof Error ? e.message : String(e);
}

/** The step and losses a running train job reports in its progress label. */
export function livePoint(job: Job | undefined): CurvePoint | null {
  const label = job?.progress?.label ?? "";
  const m = /train voice \(loss ([0-9.eE+-]+|nan), held-out ([0-9.eE+-]+|nan)\)/.exec(label);
  if (!m || !job?.progress) return null;
  const train = Number(m[1]);
  const held = Number(m[2]);
  if (!Number.isFinite(train) || train === 0) return null;  // no figures before the first evaluation
  return { step: job.progress.done, train_loss: train, held_out_loss: Number.isFinite(held) && held > 0 ? held : null };
}

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}
function rec(v: unknown): Record<string, unknown> {
  return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}
/** The first number among `keys` in `o`. */
function pick(o: Record<string, unknown>, keys: string[]): number | null {
  for (const k of keys) {
    const v = num(o[k]);
    if (v !== null) return v;
  }
  return null;
}

interface Figures {
  mcd: number | null;
  wer: number | null;
  f0: number | null;
}

const MCD_KEYS = ["mcd_db", "mcd"];
const WER_KEYS = ["wer"];
const F0_KEYS = ["f0_rmse_hz", "f0_rmse"];

function figuresOf(o: Record<string, unknown>): Figures {
  return { mcd: pick(o, MCD_KEYS), wer: pick(o, WER_KEYS), f0: pick(o, F0_KEYS) };
}

/** The voice's figures from models/voice/metrics.json, read defensively (its shape is still growing):
 *  {fallback: {...}, trained: {...}, real: {wer}} or the fallback's flat document. */
export function voiceFigures(metrics: unknown): { fallback: Figures | null; trained: Figures | null; realWer: number | null } | null {
  const m = rec(metrics);
  if (Object.keys(m).length === 0) return null;
  const voices = rec(m.voices);  // `dself eval voice`: {voices: {fallback, trained}, real, copy_synthesis}
  const fallbackObj = rec(voices.fallback ?? m.fallback ?? m.baseline);
  const trainedObj = rec(voices.trained ?? m.trained);
  const realObj = rec(m.real ?? m.person);
  const flatFallback = m.fallback === true || (typeof m.voice === "string" && /fallback/.test(m.voice));
  const fallback = Object.keys(fallbackObj).length > 0 ? figuresOf(fallbackObj) : flatFallback ? figuresOf(m) : null;
  const trained = Object.keys(trainedObj).length > 0 ? trainedObj : m.fallback === false ? m : null;
  return {
    fallback,
    trained: trained ? figuresOf(trained) : null,
    realWer: pick(realObj, WER_KEYS) ?? pick(m, ["real_wer", "person_wer"]),
  };
}

function show(v: number | null, unit: string, digits: number, scale = 1): string {
  return v === null ? "—" : `${(v * scale).toFixed(digits)}${unit}`;
}

function FiguresTable({ metrics }: { metrics: unknown }) {
  const f = voiceFigures(metrics);
  const hasTrained = !!f?.trained && (f.trained.mcd !== null || f.trained.wer !== null || f.trained.f0 !== null);
  return (
    <div data-testid="train-figures">
      <h3>Figures: fallback → trained</h3>
      {f && (f.fallback || f.trained) ? (
        <div className="table-wrap">
          <table className="train-figures">
            <thead>
              <tr>
                <th />
                <th>fallback voice</th>
                <th>trained voice</th>
                <th>the person</th>
              </tr>
            </thead>
            <tbody>
              <tr>
                <th title="mel-cepstral distortion to the person's real held-out recordings (lower is more like them)">MCD</th>
                <td>{show(f.fallback?.mcd ?? null, " dB", 2)}</td>
                <td>{show(f.trained?.mcd ?? null, " dB", 2)}</td>
                <td>0 dB</td>
              </tr>
              <tr>
                <th title="PocketSphinx word error rate on the held-out sentences (lower is clearer)">WER</th>
                <td>{show(f.fallback?.wer ?? null, "%", 0, 100)}</td>
                <td>{show(f.trained?.wer ?? null, "%", 0, 100)}</td>
                <td>{show(f.realWer, "%", 0, 100)}</td>
              </tr>
              <tr>
                <th title="pitch error against the person on aligned frames">F0 RMSE</th>
                <td>{show(f.fallback?.f0 ?? null, " Hz", 1)}</td>
                <td>{show(f.trained?.f0 ?? null, " Hz", 1)}</td>
                <td>0 Hz</td>
              </tr>
            </tbody>
          </table>
        </div>
      ) : null}
      {!hasTrained && (
        <p className="muted small">
          {f ? "No figures for the trained voice yet: " : "No figures yet: "}
          they appear once the voice is trained and evaluated against the stand-in voice on the held-out sentences.
        </p>
      )}
    </div>
  );
}

function Curve({ points }: { points: CurvePoint[] }) {
  if (points.length === 0) {
    return <p className="muted small" data-testid="train-curve-empty">No training curve yet: it is drawn here as the voice trains.</p>;
  }
  return (
    <LineChart
      title="Loss by step"
      xLabel="step"
      series={[
        { name: "train", points: points.map((p) => [p.step, p.train_loss] as [number, number]) },
        {
          name: "held-out",
          points: points
            .filter((p) => typeof p.held_out_loss === "number")
            .map((p) => [p.step, p.held_out_loss as number] as [number, number]),
        },
      ]}
    />
  );
}

function SamplePlayer({ samples, trained }: { samples: VoiceSamples["samples"]; trained: boolean }) {
  if (samples.length === 0) {
    return (
      <p className="muted small">
        No held-out sentences yet: prepare holds some of the person's speech out of training (on avatars with more than a
        few clips), so that the trained voice can be heard beside the real recordings it never learned from.
      </p>
    );
  }
  return (
    <ul className="samples" data-testid="voice-samples">
      {samples.map((s) => (
        <li key={`${s.source}/${s.id}`} className="sample">
          <p className="sample-text">“{s.text}”</p>
          <div className="sample-audio">
            <label>
              <span className="small muted">the person</span>
              <audio controls preload="metadata" src={withToken(s.real_url)} data-testid="real-audio" />
            </label>
            <label>
              <span className="small muted">trained voice</span>
              {trained ? (
                <audio controls preload="none" src={withToken(s.trained_url)} data-testid="trained-audio" />
              ) : (
                <span className="small muted">not trained yet</span>
              )}
            </label>
          </div>
        </li>
      ))}
    </ul>
  );
}

export function TrainPanel({
  jobs,
  onJob,
  metrics,
}: {
  jobs: Job[];
  onJob: (job: Job) => void;
  metrics: unknown;
}) {
  const [info, setInfo] = useState<VoiceSamples | null>(null);
  const [infoError, setInfoError] = useState<string | null>(null);
  const [curve, setCurve] = useState<CurvePoint[]>([]);
  const [live, setLive] = useState<CurvePoint[]>([]);
  const [actionError, setActionError] = useState<string | null>(null);

  const trainJob = jobs.filter((j) => j.kind === "train").sort((a, b) => b.id - a.id)[0];
  const training = !!trainJob && (trainJob.state === "running" || trainJob.state === "queued");
  const otherBusy = jobs.some((j) => j.kind !== "train" && (j.state === "running" || j.state === "queued"));
  const finishedKey = trainJob && !training ? `${trainJob.id}:${trainJob.state}` : "";

  // The dataset, the voice and the samples; again whenever a train job ends.
  useEffect(() => {
    getJson<VoiceSamples>("/api/voice/samples")
      .then((r) => {
        setInfo(r);
        setInfoError(null);
      })
      .catch((e) => setInfoError(message(e)));
  }, [finishedKey]);

  // The curve as saved (the model's, or the last checkpoint's while training), polled while it trains;
  // asked for only when the samples say there is one (no 404s before the first training).
  const hasCurve = info?.curve ?? false;
  useEffect(() => {
    if (!hasCurve && !training) {
      setCurve([]);
      return;
    }
    let stop = false;
    const load = () =>
      getJson<VoiceCurve>("/api/models/voice/curve")
        .then((c) => {
          if (!stop) setCurve(Array.isArray(c.points) ? c.points : []);
        })
        .catch(() => {
          if (!stop) setCurve([]);
        });
    void load();
    const timer = training ? window.setInterval(load, 5000) : 0;
    return () => {
      stop = true;
      window.clearInterval(timer);
    };
  }, [training, finishedKey, hasCurve]);

  // Between checkpoints, the points the job's progress events carry.
  const point = livePoint(training ? trainJob : undefined);
  useEffect(() => {
    if (!point) return;
    setLive((old) => {
      const last = old[old.length - 1];
      if (last && last.train_loss === point.train_loss && last.held_out_loss === point.held_out_loss) return old;
      return [...old.filter((p) => p.step < point.step), point];
    });
  }, [point?.step, point?.train_loss, point?.held_out_loss]); // eslint-disable-line react-hooks/exhaustive-deps

  const points = useMemo(() => {
    const saved = curve;
    const lastSaved = saved.length > 0 ? saved[saved.length - 1].step : -1;
    return [...saved, ...live.filter((p) => p.step > lastSaved)];
  }, [curve, live]);

  async function start() {
    setActionError(null);
    setLive([]);
    try {
      const r = await postJson<{ job: Job }>("/api/jobs", { kind: "train", model: "voice" });
      onJob(r.job);
    } catch (e) {
      setActionError(message(e));
    }
  }
  async function stop() {
    if (!trainJob) return;
    setActionError(null);
    try {
      const r = await postJson<{ job: Job }>(`/api/jobs/${trainJob.id}/stop`, {});
      onJob(r.job);
    } catch (e) {
      setActionError(message(e));
    }
  }

  const ready = info?.speech.ready ?? false;
  const p = trainJob?.progress;
  return (
    <div className="card wide" data-testid="train">
      <div className="card-head">
        <h2>Train</h2>
        <span className={`badge ${info?.voice.trained ? "badge-done" : ""}`} data-testid="voice-name">
          {info ? info.voice.name : "voice…"}
        </span>
      </div>
      {infoError && <p className="error">{infoError}</p>}
      {info && (
        <p className="small muted" data-testid="train-readiness">
          {ready
            ? `${(info.speech.train_s / 60).toFixed(1)} minutes of the person's speech to train on, ${(info.speech.held_out_s / 60).toFixed(1)} held out.`
            : info.speech.waiting_for}
          {info.voice.state === "stale" && <> The trained voice is stale: {info.voice.why}</>}
        </p>
      )}
      <div className="actions">
        {training ? (
          <button className="btn btn-secondary" onClick={stop} data-testid="train-stop">
            Stop (checkpoint)
          </button>
        ) : (
          <button
            className="btn btn-primary"
            disabled={!ready || otherBusy}
            title={!ready ? info?.speech.waiting_for : otherBusy ? "another job is running" : undefined}
            onClick={start}
            data-testid="train-start"
          >
            {trainJob?.state === "interrupted" ? "Resume training" : info?.voice.trained ? "Train again" : "Train the voice"}
          </button>
        )}
        {training && p && p.total > 0 && (
          <span className="count small">
            step {p.done}/{p.total}
          </span>
        )}
        {trainJob && !training && trainJob.state !== "done" && trainJob.error && (
          <span className="error small">{trainJob.error}</span>
        )}
      </div>
      {actionError && <p className="error">{actionError}</p>}
      <div className="train-grid">
        <div>
          <Curve points={points} />
        </div>
        <FiguresTable metrics={metrics} />
      </div>
      <h3>Held-out sentences</h3>
      <p className="small muted">The person's real recordings, which the voice never trained on, beside the trained voice saying the same text.</p>
      {info && <SamplePlayer samples={info.samples} trained={info.voice.trained} />}
    </div>
  );
}
