// Talk: the avatar on a canvas in sync with its voice, a text box, hold-to-talk, and the
// conversation with the source moments under each reply.

import { useEffect, useRef, useState } from "react";
import {
  clock,
  getJson,
  readiness,
  withToken,
  type ConversationLog,
  type Readiness,
  type SourceRef,
  type Status,
} from "./api";
import { drawPlaceholder, LiveSession, type ConnectionState, type ServerMessage } from "./live";

interface Turn {
  id: number;
  role: "user" | "avatar";
  text: string;
  voice?: boolean;
  sources?: SourceRef[];
  pending?: boolean;
  error?: string;
  /** From an earlier visit (the catalog's conversation), shown again after a reload. */
  earlier?: boolean;
}

let nextTurnId = 1;
/** localStorage key of this browser's conversation id (the catalog's). */
const CONVERSATION_KEY = "dself.conversation";

export function Talk() {
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const sessionRef = useRef<LiveSession | null>(null);
  const listRef = useRef<HTMLOListElement>(null);
  const [connection, setConnection] = useState<ConnectionState>("connecting");
  const [hello, setHello] = useState<{ voice?: string; fps?: number } | null>(null);
  const [turns, setTurns] = useState<Turn[]>([]);
  const [busy, setBusy] = useState(false);
  const [draft, setDraft] = useState("");
  const [notice, setNotice] = useState<string | null>(null);
  const [suggestions, setSuggestions] = useState<string[]>(["Hi!", "What do you talk about?"]);
  const [ready, setReady] = useState<Readiness | null>(null);
  const [resumedFrom, setResumedFrom] = useState<string | null>(null);
  const [playing, setPlaying] = useState<SourceRef | null>(null);
  // The live session's callbacks are made once: they read whether the avatar is ready from here.
  const notReadyRef = useRef(false);

  useEffect(() => {
    const session = new LiveSession({ onMessage, onConnection: setConnection });
    sessionRef.current = session;
    if (canvasRef.current) {
      session.attachCanvas(canvasRef.current);
      drawPlaceholder(canvasRef.current);
    }
    return () => session.close();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  useEffect(() => {
    getJson<Status>("/api/status")
      .then((status) => {
        const r = readiness(status);
        notReadyRef.current = !r.ready;
        if (!r.ready) setNotice(null);
        setReady(r);
        // Questions from the person's topics (persona.json), never raw phrases of the transcript.
        const questions = (status.persona?.suggested_questions as string[] | undefined) ?? [];
        setSuggestions(["Hi!", "What do you talk about?", ...questions.slice(0, 3)]);
      })
      .catch(() => undefined);
    // This browser's conversation (its id kept in localStorage as replies come), as the catalog
    // keeps it: shown again after a reload, and the next messages go on with it. Another visitor
    // (another browser) starts a conversation of their own.
    const kept = Number(window.localStorage.getItem(CONVERSATION_KEY));
    if (Number.isInteger(kept) && kept > 0) {
      getJson<ConversationLog>(`/api/conversations/${kept}`)
        .then((log) => {
          const earlier: Turn[] = log.messages.map((m) => ({
            id: nextTurnId++,
            role: m.role === "user" ? "user" : "avatar",
            text: m.text,
            sources: m.sources ?? [],
            earlier: true,
          }));
          if (earlier.length === 0) return;
          sessionRef.current?.continueConversation(kept);
          setResumedFrom(log.started_at);
          setTurns((now) => [...earlier, ...now]);
        })
        .catch(() => window.localStorage.removeItem(CONVERSATION_KEY));
    }
  }, []);

  // A connection that comes back clears what was said about it.
  useEffect(() => {
    if (connection === "open") setNotice((n) => (n && n.startsWith("Not connected") ? null : n));
    // A closed socket may be a server that went away: ask, so that the shell's notice says so.
    if (connection === "closed") getJson("/api/status").catch(() => undefined);
  }, [connection]);

  useEffect(() => {
    const list = listRef.current;
    if (list) list.scrollTop = list.scrollHeight;
  }, [turns]);

  function updateLastAvatar(change: (t: Turn) => Turn) {
    setTurns((all) => {
      const i = findLastIndex(all, (t) => t.role === "avatar");
      if (i < 0) return all;
      const copy = all.slice();
      copy[i] = change(copy[i]);
      return copy;
    });
  }

  function onMessage(msg: ServerMessage) {
    switch (msg.type) {
      case "hello":
        setHello({ voice: msg.voice, fps: msg.fps });
        break;
      case "transcript":
        setTurns((all) => {
          const i = findLastIndex(all, (t) => t.role === "user" && !!t.voice);
          if (i < 0) return all;
          const copy = all.slice();
          copy[i] = { ...copy[i], text: msg.text || "(nothing was heard)" };
          return copy;
        });
        break;
      case "reply_delta":
        updateLastAvatar((t) => ({ ...t, text: t.text + msg.text }));
        break;
      case "reply":
        if (typeof msg.conversation_id === "number") window.localStorage.setItem(CONVERSATION_KEY, String(msg.conversation_id));
        updateLastAvatar((t) => ({ ...t, text: msg.text, sources: msg.sources ?? [] }));
        break;
      case "done":
        updateLastAvatar((t) => ({ ...t, pending: false }));
        setBusy(false);
        break;
      case "error":
        // Said once: in the reply's place when a reply was awaited, else as a notice (but not
        // before the avatar is ready: the page says that itself, without terminal commands).
        setTurns((all) => {
          const i = findLastIndex(all, (t) => t.role === "avatar");
          if (i < 0 || !all[i].pending) {
            if (!notReadyRef.current) setNotice(msg.error);
            return all;
          }
          const copy = all.slice();
          copy[i] = { ...copy[i], pending: false, error: msg.error };
          const u = findLastIndex(copy, (t) => t.role === "user" && !!t.voice);
          if (u >= 0 && u === i - 1 && copy[u].text.startsWith("(voice message")) copy[u] = { ...copy[u], text: "(voice message)" };
          return copy;
        });
        setBusy(false);
        break;
      default:
        break;
    }
  }

  function begin(userTurn: Turn) {
    setNotice(null);
    setBusy(true);
    setTurns((all) => [...all, userTurn, { id: nextTurnId++, role: "avatar", text: "", pending: true }]);
  }

  // Before the avatar has a prepared source, there is no one to talk to: the page says so instead.
  const notReady = ready !== null && !ready.ready;
  notReadyRef.current = notReady;
  const canSend = connection === "open" && !notReady;

  function sendText(text: string) {
    const trimmed = text.trim();
    const session = sessionRef.current;
    if (!trimmed || !session || busy || notReady) return;
    if (!session.sendText(trimmed)) {
      setNotice("Not connected to the server yet; try again in a moment.");
      return;
    }
    begin({ id: nextTurnId++, role: "user", text: trimmed });
    setDraft("");
  }

  async function sendVoice(audio: Blob) {
    const session = sessionRef.current;
    if (!session || busy || notReady) return;
    begin({ id: nextTurnId++, role: "user", text: "(voice message — listening…)", voice: true });
    if (!(await session.sendVoice(audio))) {
      setNotice("Not connected to the server yet; try again in a moment.");
      setBusy(false);
    }
  }

  function stop() {
    sessionRef.current?.interrupt();
    updateLastAvatar((t) => (t.pending ? { ...t, pending: false, error: "stopped" } : t));
    setBusy(false);
  }

  return (
    <section className="talk">
      <div className="stage">
        <div className="avatar-frame">
          <canvas ref={canvasRef} width={512} height={512} data-testid="avatar-canvas" aria-label="The avatar" />
          <span className="synthetic-tag" aria-hidden="true">
            SYNTHETIC
          </span>
          {notReady ? (
            <span className="conn conn-waiting" data-testid="talk-badge" title="the avatar is not ready to talk yet">
              <i /> not ready
            </span>
          ) : (
            <span className={`conn conn-${connection}`} data-testid="talk-badge" title={`live connection: ${connection}`}>
              <i /> {connection === "open" ? "live" : connection}
            </span>
          )}
        </div>
        <p className="stage-meta">
          {hello?.voice ? <span data-testid="talk-voice">voice: {hello.voice}</span> : <>waiting for the avatar</>}
          {hello?.fps ? <> · {hello.fps} fps</> : null}
        </p>
        <p className="about">
          This avatar is synthesized from a person's own videos. It answers with what they said, and every reply
          lists the moments it came from. It is not the person speaking.
        </p>
      </div>

      <div className="chat">
        {notReady && ready && (
          <div className="not-ready" data-testid="not-ready">
            <p>
              <b>This avatar is not ready to talk yet.</b>{" "}
              {ready.sources === 0
                ? "It has no videos of the person yet: add some, then prepare them."
                : "Its videos are not prepared yet: prepare them first (it takes a few minutes)."}
            </p>
            <a className="btn btn-primary" href="#/studio" data-testid="not-ready-link">
              {ready.sources === 0 ? "Add videos in the Studio" : "Prepare in the Studio"}
            </a>
          </div>
        )}
        {playing && <SourcePlayer source={playing} onClose={() => setPlaying(null)} />}
        <ol className="turns" ref={listRef} data-testid="conversation">
          {resumedFrom && (
            <li className="resumed muted small" data-testid="resumed">
              Your conversation from {new Date(resumedFrom).toLocaleString()} — it goes on below.
            </li>
          )}
          {turns.length === 0 && (
            <li className="empty">
              <p>Say something to the avatar. It answers with the person's own words, and shows where they said them.</p>
              <div className="chips">
                {suggestions.map((s) => (
                  <button key={s} type="button" className="chip" onClick={() => sendText(s)} disabled={!canSend}>
                    {s}
                  </button>
                ))}
              </div>
            </li>
          )}
          {turns.map((t) => (
            <li
              key={t.id}
              className={`turn turn-${t.role}${t.earlier ? " turn-earlier" : ""}`}
              data-testid={t.role === "avatar" ? (t.earlier ? "earlier-reply" : "reply") : t.earlier ? "earlier-message" : "message"}
            >
              <div className="bubble">
                {t.text || (t.pending ? <span className="typing" aria-label="thinking"><i /><i /><i /></span> : null)}
                {t.error && <div className="turn-error">{t.error}</div>}
              </div>
              {t.voice && <span className="turn-note">voice message, as heard</span>}
              {t.sources && t.sources.length > 0 && (
                <ul className="sources" data-testid="sources">
                  {t.sources.map((s, i) => (
                    <li key={i}>
                      <SourceLink source={s} onPlay={setPlaying} />
                    </li>
                  ))}
                </ul>
              )}
            </li>
          ))}
        </ol>

        {notice && (
          <p className="notice" role="alert">
            {notice}
          </p>
        )}

        <form
          className="composer"
          onSubmit={(e) => {
            e.preventDefault();
            sendText(draft);
          }}
        >
          <textarea
            value={draft}
            rows={1}
            maxLength={4000}
            placeholder={notReady ? "The avatar is not ready to talk yet" : "Type a message…"}
            disabled={notReady}
            aria-label="Message"
            data-testid="message-input"
            onChange={(e) => setDraft(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter" && !e.shiftKey) {
                e.preventDefault();
                sendText(draft);
              }
            }}
          />
          <MicButton disabled={busy || !canSend} onRecorded={sendVoice} onError={setNotice} />
          {busy ? (
            <button type="button" className="btn btn-secondary" onClick={stop}>
              Stop
            </button>
          ) : (
            <button type="submit" className="btn btn-primary" disabled={!draft.trim() || connection !== "open"} data-testid="send">
              Send
            </button>
          )}
        </form>
      </div>
    </section>
  );
}

function SourceLink({ source, onPlay }: { source: SourceRef; onPlay: (source: SourceRef) => void }) {
  const label = `${source.title || `source ${source.source_id}`} @ ${clock(source.start_s)}`;
  const body = (
    <>
      <span className="source-label">▶ {label}</span>
      {source.text && <span className="source-text">“{source.text}”</span>}
    </>
  );
  // The person's own video at that moment, served from the workspace: what they really said.
  return (
    <button
      type="button"
      className="source"
      data-testid="source-link"
      onClick={() => onPlay(source)}
      title={`Play ${label}–${clock(source.end_s)} of the person's own video`}
    >
      {body}
    </button>
  );
}

/** Plays a source's moment of the person's own video, from its start. */
function SourcePlayer({ source, onClose }: { source: SourceRef; onClose: () => void }) {
  const videoRef = useRef<HTMLVideoElement>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const v = videoRef.current;
    if (!v) return;
    const seek = () => {
      v.currentTime = source.start_s;
      void v.play().catch(() => undefined);
    };
    // The moment, not the rest of the video: it pauses once the source's passage has been said
    // (the viewer can play on).
    let paused = false;
    const stopAtEnd = () => {
      if (!paused && source.end_s > source.start_s && v.currentTime >= source.end_s + 0.3) {
        paused = true;
        v.pause();
      }
    };
    if (v.readyState >= 1) seek();
    else v.addEventListener("loadedmetadata", seek, { once: true });
    v.addEventListener("timeupdate", stopAtEnd);
    return () => {
      v.removeEventListener("loadedmetadata", seek);
      v.removeEventListener("timeupdate", stopAtEnd);
    };
  }, [source]);
  const label = `${source.title || `source ${source.source_id}`} @ ${clock(source.start_s)}–${clock(source.end_s)}`;
  return (
    <div className="source-player" data-testid="source-player">
      <div className="source-player-head">
        <span>
          <b>What the person said</b> · {label}
        </span>
        <button type="button" className="btn btn-secondary" onClick={onClose} aria-label="Close the video">
          Close
        </button>
      </div>
      <video
        ref={videoRef}
        src={withToken(`/api/sources/${source.source_id}/video`)}
        controls
        playsInline
        preload="metadata"
        data-testid="source-video"
        data-start={source.start_s}
        onError={() => setError("This source's video cannot be played here (it is not in the workspace).")}
      />
      {source.text && <p className="source-text">“{source.text}”</p>}
      {error && <p className="error small">{error}</p>}
    </div>
  );
}

/** Hold to record (MediaRecorder), release to send. */
function MicButton({
  disabled,
  onRecorded,
  onError,
}: {
  disabled: boolean;
  onRecorded: (audio: Blob) => void;
  onError: (message: string) => void;
}) {
  const recorderRef = useRef<MediaRecorder | null>(null);
  const [recording, setRecording] = useState(false);
  const supported = typeof MediaRecorder !== "undefined" && !!navigator.mediaDevices?.getUserMedia;

  async function start() {
    if (disabled || recorderRef.current) return;
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      const recorder = new MediaRecorder(stream);
      const chunks: Blob[] = [];
      const startedAt = performance.now();
      recorder.ondataavailable = (e) => {
        if (e.data.size > 0) chunks.push(e.data);
      };
      recorder.onstop = () => {
        stream.getTracks().forEach((t) => t.stop());
        recorderRef.current = null;
        setRecording(false);
        if (performance.now() - startedAt < 300) {
          onError("Hold the microphone button while you speak, then let go.");
          return;
        }
        onRecorded(new Blob(chunks, { type: recorder.mimeType || "audio/webm" }));
      };
      recorderRef.current = recorder;
      recorder.start();
      setRecording(true);
    } catch (e) {
      onError(`The microphone is not available: ${(e as Error).message}`);
    }
  }

  function finish() {
    const r = recorderRef.current;
    if (r && r.state === "recording") r.stop();
  }

  if (!supported) return null;
  return (
    <button
      type="button"
      className={`btn btn-mic${recording ? " recording" : ""}`}
      disabled={disabled && !recording}
      aria-label={recording ? "Recording: release to send" : "Hold to talk"}
      title="Hold to talk"
      onPointerDown={(e) => {
        e.currentTarget.setPointerCapture(e.pointerId);
        void start();
      }}
      onPointerUp={finish}
      onPointerCancel={finish}
      onKeyDown={(e) => {
        if ((e.key === " " || e.key === "Enter") && !e.repeat) {
          e.preventDefault();
          void start();
        }
      }}
      onKeyUp={(e) => {
        if (e.key === " " || e.key === "Enter") finish();
      }}
      onContextMenu={(e) => e.preventDefault()}
    >
      <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true">
        <path
          fill="currentColor"
          d="M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.92V21h2v-3.08A7 7 0 0 0 19 11h-2z"
        />
      </svg>
      <span className="mic-label">{recording ? "Release to send" : "Hold to talk"}</span>
    </button>
  );
}

function findLastIndex<T>(items: T[], test: (item: T) => boolean): number {
  for (let i = items.length - 1; i >= 0; i--) if (test(items[i])) return i;
  return -1;
}
