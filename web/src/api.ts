// The server's API (docs/API.md): typed fetch helpers that carry the access token.
//
// The token comes from the page's own URL (`/?token=T`). Fetches send it as a Bearer header;
// URLs the browser opens itself (WebSocket, EventSource, links, <video>) carry it as `?token=`.

export const token: string | null = new URLSearchParams(window.location.search).get("token");

/** `path` with `?token=` added when the page has one. */
export function withToken(path: string): string {
  if (!token) return path;
  return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
}

/** The live WebSocket's URL on this page's origin. */
export function liveUrl(): string {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return withToken(`${scheme}//${window.location.host}/api/live`);
}

export class ApiError extends Error {
  constructor(
    message: string,
    public status: number,
  ) {
    super(message);
  }
}

function headers(extra?: Record<string, string>): Record<string, string> {
  const h: Record<string, string> = { ...extra };
  if (token) h["Authorization"] = `Bearer ${token}`;
  return h;
}

async function errorOf(res: Response): Promise<ApiError> {
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    if (body && typeof body.error === "string") message = body.error;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(message, res.status);
}

export async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: headers() });
  if (!res.ok) throw await errorOf(res);
  return (await res.json()) as T;
}

export async function postJson<T>(path: string, body: unknown): Promise<T> {
  const res = await fetch(path, {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify(body),
  });
  if (!res.ok) throw await errorOf(res);
  return (await res.json()) as T;
}

/** Uploads a file's bytes to POST /api/uploads?name=, reporting progress (0..1). */
export function uploadFile(file: File, onProgress: (share: number) => void): Promise<{ job: Job }> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/uploads?name=" + encodeURIComponent(file.name));
    if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    };
    xhr.onload = () => {
      let body: unknown = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        // fall through to the status line
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body as { job: Job });
      else {
        const err = body && typeof (body as { error?: unknown }).error === "string"
          ? (body as { error: string }).error
          : `${xhr.status} ${xhr.statusText}`;
        reject(new ApiError(err, xhr.status));
      }
    };
    xhr.onerror = () => reject(new ApiError(`upload of ${file.name} failed: network error`, 0));
    xhr.send(file);
  });
}

// ---- shapes (docs/API.md, docs/FORMATS.md) ----

export interface Job {
  id: number;
  kind: string;
  state: "queued" | "running" | "done" | "failed" | "interrupted";
  progress?: { done: number; total: number; label?: string } | null;
  started_at?: string | null;
  finished_at?: string | null;
  error?: string | null;
  log?: string[];
}

export interface MediaFile {
  path: string;
  role: string;
  size_bytes: number;
  duration_s: number;
  width: number;
  height: number;
  fps: number;
  has_video: boolean;
  has_audio: boolean;
}

export interface Source {
  id: number;
  key: string;
  kind: string;
  origin: string;
  title: string;
  added_at: string;
  duration_s: number;
  files: MediaFile[];
}

export interface StageRow {
  stage: string;
  source_id: number | null;
  finished_at: string;
  summary: Record<string, unknown> | null;
}

export interface CatalogJob {
  id: number;
  command: string;
  arguments: string;
  state: string;
  message: string;
  started_at: string;
  finished_at: string;
}

export interface Status {
  format: string;
  avatar: string;
  totals?: { sources: number; videos: number; captions: number; video_hours: number; bytes: number };
  sources: Source[];
  stages: StageRow[];
  persona?: Record<string, unknown> | null;
  jobs?: CatalogJob[];
}

export interface Metrics {
  models: Record<string, unknown>;
  server?: { live_sessions?: number; jobs_done?: number };
}

export interface SayResult {
  video: string;
  duration_s?: number;
  sentences?: number;
  voice?: string;
}

/** A point of the voice's training curve (models/voice/curve.json). */
export interface CurvePoint {
  step: number;
  train_loss: number;
  held_out_loss?: number | null;
  elapsed_s?: number;
}

/** GET /api/models/voice/curve */
export interface VoiceCurve {
  format?: string;
  points: CurvePoint[];
  partial?: boolean;
}

/** GET /api/voice/samples */
export interface VoiceSamples {
  voice: { name: string; trained: boolean; state: string; why: string };
  speech: { train_s: number; held_out_s: number; min_train_s: number; ready: boolean; waiting_for?: string };
  samples: { source: string; id: string; text: string; duration_s: number; real_url: string; trained_url: string }[];
}

export interface SourceRef {
  source_id: number;
  title: string;
  start_s: number;
  end_s: number;
  text?: string;
  url?: string;
}

/** m:ss of a time in seconds. */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}
