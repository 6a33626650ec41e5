// The live conversation: the WebSocket to /api/live, the reply's audio played through Web Audio,
// and its frames drawn on a canvas at their time on the audio clock so the lips stay in sync.
//
// The server sends a sentence's frames as they are drawn and its audio once the sentence is
// done, so the audio is the master: the reply's clock starts with its first audio, and a frame
// is drawn only when its time has come and the audio under it has arrived; audio that arrives
// late moves the clock back, so sound and picture pause together rather than drift apart.
//
// Binary frames (docs/API.md): byte 0 kind ('A' audio, 'F' frame), bytes 1-4 index (uint32 LE),
// bytes 5-12 time in seconds from the reply's start (float64 LE), then PCM s16le 16 kHz mono or
// a JPEG.

import { liveUrl } from "./api";

export type ServerMessage =
  | { type: "hello"; session?: string; synthetic?: boolean; voice?: string; size?: unknown; fps?: number; sample_rate?: number }
  | { type: "transcript"; text: string }
  | { type: "reply_delta"; text: string }
  | { type: "reply"; text: string; sources?: import("./api").SourceRef[]; conversation_id?: number }
  | { type: "resumed"; conversation_id: number; messages: number }
  | { type: "sentence"; index: number; text: string; start_s: number; duration_s: number; first_frame: number; frame_count: number }
  | { type: "done"; frame_count?: number; duration_s?: number }
  | { type: "error"; error: string };

export type ConnectionState = "connecting" | "open" | "closed";

/** Counters the end-to-end test reads from `window.__dself`; they only ever grow. */
export interface LiveStats {
  connection: ConnectionState;
  hello: boolean;
  audioBytes: number;
  audioChunks: number;
  audioScheduledS: number;
  framesReceived: number;
  framesDrawn: number;
  framesSkipped: number;
  frameLagTotalMs: number; // summed over drawn frames: how long after its time on the audio clock each was drawn
  replies: number;
  clock: "audio" | "wall" | "none";
  lastError: string | null;
}

declare global {
  interface Window {
    __dself?: LiveStats;
  }
}

const HEADER_BYTES = 13;
const KIND_AUDIO = 0x41;
const KIND_FRAME = 0x46;
const START_LEAD_S = 0.15; // first sound and frame this long after the first data arrives
const DECODE_AHEAD = 6; // JPEGs decoded ahead of the clock (bitmaps are large; blobs are not)

interface QueuedFrame {
  index: number;
  time_s: number;
  blob: Blob;
  bitmap: ImageBitmap | null;
  decoding: boolean;
  failed: boolean;
}

export interface LiveOptions {
  onMessage: (msg: ServerMessage) => void;
  onConnection: (state: ConnectionState) => void;
}

export class LiveSession {
  readonly stats: LiveStats;
  private ws: WebSocket | null = null;
  private ctx: AudioContext | null = null;
  private sampleRate = 16000;
  private sources: AudioBufferSourceNode[] = [];
  private frames: QueuedFrame[] = [];
  private canvas: HTMLCanvasElement | null = null;
  private replyStart: number | null = null; // on the chosen clock, the reply's t = 0
  private audioEnd_s = 0; // the reply's time up to which its audio has arrived
  private replyComplete = false; // `done` came: every frame may be drawn
  private useAudioClock = false;
  private raf = 0;
  private closed = false;
  private retryMs = 500;
  private retryTimer = 0;
  private conversationId: number | null = null; // the catalog's conversation the messages go on

  constructor(private options: LiveOptions) {
    this.stats = {
      connection: "connecting",
      hello: false,
      audioBytes: 0,
      audioChunks: 0,
      audioScheduledS: 0,
      framesReceived: 0,
      framesDrawn: 0,
      framesSkipped: 0,
      frameLagTotalMs: 0,
      replies: 0,
      clock: "none",
      lastError: null,
    };
    window.__dself = this.stats;
    this.connect();
    this.raf = requestAnimationFrame(this.tick);
  }

  attachCanvas(canvas: HTMLCanvasElement | null) {
    this.canvas = canvas;
  }

  /** Creates or resumes the AudioContext; call from a user gesture (browsers require one). */
  unlockAudio() {
    if (!this.ctx) {
      try {
        this.ctx = new AudioContext({ latencyHint: "interactive" });
      } catch {
        this.ctx = null;
      }
    }
    if (this.ctx && this.ctx.state === "suspended") void this.ctx.resume();
  }

  get connected(): boolean {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /** Goes on with an earlier conversation (the catalog's id): now, and after every reconnection. */
  continueConversation(id: number) {
    this.conversationId = id;
    if (this.connected && this.stats.hello) this.send({ type: "resume", conversation_id: id });
  }

  sendText(text: string): boolean {
    this.unlockAudio();
    this.resetPlayback();
    return this.send({ type: "message", text });
  }

  async sendVoice(audio: Blob): Promise<boolean> {
    this.unlockAudio();
    this.resetPlayback();
    const base64 = await blobToBase64(audio);
    const mime = (audio.type || "audio/webm").split(";")[0];
    return this.send({ type: "voice", mime, audio_base64: base64 });
  }

  /** Stops the reply now: the server stops its work when the socket closes; then reconnects. */
  interrupt() {
    this.resetPlayback();
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close();
      this.ws = null;
    }
    this.connect();
  }

  close() {
    this.closed = true;
    cancelAnimationFrame(this.raf);
    window.clearTimeout(this.retryTimer);
    this.resetPlayback();
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close();
    }
    if (this.ctx) void this.ctx.close();
  }

  private send(msg: unknown): boolean {
    if (!this.connected) {
      this.stats.lastError = "not connected to the server";
      return false;
    }
    this.ws!.send(JSON.stringify(msg));
    return true;
  }

  private setConnection(state: ConnectionState) {
    this.stats.connection = state;
    this.options.onConnection(state);
  }

  private connect() {
    if (this.closed) return;
    this.setConnection("connecting");
    const ws = new WebSocket(liveUrl());
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      this.retryMs = 500;
      this.setConnection("open");
    };
    ws.onmessage = (e) => {
      if (typeof e.data === "string") this.onText(e.data);
      else this.onBinary(e.data as ArrayBuffer);
    };
    ws.onerror = () => {
      this.stats.lastError = "the live connection failed";
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.setConnection("closed");
      if (this.closed) return;
      this.retryTimer = window.setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 8000);
    };
  }

  private onText(data: string) {
    let msg: ServerMessage;
    try {
      msg = JSON.parse(data) as ServerMessage;
    } catch {
      this.stats.lastError = "the server sent a text frame that is not JSON";
      return;
    }
    if (msg.type === "hello") {
      this.stats.hello = true;
      // A new connection is a new session on the server: it goes on with the same conversation.
      if (this.conversationId !== null) this.send({ type: "resume", conversation_id: this.conversationId });
      if (typeof msg.sample_rate === "number" && msg.sample_rate > 0) this.sampleRate = msg.sample_rate;
      const [w, h] = sizeOf(msg.size);
      if (this.canvas && w > 0 && h > 0 && (this.canvas.width !== w || this.canvas.height !== h)) {
        this.canvas.width = w;
        this.canvas.height = h;
        drawPlaceholder(this.canvas);
      }
    } else if (msg.type === "reply") {
      this.stats.replies += 1;
      if (typeof msg.conversation_id === "number") this.conversationId = msg.conversation_id;
    } else if (msg.type === "done") {
      // Frames with no audio under them (a reply without a voice) play on the wall clock.
      this.replyComplete = true;
      if (this.frames.length > 0) this.startClock();
    } else if (msg.type === "error") {
      this.stats.lastError = msg.error;
    }
    this.options.onMessage(msg);
  }

  private onBinary(buffer: ArrayBuffer) {
    if (buffer.byteLength < HEADER_BYTES) return;
    const view = new DataView(buffer);
    const kind = view.getUint8(0);
    const index = view.getUint32(1, true);
    const time_s = view.getFloat64(5, true);
    if (!Number.isFinite(time_s) || time_s < 0) return;
    if (kind === KIND_AUDIO) this.onAudio(time_s, buffer.slice(HEADER_BYTES));
    else if (kind === KIND_FRAME) this.onFrame(index, time_s, new Blob([buffer.slice(HEADER_BYTES)], { type: "image/jpeg" }));
  }

  /** The clock the reply plays on: the AudioContext's while it runs, else the wall clock. */
  private now(): number {
    if (this.useAudioClock && this.ctx) return this.ctx.currentTime;
    return performance.now() / 1000;
  }

  private startClock() {
    if (this.replyStart !== null) return;
    this.useAudioClock = this.ctx !== null && this.ctx.state === "running";
    this.stats.clock = this.useAudioClock ? "audio" : "wall";
    this.replyStart = this.now() + START_LEAD_S;
  }

  private onAudio(time_s: number, pcm: ArrayBuffer) {
    this.stats.audioBytes += pcm.byteLength;
    this.stats.audioChunks += 1;
    this.startClock();
    const n = pcm.byteLength >> 1;
    if (n === 0) return;
    this.audioEnd_s = Math.max(this.audioEnd_s, time_s + n / this.sampleRate);
    this.stats.audioScheduledS = this.audioEnd_s;
    if (!this.ctx || this.ctx.state !== "running") return; // no sound: frames still follow the clock
    // A chunk that arrives after its time moves the reply's start later, so sound and picture
    // pause together rather than drift apart.
    let delay = this.replyStart! + time_s - this.now();
    if (delay < 0.02) {
      this.replyStart! += 0.02 - delay;
      delay = 0.02;
    }
    const samples = new Int16Array(pcm, 0, n);
    const audioBuffer = this.ctx.createBuffer(1, n, this.sampleRate); // resampled by Web Audio
    const channel = audioBuffer.getChannelData(0);
    for (let i = 0; i < n; i++) channel[i] = samples[i] / 32768;
    const node = this.ctx.createBufferSource();
    node.buffer = audioBuffer;
    node.connect(this.ctx.destination);
    node.onended = () => {
      this.sources = this.sources.filter((s) => s !== node);
    };
    node.start(this.ctx.currentTime + delay);
    this.sources.push(node);
  }

  private onFrame(index: number, time_s: number, blob: Blob) {
    this.stats.framesReceived += 1;
    const frame: QueuedFrame = { index, time_s, blob, bitmap: null, decoding: false, failed: false };
    let i = this.frames.length;
    while (i > 0 && this.frames[i - 1].time_s > time_s) i--;
    this.frames.splice(i, 0, frame);
  }

  private decodeAhead() {
    let started = 0;
    for (const f of this.frames) {
      if (started >= DECODE_AHEAD) break;
      started++;
      if (f.bitmap || f.decoding || f.failed) continue;
      f.decoding = true;
      createImageBitmap(f.blob).then(
        (bitmap) => {
          f.decoding = false;
          if (this.frames.includes(f)) f.bitmap = bitmap;
          else bitmap.close();
        },
        () => {
          f.decoding = false;
          f.failed = true;
          this.stats.lastError = `frame ${f.index} is not a decodable JPEG`;
        },
      );
    }
  }

  private tick = () => {
    this.raf = requestAnimationFrame(this.tick);
    if (this.frames.length === 0 || this.replyStart === null) return;
    this.decodeAhead();
    // What is heard lags the audio clock by the output latency; the picture waits for it.
    const latency = this.useAudioClock && this.ctx ? this.ctx.outputLatency || this.ctx.baseLatency || 0 : 0;
    let t = this.now() - this.replyStart - latency;
    if (!this.replyComplete) t = Math.min(t, this.audioEnd_s - 1e-6);
    // Skip frames whose successor is already due; draw the newest due one once it is decoded.
    while (this.frames.length > 1 && this.frames[1].time_s <= t) {
      const skipped = this.frames.shift()!;
      skipped.bitmap?.close();
      this.stats.framesSkipped += 1;
    }
    const due = this.frames[0];
    if (due.time_s > t) return;
    if (due.failed) {
      this.frames.shift();
      return;
    }
    if (!due.bitmap) return;
    this.frames.shift();
    if (this.canvas) {
      const c = this.canvas;
      if (c.width !== due.bitmap.width || c.height !== due.bitmap.height) {
        c.width = due.bitmap.width;
        c.height = due.bitmap.height;
      }
      c.getContext("2d")!.drawImage(due.bitmap, 0, 0);
      this.stats.framesDrawn += 1;
      this.stats.frameLagTotalMs += Math.max(0, t - due.time_s) * 1000;
    }
    due.bitmap.close();
  };

  /** Stops sound, drops queued frames, and makes the next data start a new reply clock. */
  private resetPlayback() {
    for (const s of this.sources) {
      try {
        s.stop();
      } catch {
        // already stopped
      }
    }
    this.sources = [];
    for (const f of this.frames) f.bitmap?.close();
    this.frames = [];
    this.replyStart = null;
    this.audioEnd_s = 0;
    this.replyComplete = false;
  }
}

function sizeOf(size: unknown): [number, number] {
  if (typeof size === "number") return [size, size];
  if (Array.isArray(size) && size.length >= 2) return [Number(size[0]), Number(size[1])];
  if (size && typeof size === "object") {
    const s = size as { width?: number; height?: number };
    return [Number(s.width ?? 0), Number(s.height ?? 0)];
  }
  return [0, 0];
}

/** The canvas before the first frame: a quiet silhouette, so the stage never looks broken. */
export function drawPlaceholder(canvas: HTMLCanvasElement) {
  const g = canvas.getContext("2d");
  if (!g) return;
  const { width: w, height: h } = canvas;
  const grad = g.createLinearGradient(0, 0, 0, h);
  grad.addColorStop(0, "#1f2937");
  grad.addColorStop(1, "#111827");
  g.fillStyle = grad;
  g.fillRect(0, 0, w, h);
  g.fillStyle = "#374151";
  g.beginPath();
  g.ellipse(w / 2, h * 0.42, w * 0.17, h * 0.21, 0, 0, Math.PI * 2);
  g.fill();
  g.beginPath();
  g.ellipse(w / 2, h * 1.02, w * 0.36, h * 0.3, 0, Math.PI, Math.PI * 2);
  g.fill();
}

function blobToBase64(blob: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => {
      const url = String(reader.result);
      resolve(url.slice(url.indexOf(",") + 1));
    };
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}
