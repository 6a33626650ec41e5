// The shell: a header with the two views and the synthetic-avatar label, always on screen.
// Views are chosen by the URL's hash (#/talk, #/studio) so the server needs no routes for them
// and `?token=` in the query stays untouched.

import { useEffect, useState } from "react";
import { getJson, isServerReachable, onServerReachable } from "./api";
import { Studio } from "./Studio";
import { Talk } from "./Talk";

type View = "talk" | "studio";

function viewFromHash(): View {
  return window.location.hash.startsWith("#/studio") ? "studio" : "talk";
}

export function App() {
  const [view, setView] = useState<View>(viewFromHash);

  useEffect(() => {
    const onHash = () => setView(viewFromHash());
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);

  const reachable = useServerReachable();

  return (
    <div className="app">
      <header className="topbar">
        <a className="brand" href="#/talk">
          <span className="logo" aria-hidden="true" />
          dself
        </a>
        <nav className="tabs">
          <a href="#/talk" className={view === "talk" ? "active" : ""} data-testid="tab-talk">
            Talk
          </a>
          <a href="#/studio" className={view === "studio" ? "active" : ""} data-testid="tab-studio">
            Studio
          </a>
        </nav>
        <div className="synthetic-badge" role="note" data-testid="synthetic-label">
          <span className="badge-icon" aria-hidden="true">
            AI
          </span>
          <span>
            Synthetic avatar <span className="badge-long">— not a real person speaking</span>
          </span>
        </div>
      </header>
      {!reachable && (
        <div className="offline-banner" role="alert" data-testid="offline-banner">
          Not connected to the dself server — it may be restarting. Retrying…
        </div>
      )}
      <main>{view === "talk" ? <Talk /> : <Studio />}</main>
    </div>
  );
}

/**
 * Whether the server answers, for the one connection notice of both pages: set by every request
 * (api.ts); while it does not answer, asked again every two seconds so that the notice clears
 * as soon as the server is back.
 */
function useServerReachable(): boolean {
  const [reachable, setReachable] = useState(isServerReachable());
  useEffect(() => onServerReachable(setReachable), []);
  useEffect(() => {
    if (reachable) return;
    const timer = window.setInterval(() => {
      getJson("/api/status").catch(() => undefined);
    }, 2000);
    return () => window.clearInterval(timer);
  }, [reachable]);
  return reachable;
}
