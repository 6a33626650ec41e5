// `dself serve`: the routes of docs/API.md, access checks, and the server's life from listening
// to a clean stop. Handlers answer from the I/O threads only what is quick (the catalog, files);
// models run on the job worker, the say threads and each live session's thread.
#include "server/server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <asio/signal_set.hpp>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <system_error>
#include <thread>

#include "core/avatar_config.h"
#include "core/catalog.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/workspace.h"
#include "persona/persona.h"
#include "server/detail/http.h"
#include "server/detail/jobs.h"
#include "server/detail/live.h"
#include "server/detail/requests.h"
#include "server/detail/static_files.h"
#include "server/detail/voice_samples.h"
#include "server/detail/workspace_files.h"

namespace dself::server {
namespace fs = std::filesystem;
using namespace detail;

namespace {

constexpr int kMaxConcurrentRenders = 1;    // POST /api/say renders at once; more get 429
constexpr auto kKeepaliveInterval = std::chrono::seconds(15);
// The most one request's body may hold (and so the most the server keeps in memory for one
// request, before its handler checks the token): larger uploads come in parts of this size.
constexpr uint64_t kUploadPartBytes = 8 << 20;

// What an upload is: a video, or the captions of one (matched to its video by name).
enum class UploadKind { video, captions };

std::string lowercase(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// Upload names: a plain file name with a video or captions extension, nothing that could move it
// elsewhere.
UploadKind checked_upload_name(const std::string& name) {
  static const std::vector<std::string> extensions = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg",
                                                      ".mpeg", ".ts", ".mts", ".m2ts", ".wmv", ".flv", ".3gp", ".ogv"};
  static const std::vector<std::string> caption_like = {".ass", ".ssa", ".sub", ".sbv", ".ttml", ".dfxp",
                                                        ".smi", ".lrc", ".txt", ".xml", ".json"};
  if (name.empty() || name.size() > 200 || name.front() == '.' || name.front() == '-') {
    throw HttpError(400, "give the file's name as ?name=FILE.mp4 (letters, digits, '.', '-', '_', ' ')");
  }
  for (char c : name) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' || c == ' ';
    if (!ok) throw HttpError(400, fmt::format("the file name \"{}\" may only have letters, digits, '.', '-', '_' and spaces", name));
  }
  std::string ext = lowercase(fs::path(name).extension().string());
  if (ext == ".vtt" || ext == ".srt") return UploadKind::captions;
  if (std::find(caption_like.begin(), caption_like.end(), ext) != caption_like.end()) {
    throw HttpError(
        400, fmt::format("{}: {} captions are not supported; give WebVTT (.vtt) or SubRip (.srt) captions", name, ext));
  }
  if (std::find(extensions.begin(), extensions.end(), ext) == extensions.end()) {
    throw HttpError(
        400, fmt::format("{}: upload a video file (.mp4, .mkv, .webm, .mov, ...) or its captions (.vtt, .srt)", name));
  }
  return UploadKind::video;
}

// The video stem a captions file belongs to, as ingest matches them: "talk.vtt", "talk.en.vtt",
// "talk.en-US.srt" -> "talk".
std::string captions_video_stem(const std::string& name) {
  std::string stem = fs::path(name).stem().string();
  std::string language = lowercase(fs::path(stem).extension().string());
  if (language == ".en" || language.rfind(".en-", 0) == 0 || language.rfind(".en_", 0) == 0) {
    stem = fs::path(stem).stem().string();
  }
  return stem;
}

// The content of a captions file is what its extension says (as ingest checks it).
void check_captions_text(const std::string& name, const std::string& body) {
  std::string head = body.substr(0, 4096);
  if (head.rfind("\xEF\xBB\xBF", 0) == 0) head.erase(0, 3);
  std::string ext = lowercase(fs::path(name).extension().string());
  if (ext == ".vtt" && head.rfind("WEBVTT", 0) != 0) {
    throw HttpError(400, fmt::format("{}: not WebVTT captions (the file must begin with \"WEBVTT\")", name));
  }
  if (ext == ".srt" && head.find("-->") == std::string::npos) {
    throw HttpError(400, fmt::format("{}: not SubRip captions (no \"00:00:01,000 --> 00:00:02,000\" cue)", name));
  }
}

// Compares without leaking where the first difference is.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    diff |= static_cast<unsigned char>((i < a.size() ? a[i] : 0) ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

// The host part of a Host header ("127.0.0.1:8080", "[::1]:8080", "localhost").
std::string host_name(const std::string& host_header) {
  if (!host_header.empty() && host_header.front() == '[') {
    size_t end = host_header.find(']');
    return end == std::string::npos ? host_header : host_header.substr(1, end - 1);
  }
  size_t colon = host_header.rfind(':');
  return colon == std::string::npos ? host_header : host_header.substr(0, colon);
}

// Threads for POST /api/say renders, joined when they end or when the server stops.
class RenderThreads {
 public:
  ~RenderThreads() { join_all(); }
  bool start(std::function<void()> work) {
    std::lock_guard lock(mutex_);
    reap();
    if (running_ >= kMaxConcurrentRenders) return false;
    ++running_;
    auto done = std::make_shared<std::atomic<bool>>(false);
    threads_.push_back({std::thread([this, work = std::move(work), done] {
                          work();
                          *done = true;
                        }),
                        done});
    return true;
  }
  // The render is done (called by the work before it answers, so that the next may start).
  void release() {
    std::lock_guard lock(mutex_);
    --running_;
  }
  bool busy() const {
    std::lock_guard lock(mutex_);
    return running_ > 0;
  }
  void join_all() {
    std::vector<Entry> threads;
    {
      std::lock_guard lock(mutex_);
      threads.swap(threads_);
    }
    for (auto& t : threads) t.thread.join();
  }

 private:
  struct Entry {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  void reap() {
    for (auto it = threads_.begin(); it != threads_.end();) {
      if (*it->done) {
        it->thread.join();
        it = threads_.erase(it);
      } else {
        ++it;
      }
    }
  }
  mutable std::mutex mutex_;
  std::vector<Entry> threads_;
  int running_ = 0;
};

class Server {
 public:
  explicit Server(const ServeOptions& options)
      : options_(options),
        hub_(options),
        voice_samples_(options.avatar),
        jobs_(options, [this](const JobRecord& job) {
          events_.publish("job", to_json(job, false));
          // New data or a newly trained voice: live sessions and renders load the avatar again.
          if ((job.kind == "prepare" || job.kind == "train") && (job.state == "done" || job.state == "failed")) {
            hub_.invalidate();
          }
        }) {
    std::error_code ec;
    if (!options_.web_root.empty() && fs::is_directory(options_.web_root, ec)) {
      web_root_ = fs::canonical(options_.web_root, ec);
    }
  }

  std::unique_ptr<Router> routes() {
    auto router = std::make_unique<Router>();
    router->http_get("/api/status", api([this](const Request& r) { return status(r); }));
    router->http_get("/api/metrics", api([this](const Request& r) { return metrics(r); }));
    router->http_post("/api/sources", api([this](const Request& r) { return add_source(r); }));
    router->http_post("/api/uploads", api([this](const Request& r) { return upload(r); }));
    router->http_post("/api/jobs", api([this](const Request& r) { return start_job(r); }));
    router->http_get("/api/jobs", api([this](const Request& r) { return list_jobs(r); }));
    router->http_get(R"(/api/jobs/:id(\d{1,15}))", api_with_id([this](const Request& r, int64_t id) { return job(r, id); }));
    router->http_post(R"(/api/jobs/:id(\d{1,15})/stop)",
                      api_with_id([this](const Request& r, int64_t id) { return stop_job(r, id); }));
    router->http_get("/api/events", api([this](const Request& r) { return subscribe(r); }));
    router->http_post("/api/say", api([this](const Request& r) { return say(r); }));
    router->http_get(R"(/api/renders/:name([A-Za-z0-9_-]{1,100}\.mp4))", [this](Request r, restinio::router::route_params_t p) {
      std::string name(p["name"]);
      return guarded(r, [&] {
        check_access(r, false);
        return render_file(r, name);
      });
    });
    router->http_get("/api/conversations", api([this](const Request& r) { return conversations(r); }));
    router->http_get(R"(/api/conversations/:id(\d{1,15}))",
                     api_with_id([this](const Request& r, int64_t id) { return conversation(r, id); }));
    router->http_get("/api/report",
                     api([this](const Request& r) { return serve_report(r, options_.avatar, options_.token); }));
    router->http_get(R"(/api/report/faces/:folder(\d{1,15}|identities)/:file([A-Za-z0-9_./\-]{1,201}))",
                     [this](Request r, restinio::router::route_params_t p) {
                       std::string folder(p["folder"]);
                       std::string file(p["file"]);
                       return guarded(r, [&] {
                         check_access(r, false);
                         return serve_face_picture(r, options_.avatar, folder, file);
                       });
                     });
    router->http_get(R"(/api/sources/:id(\d{1,15})/video)", api_with_id([this](const Request& r, int64_t id) {
                       return serve_source_video(r, options_.avatar, id);
                     }));
    router->http_get("/api/renders",
                     api([this](const Request& r) { return reply_json(r, 200, list_renders(options_.avatar)); }));
    router->http_get("/api/models/voice/curve",
                     api([this](const Request& r) { return reply_json(r, 200, voice_curve(options_.avatar)); }));
    router->http_get("/api/voice/samples",
                     api([this](const Request& r) { return reply_json(r, 200, voice_samples(options_.avatar)); }));
    router->http_get(R"(/api/voice/samples/:source([^/]{1,200})/:id([^/]{1,200})/:which(real|trained)\.wav)",
                     [this](Request r, restinio::router::route_params_t p) {
                       std::string source(p["source"]), id(p["id"]), which(p["which"]);
                       return guarded(r, [&] {
                         check_access(r, false);
                         return voice_sample(r, source, id, which == "trained");
                       });
                     });
    router->http_get("/api/live", [this](Request r, auto) {
      return guarded(r, [&] {
        check_access(r, true);
        return hub_.accept(r);
      });
    });
    router->non_matched_request_handler([this](Request r) {
      return guarded(r, [&] {
        std::string path(r->header().path());
        check_host(r);
        if (path == "/api" || path.rfind("/api/", 0) == 0) {
          check_access(r, false);
          throw HttpError(404, fmt::format("no API at {} {} (see docs/API.md)",
                                           r->header().method().c_str(), path));
        }
        if (r->header().method() != restinio::http_method_get()) {
          throw HttpError(405, "only GET is served outside /api/");
        }
        return serve_static(r, web_root_);
      });
    });
    return router;
  }

  void keepalive() { events_.keepalive(); }
  bool busy() const { return jobs_.busy() || renders_.busy(); }
  void stop() {
    hub_.stop_all();
    events_.close_all();
  }
  void join_renders() { renders_.join_all(); }
  const fs::path& web_root() const { return web_root_; }

 private:
  using Handler = std::function<Handled(const Request&)>;

  // Every /api/ route: the access checks, then the handler, its failures translated.
  restinio::router::express_request_handler_t api(Handler handler) {
    return [this, handler = std::move(handler)](Request r, auto) {
      return guarded(r, [&] {
        check_access(r, false);
        return handler(r);
      });
    };
  }
  restinio::router::express_request_handler_t api_with_id(std::function<Handled(const Request&, int64_t)> handler) {
    return [this, handler = std::move(handler)](Request r, restinio::router::route_params_t p) {
      return guarded(r, [&] {
        check_access(r, false);
        return handler(r, restinio::cast_to<int64_t>(p["id"]));
      });
    };
  }

  // Bound to loopback, only loopback names are served: a page elsewhere cannot reach the API by
  // pointing its own name at 127.0.0.1 (DNS rebinding).
  void check_host(const Request& r) const {
    if (!is_loopback_host(options_.host)) return;
    std::string host = header(r, "Host");
    if (!host.empty() && !is_loopback_host(host_name(host))) {
      throw HttpError(403, fmt::format("Host {} is not this server's (it is bound to {})", host, options_.host));
    }
  }

  // Token, Host and, for the WebSocket and every request that changes something, Origin.
  void check_access(const Request& r, bool websocket) const {
    check_host(r);
    if (!options_.token.empty()) {
      std::string given;
      std::string authorization = header(r, "Authorization");
      if (authorization.rfind("Bearer ", 0) == 0) {
        given = authorization.substr(7);
      } else if (auto token = query_param(r, "token")) {
        given = *token;
      }
      if (given.empty()) throw HttpError(401, "this server needs its token: Authorization: Bearer TOKEN, or ?token=TOKEN");
      if (!same_secret(given, options_.token)) throw HttpError(401, "wrong token");
    }
    bool changes = r->header().method() != restinio::http_method_get();
    if (websocket || changes) {
      std::string origin = header(r, "Origin");
      std::string host = header(r, "Host");
      if (!origin.empty() && origin != "http://" + host && origin != "https://" + host) {
        throw HttpError(403, fmt::format("Origin {} is not this server's (http://{})", origin, host));
      }
    }
  }

  Handled status(const Request& r) {
    Catalog catalog(options_.avatar);
    nlohmann::json status = status_document(options_.avatar, catalog);
    // What this server transcribes voice messages with (its flags may differ from the setting).
    status["stt"]["voice_messages"] = {
        {"engine", options_.stt},
        {"whisper_model", options_.loaded_whisper ? nlohmann::json(options_.loaded_whisper->dir().string()) : nlohmann::json()}};
    return reply_json(r, 200, status);
  }

  Handled metrics(const Request& r) {
    std::error_code ec;
    fs::path page = workspace::report_path(options_.avatar);
    nlohmann::json report = {{"ready", fs::is_regular_file(page, ec)}};
    return reply_json(r, 200,
                      {{"models", model_metrics(options_.avatar)},
                       {"report", report},
                       {"server",
                        {{"live_sessions", hub_.session_count()},
                         {"jobs_done", jobs_.done_count()},
                         {"job_running", jobs_.busy()},
                         {"event_subscribers", events_.subscriber_count()}}}});
  }

  Handled add_source(const Request& r) {
    std::string url = parse_source_request(json_body(r, options_.max_body_kb * 1024));
    return reply_json(r, 202, {{"job", to_json(jobs_.submit("ingest", {url}), false)}});
  }

  // POST /api/uploads?name=FILE[&offset=BYTES&total=BYTES][&ingest=0]: a video (checked for a
  // duplicate of a source already in the avatar before it is stored) or its captions (stored
  // beside the uploaded video of the same name). A file larger than one request's body limit
  // (kUploadPartBytes) comes in parts, each appended to uploads/.partial/FILE at its offset; the
  // last one moves the whole file into uploads/ (an interrupted upload leaves only the partial
  // file, which the next upload of that name starts again or resumes). Without ingest=0 a video
  // is ingested at once; with it, only stored, so that several files and their captions become
  // one ingest job (POST /api/jobs).
  Handled upload(const Request& r) {
    std::optional<std::string> name = query_param(r, "name");
    if (!name) throw HttpError(400, "give the file's name: POST /api/uploads?name=FILE.mp4");
    UploadKind kind = checked_upload_name(*name);
    std::optional<std::string> ingest_now = query_param(r, "ingest");
    bool start_ingest = kind == UploadKind::video && (!ingest_now || (*ingest_now != "0" && *ingest_now != "false"));
    const std::string& body = r->body();
    const uint64_t limit = static_cast<uint64_t>(options_.max_upload_mb) * 1024 * 1024;
    auto number = [&](const char* key) -> std::optional<uint64_t> {
      std::optional<std::string> text = query_param(r, key);
      if (!text) return std::nullopt;
      if (text->empty() || text->size() > 15 ||
          !std::all_of(text->begin(), text->end(), [](char c) { return c >= '0' && c <= '9'; })) {
        throw HttpError(400, fmt::format("{}: \"{}\" is a number of bytes", key, *text));
      }
      return std::stoull(*text);
    };
    std::optional<uint64_t> offset = number("offset"), total = number("total");
    if (offset.has_value() != total.has_value()) throw HttpError(400, "give both offset and total (bytes), or neither");
    const uint64_t size = total ? *total : body.size();
    if (size > limit) {
      throw HttpError(
          413, fmt::format("{}: the upload is {:.1f} MiB; at most {} MiB are accepted (dself serve --max-upload-mb)",
                           *name, size / 1048576.0, options_.max_upload_mb));
    }
    if (body.empty() && size == 0)
      throw HttpError(400, fmt::format("{}: the upload is empty: send the file's bytes as the body", *name));
    fs::path dir = workspace::uploads_dir(options_.avatar);
    fs::path partial_dir = dir / ".partial";
    fs::create_directories(partial_dir);
    fs::path partial = partial_dir / *name;
    std::error_code ec;

    if (!total) {
      if (body.size() > kUploadPartBytes) {
        throw HttpError(
            413, fmt::format("{}: send a file above {} MiB in parts (?offset=&total=)", *name, kUploadPartBytes >> 20));
      }
      write_file_atomic(partial, body);
    } else {
      // A part: where the partial file ends is where this one must start (0 starts again).
      uint64_t have = fs::is_regular_file(partial, ec) ? fs::file_size(partial, ec) : 0;
      if (*offset != 0 && *offset != have) {
        nlohmann::json answer = {{"error", fmt::format("{}: this part starts at byte {}, but {} bytes have arrived: "
                                                       "send from there",
                                                       *name, *offset, have)},
                                 {"received", have}};
        return reply_json(r, 409, answer);
      }
      if (*offset + body.size() > *total) {
        throw HttpError(400, fmt::format("{}: the part ends at byte {}, past the total of {}", *name,
                                         *offset + body.size(), *total));
      }
      std::ofstream out(partial, *offset == 0 ? std::ios::binary | std::ios::trunc : std::ios::binary | std::ios::app);
      out.write(body.data(), static_cast<std::streamsize>(body.size()));
      out.close();
      if (!out) throw EnvironmentError(fmt::format("cannot write {}: is the disk full?", partial.string()));
      uint64_t now = *offset + body.size();
      if (now < *total) return reply_json(r, 202, {{"received", now}, {"total", *total}});
    }
    // The whole file has arrived (in uploads/.partial/): check it, then move it into uploads/.
    struct RemovePartial {
      fs::path path;
      ~RemovePartial() {
        std::error_code ignored;
        fs::remove(path, ignored);
      }
    } remove_partial{partial};

    if (kind == UploadKind::captions) {
      check_captions_text(*name, read_file(partial));
      std::string stem = captions_video_stem(*name);
      fs::path video;
      for (const auto& entry : fs::directory_iterator(dir, ec)) {
        if (entry.path().stem().string() != stem || !entry.is_regular_file(ec)) continue;
        std::string file = entry.path().filename().string();
        bool is_video = false;
        try {
          is_video = checked_upload_name(file) == UploadKind::video;
        } catch (const HttpError&) {
        }
        if (is_video) video = entry.path();
      }
      if (video.empty()) {
        throw HttpError(400, fmt::format("{}: no video named {}.* was uploaded for these captions; upload the video "
                                         "with them (captions are matched to their video by name)",
                                         *name, stem));
      }
      fs::rename(partial, dir / *name);
      return reply_json(
          r, 201,
          {{"file", "uploads/" + *name}, {"kind", "captions"}, {"video", "uploads/" + video.filename().string()}});
    }

    // The same bytes as a source the avatar has: say so, and store nothing.
    std::string hash = hash_file(partial);
    Catalog catalog(options_.avatar);
    std::optional<Source> same = catalog.find_source("file:" + hash);
    if (!same) {
      for (const MediaFile& file : catalog.media()) {
        if (file.role != "video" || file.content_hash != hash) continue;
        for (const Source& source : catalog.sources()) {
          if (source.id == file.source_id) same = source;
        }
      }
    }
    if (same) {
      nlohmann::json answer = {
          {"error", fmt::format("{} is already in the avatar as source {} ({}): not stored again", *name, same->id,
                                same->title.empty() ? same->origin : same->title)},
          {"duplicate", {{"source_id", same->id}, {"title", same->title}}}};
      return reply_json(r, 409, answer);
    }
    if (start_ingest && jobs_.busy()) throw HttpError(409, "a job is running; upload again when it has finished");
    fs::path path = dir / *name;
    // An earlier upload of the same file under this name is used again, not stored twice.
    bool stored = fs::is_regular_file(path, ec) && hash_file(path) == hash;
    for (int n = 1; !stored && fs::exists(path); ++n) {
      path = dir / fmt::format("{}-{}{}", fs::path(*name).stem().string(), n, fs::path(*name).extension().string());
      stored = fs::is_regular_file(path, ec) && hash_file(path) == hash;
    }
    if (!stored) fs::rename(partial, path);
    std::string file = "uploads/" + path.filename().string();
    if (!start_ingest) return reply_json(r, 201, {{"file", file}, {"kind", "video"}});
    try {
      return reply_json(
          r, 202,
          {{"file", file}, {"kind", "video"}, {"job", to_json(jobs_.submit("ingest", {path.string()}), false)}});
    } catch (...) {
      if (!stored) fs::remove(path, ec);
      throw;
    }
  }

  Handled start_job(const Request& r) {
    JobRequest request = parse_job_request(json_body(r, options_.max_body_kb * 1024));
    TrainRequest train;
    if (request.model) train.model = *request.model;
    if (request.steps) train.steps = *request.steps;
    if (request.time_budget_s) train.time_budget_s = *request.time_budget_s;
    return reply_json(r, 202, {{"job", to_json(jobs_.submit(request.kind, request.sources, train), false)}});
  }

  Handled list_jobs(const Request& r) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& job : jobs_.jobs()) list.push_back(to_json(job, false));
    return reply_json(r, 200, {{"jobs", list}});
  }

  Handled job(const Request& r, int64_t id) {
    std::optional<JobRecord> job = jobs_.job(id);
    if (!job) throw HttpError(404, fmt::format("no job {}", id));
    return reply_json(r, 200, {{"job", to_json(*job, true)}});
  }

  Handled stop_job(const Request& r, int64_t id) {
    JobRecord job = jobs_.stop(id);
    return reply_json(r, 202, {{"job", to_json(job, false)}});
  }

  Handled subscribe(const Request& r) {
    std::vector<std::pair<std::string, nlohmann::json>> initial;
    for (const auto& job : jobs_.jobs()) initial.emplace_back("job", to_json(job, false));
    std::reverse(initial.begin(), initial.end());
    return events_.subscribe(r, initial);
  }

  Handled say(const Request& r) {
    std::string text = parse_say_request(json_body(r, options_.max_body_kb * 1024));
    // The render runs on a thread of its own; the answer goes out from there when it is done.
    bool started = renders_.start([this, r, text] {
      guarded(r, [&] {
        nlohmann::json answer;
        try {
          answer = hub_.say(text);
        } catch (...) {
          renders_.release();
          throw;
        }
        renders_.release();
        try {
          record_render(options_.avatar, text, answer);
        } catch (const std::exception& e) {
          spdlog::warn("say: cannot record the text of {}: {}", answer.value("video", ""), e.what());
        }
        return reply_json(r, 200, answer);
      });
    });
    if (!started) throw HttpError(429, "a video is being rendered; try again when it is done");
    return restinio::request_accepted();
  }

  // A held-out utterance's audio: the person's real recording, or the trained voice saying its
  // text. The synthesis runs here, on an I/O thread, because it is one sentence at a real-time
  // factor of a few hundredths (docs/VOICE.md) and cached after the first time.
  Handled voice_sample(const Request& r, const std::string& source, const std::string& id, bool trained) {
    const fs::path file = trained ? voice_samples_.wav(source, id) : held_out_clip(options_.avatar, source, id).wav;
    return r->create_response()
        .append_header(restinio::http_field::content_type, "audio/wav")
        .set_body(restinio::sendfile(file.string()))
        .done();
  }

  Handled render_file(const Request& r, const std::string& name) {
    fs::path file = workspace::renders_dir(options_.avatar) / name;
    std::error_code ec;
    if (!fs::is_regular_file(file, ec)) throw HttpError(404, fmt::format("no render {}", name));
    return r->create_response()
        .append_header(restinio::http_field::content_type, "video/mp4")
        .append_header(restinio::http_field::content_disposition, fmt::format("attachment; filename=\"{}\"", name))
        .set_body(restinio::sendfile(file.string()))
        .done();
  }

  static nlohmann::json conversation_json(const Conversation& c) {
    return {{"id", c.id}, {"started_at", c.started_at}, {"engine", c.engine}, {"message_count", c.message_count}};
  }

  Handled conversations(const Request& r) {
    nlohmann::json list = nlohmann::json::array();
    for (const Conversation& c : Catalog(options_.avatar).conversations()) list.push_back(conversation_json(c));
    return reply_json(r, 200, {{"conversations", list}});
  }

  Handled conversation(const Request& r, int64_t id) {
    Catalog catalog(options_.avatar);
    std::vector<Conversation> found = catalog.conversations(id);
    if (found.empty()) throw HttpError(404, fmt::format("no conversation {}", id));
    nlohmann::json messages = nlohmann::json::array();
    for (const ChatMessage& m : catalog.messages(id)) {
      nlohmann::json sources = nlohmann::json::parse(m.sources_json, nullptr, false);
      messages.push_back({{"role", m.role},
                          {"text", m.text},
                          {"sources", sources.is_discarded() ? nlohmann::json::array() : sources},
                          {"at", m.created_at}});
    }
    nlohmann::json answer = conversation_json(found[0]);
    answer["messages"] = messages;
    return reply_json(r, 200, answer);
  }

  ServeOptions options_;
  fs::path web_root_;
  EventStream events_;
  LiveHub hub_;
  TrainedVoiceSamples voice_samples_;
  RenderThreads renders_;
  JobRunner jobs_;
};

}  // namespace

fs::path default_web_root() { return DSELF_DEFAULT_WEB_ROOT; }

bool is_loopback_host(const std::string& host) {
  if (host == "localhost" || host == "::1" || host == "[::1]") return true;
  std::error_code ec;
  asio::ip::address address = asio::ip::make_address(host, ec);
  return !ec && address.is_loopback();
}

void check_options(const ServeOptions& options) {
  std::error_code ec;
  asio::ip::make_address(options.host, ec);
  if (ec && options.host != "localhost") {
    throw InputError(fmt::format("--host {}: give an IP address to bind, e.g. 127.0.0.1 or 0.0.0.0", options.host));
  }
  if (!is_loopback_host(options.host) && options.token.empty()) {
    throw InputError(fmt::format("--host {} is reachable from other machines: give an access token with --token T "
                                 "(or $DSELF_TOKEN); every API and WebSocket call must then carry it",
                                 options.host));
  }
  if (options.max_live_sessions < 1) throw InputError("--max-live-sessions must be at least 1");
  if (options.max_upload_mb < 1) throw InputError("--max-upload-mb must be at least 1");
  if (options.max_message_kb < 1) throw InputError("--max-message-kb must be at least 1");
  if (options.engine == "openai") {
    persona::OpenAiOptions openai;
    openai.url = options.llm_url;
    openai.model = options.llm_model;
    persona::check_openai_options(openai);
  }
  if (options.engine == "llm" && options.llm.model_dir.empty()) {
    throw InputError("--engine llm needs --model DIR: a Hugging Face chat checkpoint directory (docs/LLM.md)");
  }
}

void load_stt(ServeOptions& options) {
  if (options.stt.empty()) {
    options.stt = read_avatar_config(options.avatar).stt.value_or("") == "whisper" ? "whisper" : "pocketsphinx";
  }
  if (options.stt != "pocketsphinx" && options.stt != "whisper") {
    throw InputError(fmt::format("--stt {}: give pocketsphinx or whisper", options.stt));
  }
  if (options.stt == "pocketsphinx") {
    if (!options.whisper_model.empty()) throw InputError("--whisper-model is for --stt whisper");
    return;
  }
  const whisper::ModelChoice choice = whisper::resolve_model(options.avatar, options.whisper_model, "--whisper-model");
  auto model = std::make_shared<whisper::Model>(whisper::Model::load(choice.dir));
  spdlog::info("voice messages: whisper {} ({}, {})", choice.dir.string(), model->describe(),
               whisper::model_source_name(choice.source));
  options.loaded_whisper = std::move(model);
}

void serve(const ServeOptions& given) {
  check_options(given);
  ServeOptions options = given;
  load_stt(options);
  if (options.web_root.empty()) options.web_root = default_web_root();
  if (options.host == "localhost") options.host = "127.0.0.1";
  std::error_code ec;
  fs::create_directories(options.avatar, ec);
  if (ec) throw EnvironmentError(fmt::format("cannot create the avatar directory {}: {}", options.avatar.string(), ec.message()));
  { Catalog check(options.avatar); }

  asio::io_context io;
  Server server(options);
  restinio::server_settings_t<Traits> settings;
  uint16_t bound_port = options.port;  // --port 0: the one the system picked
  settings.address(options.host)
      .port(options.port)
      .acceptor_post_bind_hook(
          [&bound_port](asio::ip::tcp::acceptor& acceptor) { bound_port = acceptor.local_endpoint().port(); })
      .request_handler(std::make_unique<RequestHandler>(server.routes()))
      // Bodies above one upload part are refused by closing the connection; a little room above
      // it lets the route answer 413 for a slightly larger one. RESTinio holds a body whole before
      // the route sees it (and checks the token), so this is the most one request can make it hold.
      .incoming_http_msg_limits(restinio::incoming_http_msg_limits_t{}.max_body_size(
          std::min<uint64_t>(kUploadPartBytes, std::max<uint64_t>(options.max_upload_mb, 1) * 1024 * 1024) + (1 << 20)))
      .read_next_http_message_timelimit(std::chrono::seconds(60))
      .write_http_response_timelimit(std::chrono::seconds(60))
      .handle_request_timeout(std::chrono::minutes(30))
      .max_pipelined_requests(4);
  restinio::http_server_t<Traits> http(restinio::external_io_context(io), std::move(settings));
  try {
    http.open_sync();
  } catch (const std::exception& e) {
    throw EnvironmentError(fmt::format("cannot listen on {}:{}: {} (is another server using the port? try --port)",
                                       options.host, options.port, e.what()));
  }

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&io](const asio::error_code& error, int) {
    if (!error) io.stop();
  });

  std::mutex keepalive_mutex;
  std::condition_variable keepalive_wake;
  bool stopping = false;
  std::thread keepalive([&] {
    std::unique_lock lock(keepalive_mutex);
    while (!keepalive_wake.wait_for(lock, kKeepaliveInterval, [&] { return stopping; })) server.keepalive();
  });

  std::string host = options.host.find(':') != std::string::npos ? "[" + options.host + "]" : options.host;
  std::printf("dself serve: listening on http://%s:%u/ (avatar %s; web UI %s)\n", host.c_str(), bound_port,
              options.avatar.string().c_str(),
              server.web_root().empty() ? "not built: run `make web`" : server.web_root().string().c_str());
  std::fflush(stdout);

  std::vector<std::thread> io_threads;
  for (int i = 0; i < std::max(1, options.io_threads); ++i) {
    io_threads.emplace_back([&io] {
      // Handlers translate their own failures; this is the last line for RESTinio's internals.
      while (true) {
        try {
          io.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("server I/O: {}", e.what());
        }
      }
    });
  }
  for (auto& t : io_threads) t.join();

  spdlog::info("dself serve: stopping");
  {
    std::lock_guard lock(keepalive_mutex);
    stopping = true;
  }
  keepalive_wake.notify_all();
  keepalive.join();
  server.stop();
  if (server.busy()) {
    // Every stage writes atomically and resumes, so ending mid-job loses only that job's work.
    spdlog::warn("dself serve: a job or a render was interrupted; run it again to resume");
    spdlog::default_logger()->flush();
    std::fflush(stdout);
    std::_Exit(0);
  }
  server.join_renders();
  http.close_sync();
}

}  // namespace dself::server
