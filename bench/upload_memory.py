#!/usr/bin/env python3
"""Peak resident memory of `dself serve` while it receives one upload (VmHWM before and after).

    python3 bench/upload_memory.py build/app/dself parts 256   # in 8 MiB parts, as the web UI sends
    python3 bench/upload_memory.py build/app/dself whole 8     # one request (at most 8 MiB)

Prints one line; it asserts nothing (a figure for the README, not a test).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

PART = 8 << 20  # the server's kUploadPartBytes


def peak_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    if len(sys.argv) != 4 or sys.argv[2] not in ("parts", "whole"):
        sys.exit(__doc__)
    dself, mode, mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
    work = tempfile.mkdtemp(prefix="dself-upload-memory-")
    server = subprocess.Popen([dself, "--avatar", os.path.join(work, "avatar"), "serve", "--port", "0", "--web-root", work],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(re.search(r":(\d+)/", server.stdout.readline()).group(1))
        data = os.urandom(mib << 20)
        before = peak_mib(server.pid)
        base = f"http://127.0.0.1:{port}/api/uploads?name=big.mp4&ingest=0"
        chunks = [(o, data[o:o + PART]) for o in range(0, len(data), PART)] if mode == "parts" else [(None, data)]
        status = 0
        for offset, chunk in chunks:
            url = base if offset is None else f"{base}&offset={offset}&total={len(data)}"
            try:
                with urllib.request.urlopen(urllib.request.Request(url, data=chunk, method="POST")) as r:
                    status = r.status
            except urllib.error.HTTPError as e:
                status = e.code
            except OSError as e:
                status = f"closed ({e})"
        print(f"{mode}, {mib} MiB: HTTP {status}; peak RSS {before:.0f} MiB before, {peak_mib(server.pid):.0f} MiB after")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
