#!/bin/sh
# End-to-end test of the web UI: a real `dself serve` on a copy of the prepared sample avatar,
# driven by web/e2e/e2e.mjs in Debian's headless Chromium; with SAMPLE (the sample person's
# videos and captions), first a new user's journey from an empty avatar on a server the test
# starts and restarts itself. Screenshots go to ARTIFACTS.
#
#   tests/e2e_web.sh DSELF PREPARED_AVATAR WEB_DIR ARTIFACTS [SAMPLE]
set -eu

dself=$1
avatar=$2
web=$3
artifacts=$4
sample=${5:-}

fail() { echo "e2e_web: $*" >&2; exit 1; }
[ -x "$dself" ] || fail "no dself binary at $dself"
[ -d "$avatar" ] || fail "no prepared avatar at $avatar"
[ -f "$web/dist/index.html" ] || fail "the web UI is not built: run 'make web' (cd web && npm ci && npm run build)"
[ -d "$web/node_modules/playwright-core" ] || fail "playwright-core is missing: run 'cd web && npm ci'"
command -v node >/dev/null || fail "node is not installed"
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || fail "Chromium is missing: run scripts/setup.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/dself-e2e-web.XXXXXX")
server=""
cleanup() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

cp -R "$avatar" "$work/avatar"
# The fixture is too small for prepare to hold any speech out, or to train on; the Train panel's
# player needs a held-out sentence, so this copy marks the last source's last clip held out (as
# prepare does on a longer avatar).
python3 - "$work/avatar/speech" <<'PY' || fail "cannot mark a held-out clip in the avatar's copy"
import json, os, sys
root = sys.argv[1]
ids = sorted((d for d in os.listdir(root) if d.isdigit()), key=int)
path = os.path.join(root, ids[-1], "utterances.json")
with open(path) as f:
    dataset = json.load(f)
dataset["utterances"][-1]["split"] = "held_out"
with open(path, "w") as f:
    json.dump(dataset, f)
# ... and the curve of a voice run that stopped (checkpoint/state.json as train_voice writes it), so
# that the panel draws the train and held-out losses.
checkpoint = os.path.join(os.path.dirname(root), "models", "voice", "checkpoint")
os.makedirs(checkpoint, exist_ok=True)
curve = [{"step": s, "train_loss": 2.0 / (1 + s / 100), "held_out_loss": 2.2 / (1 + s / 120), "elapsed_s": s * 0.1}
         for s in range(25, 201, 25)]
with open(os.path.join(checkpoint, "state.json"), "w") as f:
    json.dump({"hash": "e2e", "step": 200, "step_count": 800, "curve": curve}, f)
PY
rm -rf "$artifacts"
mkdir -p "$artifacts"

# --port 0: the server binds a free port and says which (README: the "listening on" line).
"$dself" --avatar "$work/avatar" serve --port 0 --web-root "$web/dist" >"$artifacts/server.log" 2>&1 &
server=$!
port=""
for _ in $(seq 600); do
  port=$(sed -n 's|^dself serve: listening on http://127\.0\.0\.1:\([0-9][0-9]*\)/.*|\1|p' "$artifacts/server.log")
  [ -n "$port" ] && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
[ -n "$port" ] || { cat "$artifacts/server.log" >&2; fail "dself serve did not say where it listens"; }

url="http://127.0.0.1:$port"
python3 - "$url" "$server" <<'PY' || { cat "$artifacts/server.log" >&2; fail "dself serve did not answer on $url"; }
import os, sys, time, urllib.request
url, pid = sys.argv[1], int(sys.argv[2])
deadline = time.time() + 60
while time.time() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("dself serve exited")
    try:
        with urllib.request.urlopen(url + "/api/status", timeout=2) as r:
            if r.status == 200:
                sys.exit(0)
    except Exception:
        pass
    time.sleep(0.2)
sys.exit("timed out")
PY

status=0
# The person's own speech (the first source's audio) is what the fake microphone says.
if [ -n "$sample" ]; then
  [ -f "$sample/video_000.mp4" ] || fail "no sample person in $sample"
  # The journey's empty avatar lives under TMPDIR; e2e.mjs removes nothing there, so point it here.
  TMPDIR=$work node "$web/e2e/e2e.mjs" --url "$url" --out "$artifacts" --voice-wav "$work/avatar/audio/1.wav" \
    --dself "$dself" --sample "$sample" --web-root "$web/dist" || status=$?
else
  node "$web/e2e/e2e.mjs" --url "$url" --out "$artifacts" --voice-wav "$work/avatar/audio/1.wav" || status=$?
fi
echo "e2e_web: screenshots and logs in $artifacts"
exit $status
