// The HTTP layer: JSON answers, error translation, request bodies and server-sent events.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <exception>
#include <new>

#include "core/error.h"
#include "server/detail/http.h"
#include "server/detail/requests.h"

namespace dself::server::detail {
namespace {

const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Handled reply_json(const Request& request, int status, const nlohmann::json& body) {
  auto response = request->create_response(
      restinio::http_status_line_t{restinio::http_status_code_t{static_cast<std::uint16_t>(status)},
                                   reason_phrase(status)});
  response.append_header(restinio::http_field::content_type, "application/json; charset=utf-8");
  response.append_header(restinio::http_field::cache_control, "no-store");
  if (status == 401) response.append_header(restinio::http_field::www_authenticate, "Bearer");
  // Replacement characters for invalid UTF-8 in what people said or sent, never a throw.
  response.set_body(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  return response.done();
}

Handled reply_error(const Request& request, int status, const std::string& message) {
  return reply_json(request, status, {{"error", message}});
}

Handled RequestHandler::operator()(Request request) const {
  std::string_view path = request->header().path();
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] != '%') continue;
    if (i + 2 >= path.size() || !std::isxdigit(static_cast<unsigned char>(path[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(path[i + 2]))) {
      return reply_error(request, 400, "the path has a malformed percent-encoding (% must be followed by two hex digits)");
    }
  }
  int hosts = 0;
  request->header().for_each_value_of(restinio::http_field::host, [&hosts](restinio::string_view_t) {
    ++hosts;
    return restinio::http_header_fields_t::continue_enumeration();
  });
  if (hosts != 1) {
    return reply_error(request, 400, fmt::format("the request has {} Host headers; HTTP/1.1 needs exactly one", hosts));
  }
  return (*router_)(std::move(request));
}

std::pair<int, std::string> error_status(const std::exception& e) {
  if (const auto* http = dynamic_cast<const HttpError*>(&e)) return {http->status(), http->what()};
  if (dynamic_cast<const std::bad_alloc*>(&e)) return {413, "the request is too large to handle"};
  switch (kind_of(e)) {
    case ErrorKind::user_input: return {400, describe(e)};
    case ErrorKind::environment: return {503, describe(e)};
    case ErrorKind::internal: break;
  }
  return {500, "internal error: " + describe(e)};
}

Handled guarded(const Request& request, const std::function<Handled()>& handler) noexcept {
  try {
    return handler();
  } catch (const std::exception& e) {
    auto [status, message] = error_status(e);
    if (status >= 500) {
      spdlog::error("{} {}: {}", request->header().method().c_str(),
                    std::string(request->header().path()), message);
    }
    try {
      return reply_error(request, status, message);
    } catch (...) {
      return restinio::request_rejected();
    }
  } catch (...) {
    try {
      return reply_error(request, 500, "internal error");
    } catch (...) {
      return restinio::request_rejected();
    }
  }
}

nlohmann::json json_body(const Request& request, size_t max_bytes) {
  const std::string& body = request->body();
  if (body.size() > max_bytes) {
    throw HttpError(413, "the request body is " + std::to_string(body.size()) + " bytes; at most " +
                             std::to_string(max_bytes) + " are accepted (dself serve --max-body-kb)");
  }
  std::string type = header(request, "Content-Type");
  if (type.rfind("application/json", 0) != 0) {
    throw HttpError(415, "send the body as JSON with Content-Type: application/json");
  }
  return parse_json_object(body);
}

std::optional<std::string> query_param(const Request& request, std::string_view name) {
  auto parsed = restinio::try_parse_query<restinio::parse_query_traits::javascript_compatible>(
      request->header().query());
  if (!parsed) throw HttpError(400, "the URL's query string is malformed");
  auto value = parsed->get_param(restinio::string_view_t(name.data(), name.size()));
  if (!value) return std::nullopt;
  return std::string(value->data(), value->size());
}

std::string header(const Request& request, std::string_view name) {
  return request->header().get_field_or(restinio::string_view_t(name.data(), name.size()), "");
}

std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    int high = hex_value(text[i + 1]);
    int low = hex_value(text[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Server-sent events

struct EventStream::Subscriber {
  std::mutex mutex;  // one writer at a time on the response
  restinio::response_builder_t<restinio::chunked_output_t> response;
  std::atomic<bool> failed{false};
  explicit Subscriber(restinio::response_builder_t<restinio::chunked_output_t> r) : response(std::move(r)) {}
};

Handled EventStream::subscribe(const Request& request,
                               const std::vector<std::pair<std::string, nlohmann::json>>& initial) {
  auto response = request->create_response<restinio::chunked_output_t>();
  response.append_header(restinio::http_field::content_type, "text/event-stream; charset=utf-8");
  response.append_header(restinio::http_field::cache_control, "no-store");
  auto subscriber = std::make_shared<Subscriber>(std::move(response));
  std::string first = "retry: 2000\n\n";
  for (const auto& [event, data] : initial) {
    first += "event: " + event + "\ndata: " + data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
             "\n\n";
  }
  send(subscriber, first);
  std::lock_guard lock(mutex_);
  subscribers_.push_back(subscriber);
  return restinio::request_accepted();
}

void EventStream::send(const std::shared_ptr<Subscriber>& subscriber, const std::string& text) {
  std::lock_guard lock(subscriber->mutex);
  if (subscriber->failed) return;
  try {
    subscriber->response.append_chunk(text);
    std::weak_ptr<Subscriber> weak = subscriber;
    subscriber->response.flush([weak](const asio::error_code& ec) {
      if (!ec) return;
      if (auto s = weak.lock()) s->failed = true;
    });
  } catch (const std::exception&) {
    subscriber->failed = true;
  }
}

void EventStream::publish(const std::string& event, const nlohmann::json& data) {
  std::string text =
      "event: " + event + "\ndata: " + data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n\n";
  std::lock_guard lock(mutex_);
  subscribers_.remove_if([](const auto& s) { return s->failed.load(); });
  for (const auto& subscriber : subscribers_) send(subscriber, text);
}

void EventStream::keepalive() {
  std::lock_guard lock(mutex_);
  subscribers_.remove_if([](const auto& s) { return s->failed.load(); });
  for (const auto& subscriber : subscribers_) send(subscriber, ": keepalive\n\n");
}

void EventStream::close_all() {
  std::lock_guard lock(mutex_);
  for (const auto& subscriber : subscribers_) {
    std::lock_guard sub_lock(subscriber->mutex);
    if (subscriber->failed) continue;
    try {
      subscriber->response.done();
    } catch (const std::exception&) {
    }
    subscriber->failed = true;
  }
  subscribers_.clear();
}

size_t EventStream::subscriber_count() const {
  std::lock_guard lock(mutex_);
  return subscribers_.size();
}

}  // namespace dself::server::detail
