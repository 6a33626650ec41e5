#!/usr/bin/python3
"""A loopback HTTP server for dself's ingest tests: serves a directory like `python3 -m
http.server`, and can misbehave on video files to stand in for a bad network.

Usage: ingest_http_server.py DIR [--port N]
Prints "port N" on its first line of stdout once it accepts connections (N is the port it got
when given 0). The behaviour for files ending in .mp4 is read from DIR/.server-mode on every
request, so that a test can change it without restarting the server:
  ok        serve the file (the default, also when .server-mode is absent)
  truncate  send the headers with the full Content-Length, then half the bytes, then close:
            an interrupted download
  slow      send the file in 4 KiB pieces, 50 ms apart: a download that can be killed halfway
"""
import argparse
import functools
import http.server
import os
import sys
import time


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass  # keep the test output readable

    def mode(self):
        try:
            with open(os.path.join(self.directory, ".server-mode")) as f:
                return f.read().strip() or "ok"
        except OSError:
            return "ok"

    def copyfile(self, source, outputfile):
        try:
            self.send_body(source, outputfile)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away (a killed download): not news

    def send_body(self, source, outputfile):
        mode = self.mode() if self.path.split("?")[0].endswith(".mp4") else "ok"
        if mode == "truncate":
            data = source.read()
            outputfile.write(data[: len(data) // 2])
            outputfile.flush()
            self.close_connection = True
        elif mode == "slow":
            while True:
                piece = source.read(4096)
                if not piece:
                    break
                outputfile.write(piece)
                outputfile.flush()
                time.sleep(0.05)
        else:
            super().copyfile(source, outputfile)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    handler = functools.partial(Handler, directory=args.dir)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    server.daemon_threads = True
    print(f"port {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
