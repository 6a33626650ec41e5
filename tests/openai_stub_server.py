#!/usr/bin/env python3
"""A loopback stand-in for an OpenAI-compatible chat completions server, for dself's tests.

It is not a language model: it streams a fixed reply. The model name picks the behaviour:
  ok         streams "I bake ", "bread every ", "week." as server-sent events, then [DONE]
  status401  answers HTTP 401 with an OpenAI-style JSON error
  malformed  sends an event that is not JSON
  slow       waits 5 s before answering (for timeout tests)
  endless    streams a piece every 0.1 s for 60 s; writes <record_dir>/disconnected when the client
             closes the connection before the end (or <record_dir>/finished at the end)
Each request body is written to <record_dir>/request.json. Prints the port it bound, then serves.
Usage: openai_stub_server.py RECORD_DIR
"""
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        with open(os.path.join(sys.argv[1], "request.json"), "w") as f:
            json.dump({"path": self.path, "authorization": self.headers.get("Authorization"), "body": body}, f)
        model = body.get("model")
        if model == "status401":
            payload = json.dumps({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload.encode())
            return
        if model == "slow":
            time.sleep(5)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        if model == "endless":
            try:
                for i in range(600):
                    chunk = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "word%d " % i}}]}
                    self.wfile.write(("data: " + json.dumps(chunk) + "\n\n").encode())
                    self.wfile.flush()
                    time.sleep(0.1)
                self.wfile.write(b"data: [DONE]\n\n")
                open(os.path.join(sys.argv[1], "finished"), "w").close()
            except (BrokenPipeError, ConnectionResetError):
                open(os.path.join(sys.argv[1], "disconnected"), "w").close()
            return
        if model == "malformed":
            self.wfile.write(b"data: {this is not json\n\n")
            return
        for piece in ["I bake ", "bread every ", "week."]:
            chunk = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": piece}}]}
            self.wfile.write(("data: " + json.dumps(chunk) + "\n\n").encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
