// Studio: bring videos in, run the pipeline and watch its jobs, read the prepare report and the
// models' metrics, and make a video with `say`.

import { useCallback, useEffect, useRef, useState } from "react";
import {
  ApiError,
  clock,
  getJson,
  postJson,
  uploadFile,
  withToken,
  type Job,
  type Metrics,
  type SayResult,
  type StageRow,
  type Status,
} from "./api";
import { ModelMetrics } from "./Models";
import { TrainPanel } from "./Train";
import { formatNumber } from "./plots";

const STATE_ORDER: Record<string, number> = { queued: 0, running: 1, done: 2, failed: 2, interrupted: 2 };
const PREPARE_STAGES = ["prepare.audio", "prepare.transcript", "prepare.speech", "prepare.face"];

function message(e: unknown): string {
  return e instanceof ApiError || e instanceof Error ? e.message : String(e);
}

export function Studio() {
  const [status, setStatus] = useState<Status | null>(null);
  const [statusError, setStatusError] = useState<string | null>(null);
  const [metrics, setMetrics] = useState<Metrics | null>(null);
  const [metricsError, setMetricsError] = useState<string | null>(null);
  const [jobs, setJobs] = useState<Map<number, Job>>(new Map());
  const [reportReady, setReportReady] = useState<boolean | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);

  const refresh = useCallback(() => {
    getJson<Status>("/api/status")
      .then((s) => {
        setStatus(s);
        setStatusError(null);
      })
      .catch((e) => setStatusError(message(e)));
    getJson<Metrics>("/api/metrics")
      .then((m) => {
        setMetrics(m);
        setMetricsError(null);
      })
      .catch((e) => setMetricsError(message(e)));
    fetch("/api/report", { headers: authHeaders() })
      .then((r) => setReportReady(r.ok))
      .catch(() => setReportReady(false));
  }, []);

  const upsertJob = useCallback((job: Job) => {
    setJobs((old) => {
      const next = new Map(old);
      const before = old.get(job.id);
      // A POST's answer can arrive after the events that followed it: a job never goes back.
      if (before && STATE_ORDER[before.state] > STATE_ORDER[job.state]) return old;
      next.set(job.id, { ...before, ...job, log: job.log ?? before?.log });
      return next;
    });
  }, []);

  useEffect(() => {
    refresh();
    getJson<{ jobs: Job[] }>("/api/jobs")
      .then((r) => r.jobs.forEach(upsertJob))
      .catch(() => undefined);
    const events = new EventSource(withToken("/api/events"));
    events.addEventListener("job", (e) => {
      try {
        upsertJob(JSON.parse((e as MessageEvent).data) as Job);
      } catch {
        // a malformed event: ignore it, the next one carries the whole job again
      }
    });
    return () => events.close();
  }, [refresh, upsertJob]);

  // When a job finishes, what it made shows up in the status, the metrics and the report.
  const finished = [...jobs.values()].filter((j) => j.state === "done" || j.state === "failed" || j.state === "interrupted").length;
  useEffect(() => {
    if (finished > 0) refresh();
  }, [finished, refresh]);

  const running = [...jobs.values()].some((j) => j.state === "running" || j.state === "queued");

  async function startJob(kind: "prepare" | "report") {
    setActionError(null);
    try {
      const r = await postJson<{ job: Job }>("/api/jobs", { kind });
      upsertJob(r.job);
    } catch (e) {
      setActionError(message(e));
    }
  }

  const jobList = [...jobs.values()].sort((a, b) => b.id - a.id);

  return (
    <section className="studio">
      <header className="studio-head">
        <div>
          <h1>Studio</h1>
          <p className="muted">{status ? status.avatar : statusError ? statusError : "loading…"}</p>
        </div>
        {status?.totals && (
          <dl className="totals">
            <div>
              <dt>sources</dt>
              <dd>{status.totals.sources}</dd>
            </div>
            <div>
              <dt>video</dt>
              <dd>{clock(status.totals.video_hours * 3600)}</dd>
            </div>
            <div>
              <dt>captions</dt>
              <dd>{status.totals.captions}</dd>
            </div>
            <div>
              <dt>size</dt>
              <dd>{(status.totals.bytes / 1048576).toFixed(1)} MB</dd>
            </div>
          </dl>
        )}
      </header>

      <div className="grid">
        <div className="card" data-testid="pipeline">
          <h2>Pipeline</h2>
          <Stages status={status} />
          <div className="actions">
            <button className="btn btn-primary" disabled={running} onClick={() => startJob("prepare")}>
              Run prepare
            </button>
            <button className="btn btn-secondary" disabled={running} onClick={() => startJob("report")}>
              Build report
            </button>
            {reportReady ? (
              <a className="btn btn-link" href={withToken("/api/report")} target="_blank" rel="noreferrer">
                Open the prepare report ↗
              </a>
            ) : (
              <span className="muted small">{reportReady === false ? "No report yet: build it." : ""}</span>
            )}
          </div>
          {actionError && <p className="error">{actionError}</p>}
        </div>

        <div className="card" data-testid="jobs">
          <h2>Jobs</h2>
          {jobList.length === 0 ? (
            <CatalogJobs status={status} />
          ) : (
            <ul className="jobs">
              {jobList.map((j) => (
                <JobRow key={j.id} job={j} onLog={upsertJob} />
              ))}
            </ul>
          )}
        </div>

        <AddSources onJob={upsertJob} />

        <SayBox />

        <TrainPanel jobs={jobList} onJob={upsertJob} metrics={metrics?.models?.voice} />

        <div className="card wide" data-testid="metrics">
          <h2>Models</h2>
          <ModelMetrics metrics={metrics} error={metricsError} />
        </div>

        <div className="card wide">
          <h2>Sources</h2>
          <SourcesTable status={status} />
        </div>
      </div>
    </section>
  );
}

function authHeaders(): Record<string, string> {
  const t = new URLSearchParams(window.location.search).get("token");
  return t ? { Authorization: `Bearer ${t}` } : {};
}

function AddSources({ onJob }: { onJob: (job: Job) => void }) {
  const [url, setUrl] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [uploads, setUploads] = useState<{ name: string; share: number; error?: string }[]>([]);
  const fileRef = useRef<HTMLInputElement>(null);

  async function addUrl(e: React.FormEvent) {
    e.preventDefault();
    setError(null);
    try {
      const parsed = new URL(url.trim());
      if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new Error("use an http(s) URL");
    } catch {
      setError("Enter a video or playlist URL starting with http:// or https://");
      return;
    }
    try {
      const r = await postJson<{ job: Job }>("/api/sources", { url: url.trim() });
      onJob(r.job);
      setUrl("");
    } catch (err) {
      setError(message(err));
    }
  }

  async function upload(files: FileList | null) {
    if (!files) return;
    const list = Array.from(files);
    const base = uploads.length;
    setUploads((u) => [...u, ...list.map((f) => ({ name: f.name, share: 0 }))]);
    for (const [k, file] of list.entries()) {
      const index = base + k;
      const set = (change: Partial<{ share: number; error: string }>) =>
        setUploads((u) => u.map((x, i) => (i === index ? { ...x, ...change } : x)));
      // One job runs at a time: an upload answered 409 waits for the running job and goes again.
      for (let attempt = 0; ; attempt++) {
        try {
          const r = await uploadFile(file, (share) => set({ share, error: undefined }));
          set({ share: 1 });
          onJob(r.job);
          break;
        } catch (err) {
          if (err instanceof ApiError && err.status === 409 && attempt < 300) {
            set({ share: 0, error: "waiting for the running job…" });
            await new Promise((resolve) => setTimeout(resolve, 2000));
            continue;
          }
          set({ error: message(err) });
          break;
        }
      }
    }
    if (fileRef.current) fileRef.current.value = "";
  }

  return (
    <div className="card" data-testid="add-sources">
      <h2>Add videos</h2>
      <form className="row" onSubmit={addUrl}>
        <input
          type="url"
          placeholder="https://www.youtube.com/playlist?list=…"
          aria-label="Video or playlist URL"
          value={url}
          onChange={(e) => setUrl(e.target.value)}
        />
        <button className="btn btn-primary" type="submit" disabled={!url.trim()}>
          Add
        </button>
      </form>
      <label className="dropzone">
        <input ref={fileRef} type="file" accept="video/*,.mkv,.webm" multiple onChange={(e) => upload(e.target.files)} />
        <span>
          <strong>Upload videos</strong> from this computer
        </span>
      </label>
      {uploads.length > 0 && (
        <ul className="uploads">
          {uploads.map((u, i) => (
            <li key={i}>
              <span className="name">{u.name}</span>
              {u.error ? (
                <span className={u.error.startsWith("waiting") ? "muted small" : "error small"}>{u.error}</span>
              ) : (
                <Progress done={u.share} total={1} />
              )}
            </li>
          ))}
        </ul>
      )}
      {error && <p className="error">{error}</p>}
    </div>
  );
}

export function Progress({ done, total, label }: { done: number; total: number; label?: string }) {
  const share = total > 0 ? Math.max(0, Math.min(1, done / total)) : 0;
  return (
    <div className="progress" role="progressbar" aria-valuemin={0} aria-valuemax={total} aria-valuenow={done} aria-label={label}>
      <div className="bar" style={{ width: `${(share * 100).toFixed(1)}%` }} />
    </div>
  );
}

function stageTitle(stage: string): string {
  const [group, name] = stage.split(".");
  return name ? `${name}` : group;
}

/** Sums a stage's per-source summaries: counts add up, shares average; times are left out. */
function summarize(rows: StageRow[]): { name: string; value: string }[] {
  const sums = new Map<string, { sum: number; n: number }>();
  const texts = new Map<string, Set<string>>();
  for (const r of rows) {
    for (const [k, v] of Object.entries(r.summary ?? {})) {
      if (k === "elapsed_s") continue;
      if (typeof v === "number") {
        const s = sums.get(k) ?? { sum: 0, n: 0 };
        s.sum += v;
        s.n += 1;
        sums.set(k, s);
      } else if (typeof v === "string") {
        if (!texts.has(k)) texts.set(k, new Set());
        texts.get(k)!.add(v);
      }
    }
  }
  const out: { name: string; value: string }[] = [];
  for (const [k, s] of sums) {
    const v = k.endsWith("share") ? s.sum / s.n : s.sum;
    let value = k.endsWith("share") ? `${(v * 100).toFixed(1)}%` : k.endsWith("_s") ? `${v.toFixed(1)} s` : formatNumber(v);
    if (k.endsWith("_s") && v >= 60) value = clock(v);
    out.push({ name: k.replace(/_s$/, "").replace(/_/g, " "), value });
  }
  for (const [k, set] of texts) out.push({ name: k.replace(/_/g, " "), value: [...set].join(", ") });
  return out.slice(0, 6);
}

function Stages({ status }: { status: Status | null }) {
  if (!status) return <p className="muted">loading…</p>;
  const nSources = status.sources.length;
  const byStage = new Map<string, StageRow[]>();
  for (const s of status.stages) {
    if (!byStage.has(s.stage)) byStage.set(s.stage, []);
    byStage.get(s.stage)!.push(s);
  }
  const names = [...PREPARE_STAGES, ...[...byStage.keys()].filter((k) => !PREPARE_STAGES.includes(k)).sort()];
  return (
    <ol className="stages" data-testid="stages">
      <li className="stage-row">
        <div className="stage-name">
          <span className="dot done" />
          ingest
        </div>
        <Progress done={nSources} total={Math.max(nSources, 1)} label="ingest" />
        <span className="count">
          {nSources} source{nSources === 1 ? "" : "s"}
        </span>
      </li>
      {names.map((name) => {
        const rows = byStage.get(name) ?? [];
        const perSource = rows.some((r) => r.source_id !== null && r.source_id !== undefined);
        const done = perSource ? new Set(rows.map((r) => r.source_id)).size : rows.length > 0 ? 1 : 0;
        const total = perSource || name.startsWith("prepare.") ? nSources : 1;
        const complete = total > 0 && done >= total;
        return (
          <li key={name} className="stage-row" data-stage={name}>
            <div className="stage-name">
              <span className={`dot ${complete ? "done" : done > 0 ? "partial" : ""}`} />
              {stageTitle(name)}
            </div>
            <Progress done={done} total={Math.max(total, 1)} label={name} />
            <span className="count">
              {done}/{total}
            </span>
            {rows.length > 0 && (
              <div className="stage-summary">
                {summarize(rows).map((s) => (
                  <span key={s.name}>
                    {s.name} <b>{s.value}</b>
                  </span>
                ))}
              </div>
            )}
          </li>
        );
      })}
    </ol>
  );
}

function JobRow({ job, onLog }: { job: Job; onLog: (job: Job) => void }) {
  const [open, setOpen] = useState(false);
  const logRef = useRef<HTMLPreElement>(null);
  const active = job.state === "running" || job.state === "queued";

  useEffect(() => {
    if (!open) return;
    let stop = false;
    const load = () =>
      getJson<{ job: Job }>(`/api/jobs/${job.id}`)
        .then((r) => {
          if (!stop) onLog(r.job);
        })
        .catch(() => undefined);
    void load();
    const timer = active ? window.setInterval(load, 1000) : 0;
    return () => {
      stop = true;
      window.clearInterval(timer);
    };
  }, [open, active, job.id, onLog]);

  useEffect(() => {
    if (logRef.current) logRef.current.scrollTop = logRef.current.scrollHeight;
  }, [job.log]);

  const p = job.progress;
  return (
    <li className={`job job-${job.state}`}>
      <button className="job-head" onClick={() => setOpen(!open)} aria-expanded={open}>
        <span className="job-kind">
          #{job.id} {job.kind}
        </span>
        <span className={`badge badge-${job.state}`}>{job.state}</span>
        <span className="chev">{open ? "▾" : "▸"}</span>
      </button>
      {p && p.total > 0 ? (
        <div className="job-progress">
          <Progress done={p.done} total={p.total} label={`job ${job.id}`} />
          <span className="count">
            {p.done}/{p.total}
            {p.label ? ` · ${p.label}` : ""}
          </span>
        </div>
      ) : active ? (
        <div className="job-progress">
          <div className="progress indeterminate">
            <div className="bar" />
          </div>
          <span className="count">{p?.label ?? ""}</span>
        </div>
      ) : null}
      {job.error && <p className="error small">{job.error}</p>}
      {open && (
        <pre className="log" ref={logRef}>
          {job.log && job.log.length > 0 ? job.log.join("\n") : "(no log yet)"}
        </pre>
      )}
    </li>
  );
}

function CatalogJobs({ status }: { status: Status | null }) {
  const jobs = status?.jobs ?? [];
  if (jobs.length === 0) return <p className="muted">No jobs yet.</p>;
  return (
    <>
      <p className="muted small">Earlier runs recorded in the catalog:</p>
      <ul className="jobs">
        {jobs.slice(0, 8).map((j) => (
          <li key={j.id} className={`job job-${j.state}`}>
            <div className="job-head static">
              <span className="job-kind">
                #{j.id} {j.command}
              </span>
              <span className={`badge badge-${j.state}`}>{j.state}</span>
            </div>
            {j.message && <p className="muted small">{j.message}</p>}
          </li>
        ))}
      </ul>
    </>
  );
}

function SayBox() {
  const [text, setText] = useState("");
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<SayResult | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function say(e: React.FormEvent) {
    e.preventDefault();
    if (!text.trim()) return;
    setBusy(true);
    setError(null);
    setResult(null);
    try {
      setResult(await postJson<SayResult>("/api/say", { text: text.trim() }));
    } catch (err) {
      setError(message(err));
    } finally {
      setBusy(false);
    }
  }

  const href = result ? withToken(result.video) : "";
  return (
    <div className="card" data-testid="say">
      <h2>Say</h2>
      <form onSubmit={say}>
        <textarea
          rows={3}
          maxLength={4000}
          placeholder="Text for the avatar to say in a video…"
          aria-label="Text to say"
          value={text}
          onChange={(e) => setText(e.target.value)}
        />
        <div className="actions">
          <button className="btn btn-primary" type="submit" disabled={busy || !text.trim()}>
            {busy ? "Rendering…" : "Make the video"}
          </button>
          {result && (
            <a className="btn btn-link" href={href} download>
              Download MP4
            </a>
          )}
        </div>
      </form>
      {busy && (
        <div className="progress indeterminate">
          <div className="bar" />
        </div>
      )}
      {result && (
        <>
          <video className="say-video" src={href} controls playsInline />
          <p className="muted small">
            {result.duration_s !== undefined && <>{result.duration_s.toFixed(1)} s</>}
            {result.sentences !== undefined && <> · {result.sentences} sentences</>}
            {result.voice && <> · voice {result.voice}</>} · labelled synthetic in its metadata
          </p>
        </>
      )}
      {error && <p className="error">{error}</p>}
    </div>
  );
}

function SourcesTable({ status }: { status: Status | null }) {
  if (!status) return <p className="muted">loading…</p>;
  if (status.sources.length === 0) return <p className="muted">No videos yet: add a playlist URL or upload files.</p>;
  return (
    <div className="table-wrap">
      <table className="sources-table">
        <thead>
          <tr>
            <th>#</th>
            <th>title</th>
            <th>kind</th>
            <th>length</th>
            <th>video</th>
            <th>captions</th>
          </tr>
        </thead>
        <tbody>
          {status.sources.map((s) => {
            const video = s.files.find((f) => f.role === "video");
            const captions = s.files.filter((f) => f.role === "captions").length;
            return (
              <tr key={s.id}>
                <td>{s.id}</td>
                <td className="title" title={s.origin}>
                  {s.title}
                </td>
                <td>{s.kind}</td>
                <td>{clock(s.duration_s)}</td>
                <td>{video ? `${video.width}×${video.height} ${Math.round(video.fps)} fps` : "—"}</td>
                <td>{captions > 0 ? "yes" : "no"}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
