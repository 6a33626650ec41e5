// The server's HTTP layer on RESTinio: its traits, JSON answers, errors as {"error": ...} with
// their status, request bodies, and server-sent events.
#pragma once

#include <atomic>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <restinio/all.hpp>
#include <stdexcept>
#include <string>
#include <string_view>

namespace dself::server::detail {

using Router = restinio::router::express_router_t<>;
using Request = restinio::request_handle_t;
using Handled = restinio::request_handling_status_t;

// What RESTinio calls with every request: answers 400 to what the router cannot take (a path
// with a malformed percent-encoding, which the router would refuse by closing the connection;
// no Host header or more than one, RFC 9112 §3.2), and routes the rest.
class RequestHandler {
 public:
  explicit RequestHandler(std::unique_ptr<Router> router) : router_(std::move(router)) {}
  Handled operator()(Request request) const;

 private:
  std::unique_ptr<Router> router_;
};

// A thread pool of I/O threads (strands per connection), the router behind RequestHandler.
struct Traits : public restinio::default_traits_t {
  using request_handler_t = RequestHandler;
};

// A failure that is answered with this HTTP status and {"error": message}.
class HttpError : public std::runtime_error {
 public:
  HttpError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

// Answers with a JSON body (and no caching: everything under /api/ is live).
Handled reply_json(const Request& request, int status, const nlohmann::json& body);
Handled reply_error(const Request& request, int status, const std::string& message);

// Runs a handler and translates what it throws (STYLE.md: no exception escapes a handler):
// HttpError keeps its status, InputError is 400, EnvironmentError 503, anything else 500.
Handled guarded(const Request& request, const std::function<Handled()>& handler) noexcept;

// The status and message a caught exception is answered with (see guarded).
std::pair<int, std::string> error_status(const std::exception& e);

// The request's body as a JSON object; HttpError 413 above max_bytes, 415 unless the
// Content-Type is application/json, 400 when it is not a JSON object.
nlohmann::json json_body(const Request& request, size_t max_bytes);

// A query parameter, percent-decoded; nothing when absent. HttpError 400 for a malformed query.
std::optional<std::string> query_param(const Request& request, std::string_view name);

// A request header's value; empty when absent.
std::string header(const Request& request, std::string_view name);

// Percent-decodes a URL path; nothing for a malformed escape.
std::optional<std::string> percent_decode(std::string_view text);

// Server-sent events (GET /api/events): every subscriber gets each published event; a
// subscriber whose connection fails is dropped on its next write.
class EventStream {
 public:
  // Starts the stream on this request's connection; `initial` events are sent first.
  Handled subscribe(const Request& request, const std::vector<std::pair<std::string, nlohmann::json>>& initial);
  void publish(const std::string& event, const nlohmann::json& data);
  // A comment line to every subscriber, so that closed connections are noticed.
  void keepalive();
  void close_all();
  size_t subscriber_count() const;

 private:
  struct Subscriber;
  void send(const std::shared_ptr<Subscriber>& subscriber, const std::string& text);

  mutable std::mutex mutex_;
  std::list<std::shared_ptr<Subscriber>> subscribers_;
};

}  // namespace dself::server::detail
