// Studio: bring videos in, run the pipeline and watch its jobs, read the prepare report and the
// models' metrics, and make a video with `say`.

import { useCallback, useEffect, useRef, useState } from "react";
import {
  ApiError,
  clock,
  DuplicateUpload,
  getJson,
  postJson,
  readiness,
  uploadFile,
  withToken,
  type Job,
  type Metrics,
  type Render,
  type SayResult,
  type StageRow,
  type Status,
  type VoiceSamples,
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
  const [actionError, setActionError] = useState<string | null>(null);

  const refresh = useCallback(() => {
    getJson<Status>("/api/status")
      .then((s) => {
        setStatus(s);
        setStatusError(null);
      })
      .catch((e) => setStatusError(message(e)));
    // The metrics say whether a report exists: the page is not asked for before there is one.
    getJson<Metrics>("/api/metrics")
      .then((m) => {
        setMetrics(m);
        setMetricsError(null);
      })
      .catch((e) => setMetricsError(message(e)));
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
    const loadJobs = () =>
      getJson<{ jobs: Job[] }>("/api/jobs")
        .then((r) => r.jobs.forEach(upsertJob))
        .catch(() => undefined);
    void loadJobs();
    const events = new EventSource(withToken("/api/events"));
    // The stream reconnects by itself; when it does (a restarted server), everything is read again.
    let lost = false;
    events.onerror = () => {
      lost = true;
      getJson("/api/status").catch(() => undefined);
    };
    events.onopen = () => {
      if (!lost) return;
      lost = false;
      refresh();
      void loadJobs();
    };
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

  // While a job runs, each new step it starts may have finished one for a source: the stage bars
  // follow (the status is read again whenever the running job's step changes).
  const step = [...jobs.values()]
    .filter((j) => j.state === "running")
    .map((j) => `${j.id}:${j.progress?.label ?? ""}`)
    .join(",");
  useEffect(() => {
    if (step) refresh();
  }, [step, refresh]);

  const ready = status ? readiness(status) : null;
  const reportReady = metrics?.report?.ready ?? false;
  const [rendersVersion, setRendersVersion] = useState(0);

  async function startJob(kind: "prepare" | "report" | "train") {
    setActionError(null);
    try {
      const r = await postJson<{ job: Job }>("/api/jobs", kind === "train" ? { kind, model: "voice" } : { kind });
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

      <GuidedSteps
        status={status}
        jobs={jobList}
        running={running}
        reportReady={reportReady}
        onStart={startJob}
      />
      {actionError && <p className="error">{actionError}</p>}

      <div className="grid">
        <div className="card" data-testid="pipeline">
          <h2>Pipeline</h2>
          <Stages status={status} />
          <div className="actions">
            <button
              className="btn btn-primary"
              disabled={running || !ready || ready.sources === 0}
              onClick={() => startJob("prepare")}
              title={ready && ready.sources === 0 ? "Add videos first" : undefined}
            >
              Run prepare
            </button>
            <button className="btn btn-secondary" disabled={running || !ready || ready.sources === 0} onClick={() => startJob("report")}>
              Build report
            </button>
            {reportReady ? (
              <a className="btn btn-link" href={withToken("/api/report")} data-testid="report-link">
                Open the prepare report
              </a>
            ) : (
              <span className="muted small">
                {ready && ready.sources === 0 ? "Add videos first: prepare needs them." : "No report yet: prepare writes it."}
              </span>
            )}
          </div>
        </div>

        <div className="card" data-testid="jobs">
          <h2>Jobs</h2>
          {jobList.length === 0 ? (
            <CatalogJobs status={status} />
          ) : (
            <ul className="jobs">
              {jobList.map((j) => (
                <JobRow key={j.id} job={j} onLog={upsertJob} latest={j.id === jobList[0]?.id} reportReady={reportReady} />
              ))}
            </ul>
          )}
        </div>

        <AddSources onJob={upsertJob} status={status} />

        <SayBox ready={ready?.ready ?? false} version={rendersVersion} onRendered={() => setRendersVersion((v) => v + 1)} />

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

type StepState = "done" | "ready" | "running" | "waiting";

interface StepInfo {
  key: string;
  title: string;
  state: StepState;
  /** What it did, or what it waits for. */
  note: string;
  action?: { label: string; run: () => void; disabled?: boolean };
  link?: { label: string; href: string };
}

/**
 * The avatar's way from empty to talking, one step after the other: add videos → prepare →
 * train the voice → talk. Each step can be started only when it can run, and says what it waits for.
 */
function GuidedSteps({
  status,
  jobs,
  running,
  reportReady,
  onStart,
}: {
  status: Status | null;
  jobs: Job[];
  running: boolean;
  reportReady: boolean;
  onStart: (kind: "prepare" | "report" | "train") => void;
}) {
  // How much of the person's speech there is to train the voice on (what the Train panel shows).
  const [voiceSpeech, setVoiceSpeech] = useState<VoiceSamples["speech"] | null>(null);
  const stagesKey = status ? status.stages.length : -1;
  useEffect(() => {
    if (stagesKey < 0) return;
    getJson<VoiceSamples>("/api/voice/samples")
      .then((v) => setVoiceSpeech(v.speech))
      .catch(() => undefined);
  }, [stagesKey]);
  if (!status) return null;
  const r = readiness(status);
  const speech = voiceSpeech;
  const active = (kind: string) => jobs.find((j) => j.kind === kind && (j.state === "running" || j.state === "queued"));
  const voiceState = status.trained?.voice?.state ?? "none";  // none, current, stale, broken
  const trained = voiceState === "current";
  const busyNote = running ? " (after the job that is running)" : "";
  const scrollTo = (testid: string) =>
    document.querySelector(`[data-testid=${testid}]`)?.scrollIntoView({ behavior: "smooth", block: "start" });

  const steps: StepInfo[] = [
    {
      key: "videos",
      title: "Add videos",
      state: active("ingest") ? "running" : r.sources > 0 ? "done" : "ready",
      note:
        r.sources > 0
          ? `${r.sources} video${r.sources === 1 ? "" : "s"} of the person`
          : "Upload videos of the person (with their .vtt or .srt captions if you have them), or give a playlist URL.",
      action: r.sources === 0 ? { label: "Add videos", run: () => scrollTo("add-sources") } : undefined,
    },
    {
      key: "prepare",
      title: "Prepare",
      state: active("prepare")
        ? "running"
        : r.sources === 0
          ? "waiting"
          : r.prepared >= r.sources
            ? "done"
            : "ready",
      note:
        r.sources === 0
          ? "Waits for videos."
          : r.prepared >= r.sources
            ? `${r.prepared} of ${r.sources} prepared: transcripts, speech and face tracks.`
            : `${r.prepared} of ${r.sources} prepared: finds the speech and the face in each video${busyNote}.`,
      action:
        r.sources > 0 && r.prepared < r.sources
          ? { label: "Prepare", run: () => onStart("prepare"), disabled: running }
          : undefined,
      link: reportReady ? { label: "Open the report", href: withToken("/api/report") } : undefined,
    },
    {
      key: "train",
      title: "Train the voice",
      state: active("train") ? "running" : trained ? "done" : !r.ready || !speech?.ready ? "waiting" : "ready",
      note: !r.ready
        ? "Waits for prepare. Optional: until it is trained, the avatar speaks with a stand-in voice."
        : trained
          ? "The avatar speaks with the person's own voice."
          : speech && !speech.ready
            ? `Optional: a stand-in voice speaks until then. Waits for more speech: ${speech.waiting_for ?? "add videos and prepare them"}.`
            : voiceState === "stale"
              ? "The voice was trained on other videos: train it again to include the new ones."
              : "Optional: until then a stand-in voice speaks.",
      action: r.ready && speech?.ready && !trained ? { label: "Go to training", run: () => scrollTo("train") } : undefined,
    },
    {
      key: "talk",
      title: "Talk",
      state: r.ready ? "ready" : "waiting",
      note: r.ready ? "Ask the avatar something, or make a video with Say." : "Waits for a prepared video.",
      link: r.ready ? { label: "Talk to the avatar", href: "#/talk" } : undefined,
    },
  ];

  return (
    <ol className="guided" data-testid="guided-steps">
      {steps.map((step, i) => (
        <li key={step.key} className={`guided-step guided-${step.state}`} data-step={step.key} data-state={step.state}>
          <span className="guided-number">{step.state === "done" ? "✓" : i + 1}</span>
          <div className="guided-body">
            <b>{step.title}</b>
            <span className="small muted">{step.state === "running" ? "running… " : ""}{step.note}</span>
            <div className="guided-actions">
              {step.action && (
                <button
                  type="button"
                  className="btn btn-primary btn-small"
                  disabled={step.action.disabled}
                  onClick={step.action.run}
                  data-testid={`step-${step.key}`}
                >
                  {step.action.label}
                </button>
              )}
              {step.link && (
                <a className="btn btn-link btn-small" href={step.link.href} data-testid={`step-${step.key}-link`}>
                  {step.link.label}
                </a>
              )}
            </div>
          </div>
        </li>
      ))}
    </ol>
  );
}

const CAPTION_EXTENSIONS = [".vtt", ".srt"];
const VIDEO_EXTENSIONS = [".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".wmv", ".flv", ".3gp", ".ogv"];

function extensionOf(name: string): string {
  const dot = name.lastIndexOf(".");
  return dot < 0 ? "" : name.slice(dot).toLowerCase();
}

/** The video a captions file belongs to, as the server matches them: "talk.en.vtt" -> "talk". */
function captionsStem(name: string): string {
  let stem = name.slice(0, name.length - extensionOf(name).length);
  const language = extensionOf(stem);
  if (language === ".en" || language.startsWith(".en-") || language.startsWith(".en_")) stem = stem.slice(0, stem.length - language.length);
  return stem;
}

interface UploadRow {
  name: string;
  kind: "video" | "captions";
  share: number;
  /** Videos: where their transcript will come from. Captions: the video they go with. */
  note: string;
  state: "waiting" | "uploading" | "stored" | "duplicate" | "failed";
  error?: string;
}

/**
 * Several files at once: videos and their captions (paired by name) are uploaded, and then all of
 * them become one ingest job. What each video's transcript will come from is said before it goes.
 */
function planUploads(files: File[]): { rows: UploadRow[]; order: File[] } {
  const videos = files.filter((f) => !CAPTION_EXTENSIONS.includes(extensionOf(f.name)));
  const captions = files.filter((f) => CAPTION_EXTENSIONS.includes(extensionOf(f.name)));
  const stem = (n: string) => n.slice(0, n.length - extensionOf(n).length);
  const rows: UploadRow[] = [];
  for (const v of videos) {
    const own = captions.filter((c) => captionsStem(c.name) === stem(v.name));
    const supported = VIDEO_EXTENSIONS.includes(extensionOf(v.name));
    rows.push({
      name: v.name,
      kind: "video",
      share: 0,
      note: !supported ? "" : own.length > 0 ? `transcript from its captions (${own[0].name})` : "transcript by speech recognition (no captions given)",
      state: supported ? "waiting" : "failed",
      error: supported ? undefined : `${v.name}: not a video dself can read (.mp4, .mkv, .webm, .mov, ...) nor captions (.vtt, .srt)`,
    });
  }
  for (const c of captions) {
    const video = videos.find((v) => stem(v.name) === captionsStem(c.name));
    rows.push({
      name: c.name,
      kind: "captions",
      share: 0,
      note: video ? `captions of ${video.name}` : "",
      state: video ? "waiting" : "failed",
      error: video ? undefined : `${c.name}: no video named ${captionsStem(c.name)}.* is among the files; add the video with its captions`,
    });
  }
  const byName = new Map(files.map((f) => [f.name, f]));
  return { rows, order: rows.map((r) => byName.get(r.name)!) };
}

function AddSources({ onJob, status }: { onJob: (job: Job) => void; status: Status | null }) {
  const [url, setUrl] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [uploads, setUploads] = useState<UploadRow[]>([]);
  const [batchNote, setBatchNote] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const fileRef = useRef<HTMLInputElement>(null);
  const [dragging, setDragging] = useState(false);
  const empty = status !== null && status.sources.length === 0;

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
    if (!files || files.length === 0) return;
    const { rows, order } = planUploads(Array.from(files));
    setUploads(rows);
    setBatchNote(null);
    setBusy(true);
    const set = (index: number, change: Partial<UploadRow>) =>
      setUploads((u) => u.map((x, i) => (i === index ? { ...x, ...change } : x)));
    const stored: string[] = [];
    let duplicates = 0;
    for (const [index, file] of order.entries()) {
      if (rows[index].state === "failed") continue;
      set(index, { state: "uploading" });
      try {
        const answer = await uploadFile(file, (share) => set(index, { share }), { ingest: false });
        set(index, { share: 1, state: "stored" });
        if (answer.kind === "video") stored.push(answer.file);
      } catch (err) {
        if (err instanceof DuplicateUpload) {
          duplicates++;
          set(index, { state: "duplicate", error: err.message, note: "" });
        } else {
          set(index, { state: "failed", error: message(err), note: "" });
        }
      }
    }
    if (fileRef.current) fileRef.current.value = "";
    // Every stored video (and the captions beside it) in one ingest job; when another job is
    // running, it waits for that one.
    if (stored.length > 0) {
      for (let attempt = 0; ; attempt++) {
        try {
          const r = await postJson<{ job: Job }>("/api/jobs", { kind: "ingest", sources: stored });
          onJob(r.job);
          setBatchNote(`${stored.length} video${stored.length === 1 ? "" : "s"} added as one job (#${r.job.id}).`);
          break;
        } catch (err) {
          if (err instanceof ApiError && err.status === 409 && attempt < 300) {
            setBatchNote("Stored; waiting for the running job to finish before adding them…");
            await new Promise((resolve) => setTimeout(resolve, 2000));
            continue;
          }
          setBatchNote(`Stored, but not added: ${message(err)}`);
          break;
        }
      }
    } else if (duplicates > 0) {
      setBatchNote("Nothing new: the avatar already has these videos.");
    }
    setBusy(false);
  }

  return (
    <div className={`card${empty ? " card-highlight" : ""}`} data-testid="add-sources">
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
      <label
        className={`dropzone${dragging ? " dragging" : ""}`}
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          // Files dropped together go as one batch, like files picked together.
          e.preventDefault();
          setDragging(false);
          if (!busy) void upload(e.dataTransfer.files);
        }}
      >
        <input
          ref={fileRef}
          type="file"
          accept={`video/*,${VIDEO_EXTENSIONS.join(",")},${CAPTION_EXTENSIONS.join(",")}`}
          multiple
          disabled={busy}
          data-testid="upload-input"
          onChange={(e) => upload(e.target.files)}
        />
        <span>
          <strong>Upload videos</strong> (or drop them here) from this computer, with their captions (<code>.vtt</code>, <code>.srt</code>,
          same name as the video) if you have them
        </span>
      </label>
      {uploads.length > 0 && (
        <ul className="uploads" data-testid="uploads">
          {uploads.map((u) => (
            <li key={u.name} data-state={u.state}>
              <span className="name">{u.name}</span>
              {u.note && <span className="muted small upload-note">{u.note}</span>}
              {u.error ? (
                <span className={u.state === "duplicate" ? "notice-inline small" : "error small"}>{u.error}</span>
              ) : u.state === "stored" ? (
                <span className="small ok">stored</span>
              ) : (
                <Progress done={u.share} total={1} label={u.name} />
              )}
            </li>
          ))}
        </ul>
      )}
      {batchNote && (
        <p className="small" data-testid="upload-summary">
          {batchNote}
        </p>
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
          <span className={`dot ${nSources > 0 ? "done" : ""}`} />
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

/** "about 3 min left" from seconds. */
function timeLeft(seconds: number): string {
  if (seconds < 60) return `about ${Math.max(5, Math.round(seconds / 5) * 5)} s left`;
  if (seconds < 3600) return `about ${Math.round(seconds / 60)} min left`;
  return `about ${(seconds / 3600).toFixed(1)} h left`;
}

/** What to do once a job of this kind has finished well. */
function NextStep({ job, reportReady }: { job: Job; reportReady: boolean }) {
  if (job.state !== "done") return null;
  let body: React.ReactNode = null;
  if (job.kind === "ingest") body = <>Next: <b>prepare</b> the new videos (the first step above).</>;
  else if (job.kind === "prepare")
    body = (
      <>
        Next:{" "}
        {reportReady && (
          <>
            <a href={withToken("/api/report")} data-testid="next-report">read the report</a>,{" "}
          </>
        )}
        <a href="#/talk">talk to the avatar</a>, or train its voice.
      </>
    );
  else if (job.kind === "train") body = <>Next: <a href="#/talk">talk to the avatar</a> with its own voice.</>;
  else if (job.kind === "report" && reportReady)
    body = (
      <>
        Next: <a href={withToken("/api/report")}>read the report</a>.
      </>
    );
  return body ? <p className="small next-step" data-testid="next-step">{body}</p> : null;
}

function JobRow({ job, onLog, latest, reportReady }: { job: Job; onLog: (job: Job) => void; latest: boolean; reportReady: boolean }) {
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
  const share = p && p.share !== undefined && p.share >= 0 ? p.share : null;
  return (
    <li className={`job job-${job.state}`} data-job={job.id}>
      <button className="job-head" onClick={() => setOpen(!open)} aria-expanded={open}>
        <span className="job-kind">
          #{job.id} {job.kind}
        </span>
        <span className={`badge badge-${job.state}`}>{job.state}</span>
        <span className="chev">{open ? "▾" : "▸"}</span>
      </button>
      {active && share !== null ? (
        // The whole job's share: one bar that does not start again at each step.
        <div className="job-progress" data-testid="job-progress">
          <Progress done={share} total={1} label={`job ${job.id}`} />
          <span className="count">
            {Math.floor(share * 100)}%
            {p?.eta_s !== undefined && p.eta_s > 0 ? ` · ${timeLeft(p.eta_s)}` : ""}
            {p?.label ? ` · ${p.label}` : ""}
            {p && p.total > 0 ? ` ${p.done}/${p.total}` : ""}
          </span>
        </div>
      ) : active && p && p.total > 0 ? (
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
      {latest && <NextStep job={job} reportReady={reportReady} />}
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

function SayBox({ ready, version, onRendered }: { ready: boolean; version: number; onRendered: () => void }) {
  const [text, setText] = useState("");
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<SayResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [renders, setRenders] = useState<Render[]>([]);

  // Earlier videos, with their text: they stay after a reload or a restart.
  useEffect(() => {
    getJson<{ renders: Render[] }>("/api/renders")
      .then((r) => setRenders(r.renders))
      .catch(() => undefined);
  }, [version]);

  async function say(e: React.FormEvent) {
    e.preventDefault();
    if (!text.trim() || !ready) return;
    setBusy(true);
    setError(null);
    setResult(null);
    try {
      setResult(await postJson<SayResult>("/api/say", { text: text.trim() }));
      onRendered();
    } catch (err) {
      setError(message(err));
    } finally {
      setBusy(false);
    }
  }

  const href = result ? withToken(result.video) : "";
  const earlier = renders.filter((r) => !result || r.video !== result.video);
  return (
    <div className="card" data-testid="say">
      <h2>Say</h2>
      {!ready && (
        <p className="muted small" data-testid="say-waiting">
          Waits for a prepared video: the avatar needs the person's face and speech first.
        </p>
      )}
      <form onSubmit={say}>
        <textarea
          rows={3}
          maxLength={4000}
          placeholder="Text for the avatar to say in a video…"
          aria-label="Text to say"
          value={text}
          disabled={!ready}
          onChange={(e) => setText(e.target.value)}
        />
        <div className="actions">
          <button className="btn btn-primary" type="submit" disabled={busy || !text.trim() || !ready}>
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
            {result.voice && <> · voice {result.voice}</>} · marked synthetic in the picture and its metadata
          </p>
        </>
      )}
      {error && <p className="error">{error}</p>}
      {earlier.length > 0 && (
        <details className="renders" open={!result} data-testid="renders">
          <summary>
            Earlier videos ({earlier.length})
          </summary>
          <ul>
            {earlier.slice(0, 20).map((r) => (
              <RenderRow key={r.name} render={r} />
            ))}
          </ul>
        </details>
      )}
    </div>
  );
}

function RenderRow({ render }: { render: Render }) {
  const [open, setOpen] = useState(false);
  const href = withToken(render.video);
  return (
    <li className="render" data-testid="render">
      <span className="render-text">“{render.text || render.name}”</span>
      <span className="muted small">
        {render.made_at ? new Date(render.made_at).toLocaleString() : ""}
        {render.duration_s !== undefined ? ` · ${render.duration_s.toFixed(1)} s` : ""}
      </span>
      <span className="render-actions">
        <button type="button" className="btn btn-link btn-small" onClick={() => setOpen(!open)}>
          {open ? "Hide" : "Play"}
        </button>
        <a className="btn btn-link btn-small" href={href} download>
          Download
        </a>
      </span>
      {open && <video className="say-video" src={href} controls playsInline autoPlay />}
    </li>
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
            <th className="wide-only">video</th>
            <th>transcript</th>
          </tr>
        </thead>
        <tbody>
          {status.sources.map((s) => {
            const video = s.files.find((f) => f.role === "video");
            const captions = s.files.filter((f) => f.role === "captions").length;
            const engine = transcriptEngine(status, s.id);
            return (
              <tr key={s.id}>
                <td>{s.id}</td>
                <td className="title" title={s.origin}>
                  {s.title}
                </td>
                <td>{s.kind}</td>
                <td>{clock(s.duration_s)}</td>
                <td className="wide-only">{video ? `${video.width}×${video.height} ${Math.round(video.fps)} fps` : "—"}</td>
                <td data-testid="transcript-source">
                  {engine ? engine : captions > 0 ? "captions" : "speech recognition"}
                  {!engine && <span className="muted small"> (when prepared)</span>}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** Where prepare took a source's transcript from ("captions", "pocketsphinx", ...), once it has. */
function transcriptEngine(status: Status, sourceId: number): string | null {
  const row = status.stages.find((r) => r.stage === "prepare.transcript" && r.source_id === sourceId);
  const engine = row?.summary?.["engine"];
  return typeof engine === "string" && engine ? engine : null;
}
