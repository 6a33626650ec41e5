// The shell: a header with the two views and the synthetic-avatar label, always on screen.
// Views are chosen by the URL's hash (#/talk, #/studio) so the server needs no routes for them
// and `?token=` in the query stays untouched.

import { useEffect, useState } from "react";
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
      <main>{view === "talk" ? <Talk /> : <Studio />}</main>
    </div>
  );
}
