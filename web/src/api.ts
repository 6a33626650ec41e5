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

// ---- the connection to the server, in one place for both pages ----
// Every fetch says whether the server answered; the shell shows one notice while it does not, and
// clears it as soon as a request gets through again (it keeps asking while the server is away).

type ServerListener = (reachable: boolean) => void;
const serverListeners = new Set<ServerListener>();
let serverReachable = true;

/** Whether the last request reached the server. */
export function isServerReachable(): boolean {
  return serverReachable;
}

/** Tells the listeners when the server stops or starts answering; returns the unsubscribe. */
export function onServerReachable(listener: ServerListener): () => void {
  serverListeners.add(listener);
  return () => serverListeners.delete(listener);
}

export function setServerReachable(reachable: boolean) {
  if (reachable === serverReachable) return;
  serverReachable = reachable;
  serverListeners.forEach((l) => l(reachable));
}

/** fetch, noting whether the server answered at all (any HTTP status counts). */
async function reach(path: string, init: RequestInit): Promise<Response> {
  try {
    const res = await fetch(path, init);
    setServerReachable(true);
    return res;
  } catch (e) {
    setServerReachable(false);
    throw new ApiError("the dself server cannot be reached; it may be restarting", 0);
  }
}

export async function getJson<T>(path: string): Promise<T> {
  const res = await reach(path, { headers: headers() });
  if (!res.ok) throw await errorOf(res);
  return (await res.json()) as T;
}

export async function postJson<T>(path: string, body: unknown): Promise<T> {
  const res = await reach(path, {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify(body),
  });
  if (!res.ok) throw await errorOf(res);
  return (await res.json()) as T;
}

export interface UploadAnswer {
  file: string;
  kind: "video" | "captions";
  video?: string;
  job?: Job;
}

/** An upload the server refused because the avatar has the same video already. */
export class DuplicateUpload extends ApiError {
  constructor(
    message: string,
    public sourceId: number,
  ) {
    super(message, 409);
  }
}

/** The most one request carries: larger files go in parts (the server's kUploadPartBytes). */
export const UPLOAD_PART_BYTES = 8 << 20;

/** One request of an upload: `part` of `file` starting at `offset`. */
function sendPart(
  file: File,
  offset: number,
  part: Blob,
  ingest: string,
  onProgress: (loaded: number) => void,
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(
      "POST",
      `/api/uploads?name=${encodeURIComponent(file.name)}&offset=${offset}&total=${file.size}${ingest}`,
    );
    if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      setServerReachable(true);
      let body: unknown = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        // fall through to the status line
      }
      resolve({ status: xhr.status, body: body ?? { error: `${xhr.status} ${xhr.statusText}` } });
    };
    // The server moves an upload into place only once all of it has arrived: an interrupted one
    // adds nothing.
    const interrupted = () =>
      reject(new ApiError(`the upload of ${file.name} was interrupted: nothing of it was added; upload it again`, 0));
    xhr.onerror = interrupted;
    xhr.onabort = interrupted;
    xhr.send(part);
  });
}

/**
 * Uploads a file to POST /api/uploads?name=, in parts of UPLOAD_PART_BYTES, reporting progress
 * (0..1). With `ingest: false` the server only stores it (several files then become one ingest job).
 */
export async function uploadFile(
  file: File,
  onProgress: (share: number) => void,
  options: { ingest?: boolean } = {},
): Promise<UploadAnswer> {
  const ingest = options.ingest === false ? "&ingest=0" : "";
  let offset = 0;
  for (;;) {
    const part = file.slice(offset, Math.min(file.size, offset + UPLOAD_PART_BYTES));
    const { status, body } = await sendPart(file, offset, part, ingest, (loaded) =>
      onProgress(file.size > 0 ? (offset + loaded) / file.size : 1),
    );
    const b = body as { error?: unknown; duplicate?: { source_id?: number }; received?: number } | null;
    if (status === 202 && b && typeof b.received === "number" && !("job" in (b as object))) {
      offset = b.received;
      continue;
    }
    if (status >= 200 && status < 300) return body as UploadAnswer;
    const err = b && typeof b.error === "string" ? b.error : `${status}`;
    if (status === 409 && b?.duplicate) throw new DuplicateUpload(err, b.duplicate.source_id ?? 0);
    throw new ApiError(err, status);
  }
}

// ---- shapes (docs/API.md, docs/FORMATS.md) ----

export interface Job {
  id: number;
  kind: string;
  state: "queued" | "running" | "done" | "failed" | "interrupted";
  /** done/total: the current step; share (0..1, -1 unknown) and eta_s: the whole job. */
  progress?: { done: number; total: number; label?: string; share?: number; eta_s?: number } | null;
  sources?: string[];
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
  /** Per trainable model: "none", "current", "stale" or "broken" (docs/FORMATS.md). */
  trained?: Record<string, { state: string; why: string }>;
}

export interface Metrics {
  models: Record<string, unknown>;
  server?: { live_sessions?: number; jobs_done?: number };
  /** Whether the prepare report exists (GET /api/report answers it). */
  report?: { ready: boolean; written_at?: string };
}

/** GET /api/renders */
export interface Render {
  name: string;
  video: string;
  text: string;
  duration_s?: number;
  sentences?: number;
  voice?: string;
  made_at?: string;
  size_bytes?: number;
}

/** GET /api/conversations/ID */
export interface ConversationLog {
  id: number;
  started_at: string;
  message_count: number;
  messages: { role: string; text: string; sources: SourceRef[]; at: string }[];
}

/** Where the avatar stands on its way from empty to talking (from the status document). */
export interface Readiness {
  sources: number;
  prepared: number;
  /** At least one source has its speech and face: the avatar can talk and make videos. */
  ready: boolean;
}

export function readiness(status: Status): Readiness {
  const speech = new Set(status.stages.filter((s) => s.stage === "prepare.speech").map((s) => s.source_id));
  const face = new Set(status.stages.filter((s) => s.stage === "prepare.face").map((s) => s.source_id));
  const prepared = status.sources.filter((s) => speech.has(s.id) && face.has(s.id)).length;
  return { sources: status.sources.length, prepared, ready: prepared > 0 };
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
  /** Whether GET /api/models/voice/curve has a curve to draw. */
  curve?: boolean;
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
