// The openai engine: an OpenAI-compatible chat completions server, streamed (server-sent
// events), grounded in the passages retrieved for the question.
// ref: https://platform.openai.com/docs/api-reference/chat/create ("stream": true sends
// "data: {chunk}" lines with choices[0].delta.content, ending with "data: [DONE]").
#include <curl/curl.h>
#include <cmath>
#include <exception>
#include <fmt/format.h>
#include <memory>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "persona/detail/text.h"
#include "persona/persona.h"

namespace dself::persona {

namespace {
std::string clock_of(double s) {
  int total = static_cast<int>(s);
  return fmt::format("{}:{:02}", total / 60, total % 60);
}
}  // namespace

// The system prompt of the engines that generate (openai, llm): speak as the person, from the
// retrieved passages only.
std::string system_prompt(const PersonaCard& card, const std::vector<Hit>& hits) {
  std::string p =
      "You are speaking as the person in these videos, in the first person, in their own words and style. "
      "Use only what they said in the passages below; if the passages do not answer the question, say plainly "
      "that you have not talked about that. Keep replies short, like their sentences (about " +
      fmt::format("{:.0f}", card.mean_sentence_words) + " words each).\n";
  if (!card.greetings.empty()) p += "They open videos with: \"" + card.greetings.front().text + "\"\n";
  if (!card.sign_offs.empty()) p += "They close videos with: \"" + card.sign_offs.front().text + "\"\n";
  if (!card.distinctive_terms.empty()) {
    p += "Words they use often:";
    for (size_t i = 0; i < card.distinctive_terms.size() && i < 15; ++i) p += " " + card.distinctive_terms[i].text;
    p += "\n";
  }
  if (!card.facts.empty()) {
    p += "Things they said about themselves:\n";
    for (size_t i = 0; i < card.facts.size() && i < 15; ++i) p += "- " + as_sentence(card.facts[i].text) + "\n";
  }
  p += "Passages (what they said, with where):\n";
  for (size_t i = 0; i < hits.size(); ++i) {
    p += fmt::format("[{}] \"{}\" ({}, {}-{})\n", i + 1, hits[i].ref.text, hits[i].ref.title,
                     clock_of(hits[i].ref.start_s), clock_of(hits[i].ref.end_s));
  }
  return p;
}

namespace {



// libcurl once per process: curl_global_init is not thread-safe, and live sessions make engines
// on their own threads. ref: https://curl.se/libcurl/c/curl_global_init.html ("call it once,
// before any other thread"). A function-local static is initialised exactly once (C++11).
void init_curl_once() {
  static const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (rc != CURLE_OK) {
    throw EnvironmentError(fmt::format("cannot start libcurl: {}", curl_easy_strerror(rc)));
  }
}

struct CurlEasyDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
struct CurlListDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using CurlEasy = std::unique_ptr<CURL, CurlEasyDeleter>;
using CurlList = std::unique_ptr<curl_slist, CurlListDeleter>;

// Appends a header; the list is freed by its owner whatever happens.
void append_header(CurlList& list, const std::string& header) {
  curl_slist* longer = curl_slist_append(list.get(), header.c_str());
  if (!longer) throw std::bad_alloc();
  list.release();
  list.reset(longer);
}

struct Stream {
  std::string url;
  CURL* curl = nullptr;
  const TextCallback* on_text = nullptr;
  std::string pending;  // bytes of an unfinished line
  std::string reply;
  std::string error_body;  // first bytes of a non-2xx answer
  std::string malformed;   // why the stream was not understood
  long status = 0;
  bool done = false;
  bool stopped = false;          // the text callback asked to stop
  std::exception_ptr failure;    // thrown while handling a chunk: rethrown once curl has returned

  // One line of the event stream; returns false to abort the transfer.
  bool line(std::string text) {
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.empty() || text[0] == ':') return true;  // event separator, comment
    if (text.rfind("data:", 0) != 0) return true;     // event:, id:, retry: fields carry nothing we use
    std::string data = text.substr(5);
    if (!data.empty() && data[0] == ' ') data.erase(0, 1);
    if (data == "[DONE]") {
      done = true;
      return true;
    }
    nlohmann::json chunk = nlohmann::json::parse(data, nullptr, false);
    if (chunk.is_discarded() || !chunk.is_object()) {
      malformed = fmt::format("an event is not JSON: \"{}\"", data.substr(0, 120));
      return false;
    }
    if (chunk.contains("error")) {
      malformed = fmt::format("the server reported an error: {}", chunk["error"].dump().substr(0, 300));
      return false;
    }
    if (!chunk.contains("choices") || !chunk["choices"].is_array()) {
      malformed = fmt::format("an event has no \"choices\": \"{}\"", data.substr(0, 120));
      return false;
    }
    for (const auto& choice : chunk["choices"]) {
      if (choice.contains("delta") && choice["delta"].contains("content") && choice["delta"]["content"].is_string()) {
        std::string piece = choice["delta"]["content"].get<std::string>();
        reply += piece;
        if (*on_text && !piece.empty() && !(*on_text)(piece)) {
          stopped = true;
          return false;
        }
      }
    }
    return true;
  }

  // libcurl's write callback: C code calls it, so nothing may unwind out of it; returning a
  // count other than `bytes` aborts the transfer (CURLE_WRITE_ERROR).
  static size_t write(char* data, size_t size, size_t n, void* self_ptr) noexcept {
    auto* self = static_cast<Stream*>(self_ptr);
    try {
      return self->take(data, size * n);
    } catch (...) {
      self->failure = std::current_exception();
      return 0;
    }
  }

  size_t take(char* data, size_t bytes) {
    if (status == 0) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status >= 300) {
      if (error_body.size() < 2000) error_body.append(data, bytes);
      return bytes;
    }
    pending.append(data, bytes);
    size_t start = 0;
    while (true) {
      size_t end = pending.find('\n', start);
      if (end == std::string::npos) break;
      if (!line(pending.substr(start, end - start))) return 0;
      start = end + 1;
    }
    pending.erase(0, start);
    return bytes;
  }
};

class OpenAiEngine : public ChatEngine {
 public:
  OpenAiEngine(const Memory& memory, OpenAiOptions options) : memory_(memory), options_(std::move(options)) {
    init_curl_once();
  }
  std::string name() const override { return "openai"; }

  Reply reply(const std::vector<Message>& history, const TextCallback& on_text) override {
    std::string question;
    for (auto it = history.rbegin(); it != history.rend() && question.empty(); ++it) {
      if (it->role == "user") question = it->text;
    }
    auto hits = memory_.search(question, memory_.params().retrieve_k);
    nlohmann::json messages = nlohmann::json::array();
    messages.push_back({{"role", "system"}, {"content", system_prompt(memory_.card(), hits)}});
    for (const auto& m : history) messages.push_back({{"role", m.role}, {"content", m.text}});
    nlohmann::json body = {
        {"model", options_.model}, {"messages", messages}, {"stream", true}, {"max_tokens", options_.max_tokens}};

    std::string url = options_.url;
    while (!url.empty() && url.back() == '/') url.pop_back();
    if (url.size() < 17 || url.compare(url.size() - 17, 17, "/chat/completions") != 0) url += "/chat/completions";

    Stream stream;
    stream.url = url;
    stream.on_text = &on_text;
    CurlEasy curl(curl_easy_init());
    if (!curl) throw EnvironmentError("cannot start an HTTP client (curl_easy_init failed)");
    stream.curl = curl.get();
    std::string payload = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    CurlList headers;
    append_header(headers, "Content-Type: application/json");
    append_header(headers, "Accept: text/event-stream");
    if (!options_.api_key.empty()) append_header(headers, "Authorization: Bearer " + options_.api_key);
    curl_easy_setopt(stream.curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(stream.curl, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(stream.curl, CURLOPT_POSTFIELDS, payload.c_str());
    curl_easy_setopt(stream.curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
    curl_easy_setopt(stream.curl, CURLOPT_WRITEFUNCTION, &Stream::write);
    curl_easy_setopt(stream.curl, CURLOPT_WRITEDATA, &stream);
    curl_easy_setopt(stream.curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout_s * 1000));
    curl_easy_setopt(stream.curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout_s * 1000));
    curl_easy_setopt(stream.curl, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(stream.curl);
    if (stream.status == 0) curl_easy_getinfo(stream.curl, CURLINFO_RESPONSE_CODE, &stream.status);
    // The connection closes now (not when the reply is returned): the server stops generating.
    curl.reset();
    headers.reset();
    stream.curl = nullptr;
    if (stream.failure) std::rethrow_exception(stream.failure);
    if (stream.stopped) return finished(stream, hits);

    if (!stream.malformed.empty()) {
      throw EnvironmentError(fmt::format("malformed stream from the LLM server at {}: {}", url, stream.malformed));
    }
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      throw EnvironmentError(
          fmt::format("the LLM server at {} did not answer within {} s; is it overloaded? "
                      "(raise the limit with --llm-timeout)",
                      url, options_.timeout_s));
    }
    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST) {
      throw EnvironmentError(
          fmt::format("cannot connect to the LLM server at {}: {}; is it running, and is "
                      "--llm-url right?",
                      url, curl_easy_strerror(rc)));
    }
    if (rc != CURLE_OK) {
      throw EnvironmentError(fmt::format("request to the LLM server at {} failed: {}", url, curl_easy_strerror(rc)));
    }
    if (stream.status < 200 || stream.status >= 300) {
      std::string message = stream.error_body;
      auto json = nlohmann::json::parse(stream.error_body, nullptr, false);
      if (!json.is_discarded() && json.contains("error")) {
        message = json["error"].is_object() && json["error"].contains("message") ? json["error"]["message"].dump()
                                                                                 : json["error"].dump();
      }
      throw EnvironmentError(fmt::format("the LLM server at {} answered HTTP {}: {}{}", url, stream.status,
                                         message.substr(0, 300),
                                         stream.status == 401 ? " (set DSELF_LLM_API_KEY)" : ""));
    }
    if (!stream.pending.empty()) stream.line(stream.pending);
    if (!stream.done && stream.reply.empty()) {
      throw EnvironmentError(
          fmt::format("malformed stream from the LLM server at {}: it ended without any text "
                      "or [DONE]",
                      url));
    }
    return finished(stream, hits);
  }

 private:
  // The reply so far; stopped when the text callback said so (then it is what came before).
  static Reply finished(const Stream& stream, const std::vector<Hit>& hits) {
    Reply reply;
    reply.text = stream.reply;
    reply.kind = "answer";
    reply.stopped = stream.stopped;
    for (const auto& h : hits) reply.sources.push_back(h.ref);
    reply.grounded = !hits.empty();
    return reply;
  }

  const Memory& memory_;
  OpenAiOptions options_;
};

}  // namespace

void check_openai_options(const OpenAiOptions& options) {
  if (options.url.empty() || options.model.empty()) {
    throw InputError("--engine openai needs --llm-url URL and --llm-model NAME");
  }
  if (!options.url.starts_with("http://") && !options.url.starts_with("https://")) {
    throw InputError(fmt::format("--llm-url {}: give the http:// or https:// base URL of an OpenAI-compatible "
                                 "server, e.g. http://127.0.0.1:8000/v1",
                                 options.url));
  }
  if (!std::isfinite(options.timeout_s) || options.timeout_s <= 0) {
    throw InputError(fmt::format("--llm-timeout {}: give a positive number of seconds, e.g. 120", options.timeout_s));
  }
}

std::unique_ptr<ChatEngine> make_openai_engine(const Memory& memory, const OpenAiOptions& options) {
  check_openai_options(options);
  return std::make_unique<OpenAiEngine>(memory, options);
}

}  // namespace dself::persona
