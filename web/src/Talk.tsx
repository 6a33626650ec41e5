// Talk: the avatar on a canvas in sync with its voice, a text box, hold-to-talk, and the
// conversation with the source moments under each reply.

import { useEffect, useRef, useState } from "react";
import { clock, getJson, type SourceRef, type Status } from "./api";
import { drawPlaceholder, LiveSession, type ConnectionState, type ServerMessage } from "./live";

interface Turn {
  id: number;
  role: "user" | "avatar";
  text: string;
  voice?: boolean;
  sources?: SourceRef[];
  pending?: boolean;
  error?: string;
}

let nextTurnId = 1;

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
        // Questions from the person's topics (persona.json), never raw phrases of the transcript.
        const questions = (status.persona?.suggested_questions as string[] | undefined) ?? [];
        setSuggestions(["Hi!", "What do you talk about?", ...questions.slice(0, 3)]);
      })
      .catch(() => undefined);
  }, []);

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
        updateLastAvatar((t) => ({ ...t, text: msg.text, sources: msg.sources ?? [] }));
        break;
      case "done":
        updateLastAvatar((t) => ({ ...t, pending: false }));
        setBusy(false);
        break;
      case "error":
        updateLastAvatar((t) => (t.pending ? { ...t, pending: false, error: msg.error } : t));
        setNotice(msg.error);
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

  function sendText(text: string) {
    const trimmed = text.trim();
    const session = sessionRef.current;
    if (!trimmed || !session || busy) return;
    if (!session.sendText(trimmed)) {
      setNotice("Not connected to the server yet; try again in a moment.");
      return;
    }
    begin({ id: nextTurnId++, role: "user", text: trimmed });
    setDraft("");
  }

  async function sendVoice(audio: Blob) {
    const session = sessionRef.current;
    if (!session || busy) return;
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
          <span className={`conn conn-${connection}`} title={`live connection: ${connection}`}>
            <i /> {connection === "open" ? "live" : connection}
          </span>
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
        <ol className="turns" ref={listRef} data-testid="conversation">
          {turns.length === 0 && (
            <li className="empty">
              <p>Say something to the avatar. It answers with the person's own words, and shows where they said them.</p>
              <div className="chips">
                {suggestions.map((s) => (
                  <button key={s} type="button" className="chip" onClick={() => sendText(s)} disabled={connection !== "open"}>
                    {s}
                  </button>
                ))}
              </div>
            </li>
          )}
          {turns.map((t) => (
            <li key={t.id} className={`turn turn-${t.role}`} data-testid={t.role === "avatar" ? "reply" : "message"}>
              <div className="bubble">
                {t.text || (t.pending ? <span className="typing" aria-label="thinking"><i /><i /><i /></span> : null)}
                {t.error && <div className="turn-error">{t.error}</div>}
              </div>
              {t.voice && <span className="turn-note">voice message, as heard</span>}
              {t.sources && t.sources.length > 0 && (
                <ul className="sources" data-testid="sources">
                  {t.sources.map((s, i) => (
                    <li key={i}>
                      <SourceLink source={s} />
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
            placeholder="Type a message…"
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
          <MicButton disabled={busy || connection !== "open"} onRecorded={sendVoice} onError={setNotice} />
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

function SourceLink({ source }: { source: SourceRef }) {
  const label = `${source.title || `source ${source.source_id}`} @ ${clock(source.start_s)}`;
  const body = (
    <>
      <span className="source-label">{label}</span>
      {source.text && <span className="source-text">“{source.text}”</span>}
    </>
  );
  if (source.url) {
    const href = source.url.includes("#") ? source.url : `${source.url}#t=${Math.floor(source.start_s)}`;
    return (
      <a className="source" href={href} target="_blank" rel="noreferrer" title={`${label}–${clock(source.end_s)}`}>
        {body}
      </a>
    );
  }
  return (
    <span className="source" title={`${label}–${clock(source.end_s)}`}>
      {body}
    </span>
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
