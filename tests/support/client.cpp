// A blocking loopback client: HTTP/1.1 (Connection: close) and WebSocket (RFC 6455, client side).
#include "support/client.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>
#include <restinio/utils/base64.hpp>

namespace dself::client {
namespace {

using Clock = std::chrono::steady_clock;

int connect_to(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return -1;
  int fd = -1;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    ::close(fd);
    fd = -1;
  }
  freeaddrinfo(found);
  if (fd >= 0) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return fd;
}

bool write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Reads into `in` until the timeout passes or the peer closes; false on timeout with nothing.
bool read_some(int fd, std::string& in, double timeout_s) {
  pollfd p{fd, POLLIN, 0};
  int ready = poll(&p, 1, static_cast<int>(timeout_s * 1000));
  if (ready <= 0) return false;
  char buffer[65536];
  ssize_t n = recv(fd, buffer, sizeof buffer, 0);
  if (n <= 0) return false;
  in.append(buffer, static_cast<size_t>(n));
  return true;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Parses the status line and headers of `raw` up to the blank line; false when incomplete.
bool parse_head(const std::string& raw, HttpResponse& response, size_t& body_start) {
  size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  body_start = end + 4;
  size_t line_end = raw.find("\r\n");
  std::string status_line = raw.substr(0, line_end);
  size_t space = status_line.find(' ');
  response.status = space == std::string::npos ? 0 : std::atoi(status_line.c_str() + space + 1);
  size_t pos = line_end + 2;
  while (pos < end) {
    size_t next = raw.find("\r\n", pos);
    std::string line = raw.substr(pos, next - pos);
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      response.headers[lower(line.substr(0, colon))] = value;
    }
    pos = next + 2;
  }
  return true;
}

std::string dechunk(const std::string& body) {
  std::string out;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t line_end = body.find("\r\n", pos);
    if (line_end == std::string::npos) break;
    size_t size = std::strtoul(body.substr(pos, line_end - pos).c_str(), nullptr, 16);
    if (size == 0) break;
    out += body.substr(line_end + 2, size);
    pos = line_end + 2 + size + 2;
  }
  return out;
}

std::string request_head(const std::string& host, uint16_t port, const std::string& method, const std::string& target,
                         const HeaderList& headers) {
  std::string head = method + " " + target + " HTTP/1.1\r\n";
  bool has_host = false;
  for (const auto& [name, value] : headers) has_host = has_host || lower(name) == "host";
  if (!has_host) head += "Host: " + host + ":" + std::to_string(port) + "\r\n";
  for (const auto& [name, value] : headers) head += name + ": " + value + "\r\n";
  return head;
}

}  // namespace

HttpResponse http_request(const std::string& host, uint16_t port, const std::string& method, const std::string& target,
                          const std::string& body, const HeaderList& headers, double timeout_s) {
  std::string head = request_head(host, port, method, target, headers);
  head += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  return http_raw(host, port, head, body, timeout_s);
}

HttpResponse http_raw(const std::string& host, uint16_t port, const std::string& head, const std::string& body,
                      double timeout_s) {
  HttpResponse response;
  int fd = connect_to(host, port);
  if (fd < 0) return response;
  // A server may answer (or close) before taking the whole body: that is a response too.
  bool sent = write_all(fd, head.data(), head.size()) && write_all(fd, body.data(), body.size());
  (void)sent;
  std::string raw;
  auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  size_t body_start = 0;
  while (Clock::now() < deadline) {
    double left = std::chrono::duration<double>(deadline - Clock::now()).count();
    if (!read_some(fd, raw, std::max(0.001, left))) break;
    if (parse_head(raw, response, body_start)) {
      auto it = response.headers.find("content-length");
      if (it != response.headers.end() && raw.size() >= body_start + std::stoul(it->second)) break;
    }
  }
  ::close(fd);
  HttpResponse parsed;
  if (!parse_head(raw, parsed, body_start)) return HttpResponse{};
  parsed.body = raw.substr(body_start);
  auto it = parsed.headers.find("transfer-encoding");
  if (it != parsed.headers.end() && lower(it->second).find("chunked") != std::string::npos) parsed.body = dechunk(parsed.body);
  auto length = parsed.headers.find("content-length");
  if (length != parsed.headers.end() && parsed.body.size() < std::stoul(length->second)) parsed.status = 0;
  return parsed;
}

HttpResponse http_stream(const std::string& host, uint16_t port, const std::string& target, const HeaderList& headers,
                         double timeout_s, const std::function<bool(const std::string& body)>& enough) {
  HttpResponse response;
  int fd = connect_to(host, port);
  if (fd < 0) return response;
  std::string head = request_head(host, port, "GET", target, headers) + "Connection: close\r\n\r\n";
  std::string raw;
  size_t body_start = 0;
  if (write_all(fd, head.data(), head.size())) {
    auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
    while (Clock::now() < deadline) {
      double left = std::chrono::duration<double>(deadline - Clock::now()).count();
      if (!read_some(fd, raw, std::max(0.001, left))) break;
      HttpResponse partial;
      if (parse_head(raw, partial, body_start) && enough(raw.substr(body_start))) break;
    }
  }
  ::close(fd);
  if (parse_head(raw, response, body_start)) response.body = raw.substr(body_start);
  return response;
}

WebSocketClient::~WebSocketClient() {
  if (fd_ >= 0) ::close(fd_);
}

int WebSocketClient::open(const std::string& host, uint16_t port, const std::string& target, const HeaderList& headers,
                          double timeout_s) {
  fd_ = connect_to(host, port);
  if (fd_ < 0) return 0;
  std::random_device random;
  std::string key_bytes(16, '\0');
  for (char& c : key_bytes) c = static_cast<char>(random());
  std::string head = request_head(host, port, "GET", target, headers);
  head += "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " +
          restinio::utils::base64::encode(key_bytes) + "\r\n\r\n";
  if (!write_all(fd_, head.data(), head.size())) return 0;
  std::string raw;
  size_t body_start = 0;
  auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  HttpResponse response;
  while (!parse_head(raw, response, body_start)) {
    double left = std::chrono::duration<double>(deadline - Clock::now()).count();
    if (left <= 0 || !read_some(fd_, raw, left)) return 0;
  }
  if (response.status != 101) {
    auto it = response.headers.find("content-length");
    size_t length = it == response.headers.end() ? 0 : std::stoul(it->second);
    while (raw.size() < body_start + length && read_some(fd_, raw, 2)) {
    }
    response.body = raw.substr(body_start);
    refusal_ = response;
    ::close(fd_);
    fd_ = -1;
    return response.status;
  }
  buffered_ = raw.substr(body_start);
  return 101;
}

bool WebSocketClient::send_frame(uint8_t opcode, const std::string& payload, bool final) {
  if (fd_ < 0) return false;
  std::string frame;
  frame += static_cast<char>((final ? 0x80 : 0) | (opcode & 0x0f));
  size_t size = payload.size();
  if (size < 126) {
    frame += static_cast<char>(0x80 | size);
  } else if (size < 65536) {
    frame += static_cast<char>(0x80 | 126);
    frame += static_cast<char>(size >> 8);
    frame += static_cast<char>(size & 0xff);
  } else {
    frame += static_cast<char>(0x80 | 127);
    for (int shift = 56; shift >= 0; shift -= 8) frame += static_cast<char>((size >> shift) & 0xff);
  }
  std::random_device random;
  char mask[4];
  for (char& m : mask) m = static_cast<char>(random());
  frame.append(mask, 4);
  size_t start = frame.size();
  frame += payload;
  for (size_t i = 0; i < size; ++i) frame[start + i] = static_cast<char>(frame[start + i] ^ mask[i % 4]);
  return write_all(fd_, frame.data(), frame.size());
}

bool WebSocketClient::send_text(const std::string& text) { return send_frame(0x1, text); }

bool WebSocketClient::read_exact(char* data, size_t size, double timeout_s) {
  auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  while (buffered_.size() < size) {
    double left = std::chrono::duration<double>(deadline - Clock::now()).count();
    if (left <= 0 || !read_some(fd_, buffered_, left)) return false;
  }
  std::memcpy(data, buffered_.data(), size);
  buffered_.erase(0, size);
  return true;
}

std::optional<WebSocketClient::Message> WebSocketClient::receive(double timeout_s) {
  Message message;
  while (fd_ >= 0 && !peer_closed_) {
    unsigned char head[2];
    if (!read_exact(reinterpret_cast<char*>(head), 2, timeout_s)) {
      // Nothing within the timeout, or the peer went away: tell them apart.
      pollfd p{fd_, POLLIN, 0};
      if (buffered_.empty() && poll(&p, 1, 0) > 0) {
        char c;
        if (recv(fd_, &c, 1, MSG_PEEK) <= 0) peer_closed_ = true;
      }
      return std::nullopt;
    }
    uint8_t opcode = head[0] & 0x0f;
    bool final = head[0] & 0x80;
    uint64_t size = head[1] & 0x7f;
    if (size == 126) {
      unsigned char ext[2];
      if (!read_exact(reinterpret_cast<char*>(ext), 2, timeout_s)) return std::nullopt;
      size = (uint64_t{ext[0]} << 8) | ext[1];
    } else if (size == 127) {
      unsigned char ext[8];
      if (!read_exact(reinterpret_cast<char*>(ext), 8, timeout_s)) return std::nullopt;
      size = 0;
      for (unsigned char b : ext) size = (size << 8) | b;
    }
    std::string payload(size, '\0');
    if (size > 0 && !read_exact(payload.data(), size, timeout_s)) return std::nullopt;
    if (opcode == 0x8) {
      if (payload.size() >= 2) close_code_ = static_cast<uint16_t>((uint8_t(payload[0]) << 8) | uint8_t(payload[1]));
      peer_closed_ = true;
      return std::nullopt;
    }
    if (opcode == 0x9) {
      send_frame(0xA, payload);
      continue;
    }
    if (opcode == 0xA) continue;
    if (opcode != 0x0) message.binary = opcode == 0x2;
    message.data += payload;
    if (final) return message;
  }
  return std::nullopt;
}

void WebSocketClient::close() {
  if (fd_ < 0) return;
  send_frame(0x8, std::string("\x03\xe8", 2));
  ::close(fd_);
  fd_ = -1;
}

}  // namespace dself::client

namespace dself::client {

ServeProcess::ServeProcess(const std::filesystem::path& binary, const std::filesystem::path& avatar,
                           const std::vector<std::string>& options, const std::filesystem::path& log) {
  // --port 0: the server binds a port the system picks and says which; no race for a free one.
  std::vector<std::string> argv = {binary.string(), "--avatar", avatar.string(), "serve", "--port", "0"};
  argv.insert(argv.end(), options.begin(), options.end());
  int out[2];
  if (pipe(out) != 0) return;
  pid_ = fork();
  if (pid_ == 0) {
    dup2(out[1], STDOUT_FILENO);
    int err = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(err, STDERR_FILENO);
    ::close(out[0]);
    std::vector<char*> c_args;
    for (auto& a : argv) c_args.push_back(a.data());
    c_args.push_back(nullptr);
    execv(c_args[0], c_args.data());
    _exit(127);
  }
  ::close(out[1]);
  // Ready when it says where it listens: "dself serve: listening on http://HOST:PORT/ ..." (README).
  const std::string marker = "dself serve: listening on http://";
  std::string said;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline && said.find('\n', said.find(marker)) == std::string::npos) {
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    char buffer[512];
    ssize_t n = read(out[0], buffer, sizeof buffer);
    if (n <= 0) break;
    said.append(buffer, static_cast<size_t>(n));
  }
  ::close(out[0]);
  size_t at = said.find(marker);
  size_t slash = at == std::string::npos ? std::string::npos : said.find('/', at + marker.size());
  size_t colon = slash == std::string::npos ? std::string::npos : said.rfind(':', slash);
  if (colon != std::string::npos && colon > at + marker.size()) {
    port = static_cast<uint16_t>(std::stoi(said.substr(colon + 1, slash - colon - 1)));
    ready = port != 0;
  }
}

ServeProcess::~ServeProcess() { stop(); }

int ServeProcess::stop() {
  if (pid_ <= 0) return exit_status_;
  kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pid_ = -1;
  exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return exit_status_;
}

bool ServeProcess::alive() const { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }

}  // namespace dself::client
