// Test support, not part of dself: a small blocking HTTP/1.1 and WebSocket client for talking to
// `dself serve` over loopback, and a way to run `dself serve` as a child process; what the
// server's tests and benchmark use (no TLS, no redirects, one request per connection).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace dself::client {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
  int status = 0;  // 0: the connection closed before a whole response came
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
};

// Sends one request (Connection: close) and reads the whole response. A refused or reset
// connection gives status 0 rather than throwing.
HttpResponse http_request(const std::string& host, uint16_t port, const std::string& method, const std::string& target,
                          const std::string& body = {}, const HeaderList& headers = {}, double timeout_s = 30);

// Sends `head` (the request line and headers, ending with an empty line, exactly as given: for
// malformed requests) and `body`, and reads the response as http_request does.
HttpResponse http_raw(const std::string& host, uint16_t port, const std::string& head, const std::string& body = {},
                      double timeout_s = 30);

// Sends a GET and reads the (streamed) response until `enough` says so, the server closes, or
// the timeout passes; the body so far (chunked framing kept) is returned with the head.
HttpResponse http_stream(const std::string& host, uint16_t port, const std::string& target, const HeaderList& headers,
                         double timeout_s, const std::function<bool(const std::string& body)>& enough);

class WebSocketClient {
 public:
  struct Message {
    bool binary = false;
    std::string data;
  };

  WebSocketClient() = default;
  ~WebSocketClient();
  WebSocketClient(const WebSocketClient&) = delete;
  WebSocketClient& operator=(const WebSocketClient&) = delete;

  // Connects and asks to upgrade; returns the HTTP status (101 when open). The refusal's
  // response is in refusal().
  int open(const std::string& host, uint16_t port, const std::string& target, const HeaderList& headers = {},
           double timeout_s = 10);
  const HttpResponse& refusal() const { return refusal_; }

  bool send_text(const std::string& text);
  // One raw frame (masked, as a client must): for fragments and protocol tests.
  bool send_frame(uint8_t opcode, const std::string& payload, bool final = true);
  // The next data message; nothing on timeout or when the connection closed (then closed()).
  std::optional<Message> receive(double timeout_s);
  bool closed() const { return fd_ < 0 || peer_closed_; }
  uint16_t close_code() const { return close_code_; }
  // Sends a close frame and closes the socket without waiting.
  void close();

 private:
  bool read_exact(char* data, size_t size, double timeout_s);
  int fd_ = -1;
  bool peer_closed_ = false;
  uint16_t close_code_ = 0;
  std::string buffered_;  // bytes read past the upgrade response
  HttpResponse refusal_;
};

// `dself serve --port 0` as a child process: it binds a port the system picks, and `port` is the
// one it says it listens on. Stopped with SIGTERM when the object dies. stderr goes to `log`
// (e.g. /dev/null).
class ServeProcess {
 public:
  // Starts `binary --avatar AVATAR serve --port 0 OPTIONS...` and waits (up to 60 s) until it says
  // where it listens; `ready` tells whether it did.
  ServeProcess(const std::filesystem::path& binary, const std::filesystem::path& avatar,
               const std::vector<std::string>& options, const std::filesystem::path& log);
  ~ServeProcess();
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  // SIGTERM, and the exit status (waiting up to 20 s, then SIGKILL).
  int stop();
  bool alive() const;
  int pid() const { return pid_; }

  uint16_t port = 0;
  bool ready = false;

 private:
  pid_t pid_ = -1;
  int exit_status_ = -1;
};

}  // namespace dself::client
