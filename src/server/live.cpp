// Live conversations: a WebSocket per client, a worker thread per session that replies (chat
// engine), then says, animates and draws the reply sentence by sentence (say::Performer), sending
// text, audio and JPEG frames as each is ready. Protocol: docs/API.md.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <opencv2/imgcodecs.hpp>
#include <restinio/utils/base64.hpp>
#include <restinio/websocket/websocket.hpp>
#include <system_error>

#include "core/catalog.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/workspace.h"
#include "media/media.h"
#include "persona/persona.h"
#include "server/detail/live.h"
#include "server/detail/requests.h"
#include "stt/stt.h"
#include "transcript/transcript.h"
#include "say/say.h"
#include "voice/voice.h"

namespace dself::server::detail {
namespace fs = std::filesystem;
namespace ws = restinio::websocket::basic;

namespace {

constexpr size_t kMaxBufferedBytes = 4 << 20;  // unsent bytes a session may queue before it waits
constexpr double kStalledClient_s = 30;        // a client that reads nothing this long is dropped
constexpr size_t kMaxQueuedMessages = 4;       // messages waiting while a reply is under way
constexpr int kJpegQuality = 80;
constexpr int kSampleRate = 16000;             // Hz of the PCM audio sent

// Thrown in the session's own code when the client has gone (never through a C library: the
// chat engine is told to stop through its callback's result).
struct Cancelled {};

std::string extension_for(const std::string& mime) {
  if (mime.find("webm") != std::string::npos) return ".webm";
  if (mime.find("ogg") != std::string::npos) return ".ogg";
  if (mime.find("wav") != std::string::npos) return ".wav";
  if (mime.find("mp4") != std::string::npos || mime.find("m4a") != std::string::npos) return ".m4a";
  if (mime.find("mpeg") != std::string::npos || mime.find("mp3") != std::string::npos) return ".mp3";
  return ".bin";
}

nlohmann::json sources_json(const std::vector<persona::SourceRef>& sources, bool with_text) {
  nlohmann::json refs = nlohmann::json::array();
  for (const auto& s : sources) {
    nlohmann::json ref = {{"source_id", s.source_id}, {"title", s.title}, {"start_s", s.start_s}, {"end_s", s.end_s}};
    if (with_text) ref["text"] = s.text;
    refs.push_back(ref);
  }
  return refs;
}

// A binary frame: kind, uint32 index, float64 time (little-endian), payload (docs/API.md).
std::string binary_frame(char kind, uint32_t index, double time_s, const void* payload, size_t size) {
  static_assert(std::endian::native == std::endian::little, "the wire format is little-endian");
  std::string frame(13 + size, '\0');
  frame[0] = kind;
  std::memcpy(frame.data() + 1, &index, 4);
  std::memcpy(frame.data() + 5, &time_s, 8);
  if (size > 0) std::memcpy(frame.data() + 13, payload, size);
  return frame;
}

}  // namespace

// What every session shares: the say cast (loaded once), and a lock that serialises opening the
// persona memory (which may rebuild persona.db).
struct SharedModels {
  ServeOptions options;
  std::mutex memory_mutex;
  std::mutex cast_mutex;
  std::shared_ptr<const say::Cast> cast;

  say::SayOptions say_options() const {
    say::SayOptions o;
    o.avatar = options.avatar;
    return o;
  }

  std::shared_ptr<const say::Cast> load_cast() {
    std::lock_guard lock(cast_mutex);
    if (!cast) {
      spdlog::info("loading the avatar's voice, motion and face models (shared by live sessions and /api/say)");
      cast = say::load_cast(say_options());
    }
    return cast;
  }

  void invalidate() {
    std::lock_guard lock(cast_mutex);
    cast.reset();
  }
};

class LiveSession : public std::enable_shared_from_this<LiveSession> {
 public:
  LiveSession(int64_t id, const ServeOptions& options, std::shared_ptr<SharedModels> models)
      : id_(id), options_(options), models_(std::move(models)) {}

  void attach(ws::ws_handle_t socket) {
    std::lock_guard lock(send_mutex_);
    socket_ = std::move(socket);
  }

  // Called on an I/O thread with every frame the client sends.
  void on_frame(const ws::message_handle_t& message) {
    using restinio::websocket::basic::opcode_t;
    switch (message->opcode()) {
      case opcode_t::ping_frame:
        send_frame(opcode_t::pong_frame, message->payload());
        return;
      case opcode_t::connection_close_frame:
        close_from_client();
        return;
      case opcode_t::binary_frame:
        partial_binary_ = true;
        [[fallthrough]];
      case opcode_t::text_frame:
      case opcode_t::continuation_frame: {
        partial_ += message->payload();
        if (partial_.size() > options_.max_message_kb * 1024) {
          send_json({{"type", "error"},
                     {"error", fmt::format("a message may have at most {} KiB (dself serve --max-message-kb)",
                                           options_.max_message_kb)}});
          close(restinio::websocket::basic::status_code_t::too_big_message, "message too big");
          return;
        }
        if (!message->is_final()) return;
        std::string text = std::move(partial_);
        bool binary = partial_binary_;
        partial_.clear();
        partial_binary_ = false;
        if (binary) {
          send_json({{"type", "error"}, {"error", "send messages as JSON text frames (docs/API.md)"}});
          return;
        }
        {
          std::lock_guard lock(mutex_);
          if (inbox_.size() >= kMaxQueuedMessages) {
            send_json({{"type", "error"}, {"error", "too many messages waiting; wait for the reply"}});
            return;
          }
          inbox_.push_back(std::move(text));
        }
        wake_.notify_all();
        return;
      }
      default:
        return;
    }
  }

  // The session's worker thread. Nothing escapes it.
  void run() {
    try {
      setup();
      while (true) {
        std::string message;
        {
          std::unique_lock lock(mutex_);
          wake_.wait(lock, [this] { return closed_ || !inbox_.empty(); });
          if (closed_) break;
          message = std::move(inbox_.front());
          inbox_.pop_front();
        }
        handle(message);
      }
    } catch (const Cancelled&) {
      spdlog::info("live session {}: the client left mid-reply; stopped after {} frames", id_, reply_frames_);
    } catch (const std::exception& e) {
      spdlog::error("live session {}: {}", id_, describe(e));
      send_json({{"type", "error"}, {"error", "internal error: " + describe(e)}});
    } catch (...) {
      spdlog::error("live session {}: unknown failure", id_);
    }
    close(restinio::websocket::basic::status_code_t::normal_closure, "");
    spdlog::info("live session {} ended", id_);
    finished_ = true;
  }

  void stop() {
    close(restinio::websocket::basic::status_code_t::going_away, "server stopping");
  }

  bool finished() const { return finished_; }

 private:
  bool cancelled() const {
    std::lock_guard lock(mutex_);
    return closed_;
  }

  void close_from_client() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    wake_.notify_all();
    std::lock_guard lock(send_mutex_);
    socket_.reset();  // RESTinio has answered the close frame itself
  }

  // Sends a close frame (once: the first caller's code wins) and cancels the session's work.
  void close(restinio::websocket::basic::status_code_t code, const std::string& reason) {
    std::lock_guard lock(send_mutex_);  // before mutex_, as everywhere
    {
      std::lock_guard state_lock(mutex_);
      closed_ = true;
    }
    wake_.notify_all();
    if (!socket_) return;
    try {
      socket_->send_message(restinio::websocket::basic::final_frame,
                            restinio::websocket::basic::opcode_t::connection_close_frame,
                            restinio::websocket::basic::status_code_to_bin(code) + reason);
    } catch (const std::exception&) {
    }
    try {
      socket_->shutdown();
    } catch (const std::exception&) {
    }
    socket_.reset();
  }

  bool send_frame(restinio::websocket::basic::opcode_t opcode, std::string payload) {
    std::lock_guard lock(send_mutex_);
    if (!socket_) return false;
    size_t size = payload.size();
    buffered_bytes_ += size;
    std::weak_ptr<LiveSession> weak = weak_from_this();
    try {
      socket_->send_message(restinio::websocket::basic::final_frame, opcode, restinio::writable_item_t(std::move(payload)),
                            [weak, size](const asio::error_code& ec) {
                              auto self = weak.lock();
                              if (!self) return;
                              self->buffered_bytes_ -= size;
                              if (ec) {
                                std::lock_guard lock(self->mutex_);
                                self->closed_ = true;
                              }
                              self->wake_.notify_all();
                            });
    } catch (const std::exception&) {
      buffered_bytes_ -= size;
      return false;
    }
    return true;
  }

  bool send_json(const nlohmann::json& message) {
    return send_frame(restinio::websocket::basic::opcode_t::text_frame,
                      message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }

  // Waits until the client has taken most of what was sent (flow control for media); throws
  // Cancelled when it has gone or stopped reading.
  void send_media(std::string frame) {
    auto start = std::chrono::steady_clock::now();
    std::unique_lock lock(mutex_);
    while (!closed_ && buffered_bytes_ > kMaxBufferedBytes) {
      wake_.wait_for(lock, std::chrono::milliseconds(50));
      if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > kStalledClient_s) {
        lock.unlock();
        close(restinio::websocket::basic::status_code_t::policy_violation, "client stopped reading");
        throw Cancelled{};
      }
    }
    if (closed_) throw Cancelled{};
    lock.unlock();
    if (!send_frame(restinio::websocket::basic::opcode_t::binary_frame, std::move(frame))) throw Cancelled{};
  }

  // Loads what the session needs; what is missing is said once, and the session goes on with
  // what it has (text replies without a face, or nothing until `prepare` has run).
  void setup() {
    load_engine();
    std::string problem = engine_error_;
    nlohmann::json voice = nullptr;
    try {
      say::SayOptions say_options = models_->say_options();
      performer_ = std::make_unique<say::Performer>(models_->load_cast(), say_options);
      voice = performer_->voice().name();
      size_ = say_options.size;
      fps_ = say_options.fps;
    } catch (const std::exception& e) {
      if (problem.empty()) problem = "no voice and face yet: " + describe(e);
      spdlog::warn("live session {}: {}", id_, describe(e));
    }
    send_json({{"type", "hello"},
               {"session", id_},
               {"synthetic", true},
               {"engine", engine_ ? nlohmann::json(engine_->name()) : nlohmann::json(nullptr)},
               {"voice", voice},
               {"size", size_},
               {"fps", fps_},
               {"sample_rate", kSampleRate}});
    if (!problem.empty()) send_json({{"type", "error"}, {"error", problem}});
  }

  void load_engine() {
    if (engine_) return;
    try {
      std::lock_guard lock(models_->memory_mutex);
      memory_ = std::make_unique<persona::Memory>(options_.avatar, params_);
      if (options_.engine == "openai") {
        persona::OpenAiOptions openai;
        openai.url = options_.llm_url;
        openai.model = options_.llm_model;
        openai.api_key = options_.llm_api_key;
        engine_ = persona::make_openai_engine(*memory_, openai);
      } else if (options_.engine == "llm") {
        engine_ = persona::make_llm_engine(*memory_, options_.llm);
      } else {
        engine_ = persona::make_extractive_engine(*memory_);
      }
      engine_error_.clear();
    } catch (const std::exception& e) {
      engine_error_ = describe(e);
    }
  }

  void handle(const std::string& raw) {
    try {
      LiveMessage message = parse_live_message(raw);
      if (message.type == LiveMessage::Type::message) {
        converse(message.text);
      } else if (message.type == LiveMessage::Type::resume) {
        resume(message.conversation_id);
      } else {
        std::string text = transcribe(message.audio_base64, message.mime);
        send_json({{"type", "transcript"}, {"text", text}});
        if (text.empty()) throw InputError("no words were heard in the voice message; try again closer to the microphone");
        converse(text);
      }
    } catch (const Cancelled&) {
      throw;
    } catch (const std::exception& e) {
      // A bad message or a failed reply ends that reply, not the session.
      ErrorKind kind = kind_of(e);
      if (kind == ErrorKind::internal) spdlog::error("live session {}: {}", id_, describe(e));
      send_json({{"type", "error"}, {"error", describe(e)}});
    }
  }

  // A recorded voice message -> text, through a file inside the workspace (FFmpeg decodes it),
  // by Whisper when the server was started with it (load_stt), else PocketSphinx.
  std::string transcribe(const std::string& audio_base64, const std::string& mime) {
    auto decoded = restinio::utils::base64::try_decode(audio_base64);
    if (!decoded) throw InputError("audio_base64 is not valid base64");
    if (decoded->empty()) throw InputError("the voice message is empty");
    fs::path dir = workspace::tmp_dir(options_.avatar);
    fs::create_directories(dir);
    fs::path file = dir / fmt::format("voice-{}-{}{}", id_, ++voice_count_, extension_for(mime));
    std::vector<float> audio;
    try {
      write_file_atomic(file, *decoded);
      audio = media::decode_audio(file, kSampleRate);
    } catch (const Error& e) {
      std::error_code ec;
      fs::remove(file, ec);
      // The decoder's message names the server's file: the client needs to hear about its audio.
      if (e.kind() != ErrorKind::user_input) throw;
      throw InputError(fmt::format("the voice message is not audio that can be decoded ({}): record it again "
                                   "(WebM/Opus, Ogg or WAV)",
                                   mime));
    } catch (...) {
      std::error_code ec;
      fs::remove(file, ec);
      throw;
    }
    std::error_code ec;
    fs::remove(file, ec);
    if (options_.loaded_whisper) {
      whisper::TranscribeParams params;
      params.should_stop = [this] { return cancelled(); };
      whisper::Transcript heard;
      try {
        heard = whisper::transcribe_samples(*options_.loaded_whisper, audio, params);
      } catch (const Stopped&) {
        throw Cancelled{};  // the client has gone
      }
      std::string text;
      for (const auto& segment : heard.segments) {
        std::string piece = segment.text;
        piece.erase(0, piece.find_first_not_of(' '));
        if (!piece.empty()) text += (text.empty() ? "" : " ") + piece;
      }
      return text;
    }
    if (!recognizer_) {
      // The person's language model when `dself train stt` made one (it knows what visitors ask the
      // person about); the acoustic model adapted to the person's voice only where `eval stt` found
      // it does not hurt other speakers (docs/STT.md); else the generic model.
      auto person = stt::visitor_recognizer_options(options_.avatar);
      recognizer_ = std::make_unique<transcript::PocketSphinxRecognizer>(person ? *person : transcript::PocketSphinxOptions{});
    }
    transcript::Transcript heard = recognizer_->transcribe(audio);
    std::string text;
    for (const auto& word : heard.words) text += (text.empty() ? "" : " ") + word.text;
    return text;
  }

  // Goes on with an earlier conversation (after a reload or a reconnection): its messages become
  // the history the next replies lean on, and the next messages are added to it.
  void resume(int64_t conversation_id) {
    history_ = persona::conversation_history(options_.avatar, conversation_id);
    conversation_id_ = conversation_id;
    send_json({{"type", "resumed"}, {"conversation_id", conversation_id}, {"messages", history_.size()}});
  }

  void converse(const std::string& text) {
    reply_frames_ = 0;
    persona::check_message(text, params_);
    load_engine();
    if (!engine_) throw InputError(engine_error_);
    if (!catalog_) catalog_ = std::make_unique<Catalog>(options_.avatar);
    if (conversation_id_ == 0) conversation_id_ = catalog_->start_conversation(engine_->name());
    history_.push_back({"user", text, {}});
    catalog_->add_message({conversation_id_, "user", text, "[]", ""});
    // The engine may call this from inside a C library (libcurl): it says "stop" rather than
    // throwing, and the session unwinds once the engine has returned.
    persona::Reply reply = engine_->reply(history_, [this](std::string_view piece) {
      if (cancelled()) return false;
      send_json({{"type", "reply_delta"}, {"text", std::string(piece)}});
      return true;
    });
    if (reply.stopped || cancelled()) throw Cancelled{};
    send_json({{"type", "reply"},
               {"text", reply.text},
               {"sources", sources_json(reply.sources, true)},
               {"conversation_id", conversation_id_}});
    history_.push_back({"assistant", reply.text, reply.sources});
    catalog_->add_message(
        {conversation_id_, "assistant", reply.text, sources_json(reply.sources, false).dump(), ""});
    perform(reply.text);
  }

  // The reply said and drawn, sentence by sentence: the sentence's timing and its audio (PCM
  // s16le) as soon as it is said, then each frame (JPEG) as it is drawn; so the client can start
  // playing the first sentence while its frames are still being drawn.
  void perform(const std::string& text) {
    int frame_count = 0;
    double duration_s = 0;
    if (performer_) {
      const double reply_start_s = performer_->elapsed_s();
      int reply_first_frame = -1;
      std::vector<std::string> sentences = voice::split_sentences(text);
      std::vector<uchar> jpeg;
      std::vector<int16_t> pcm;
      for (size_t i = 0; i < sentences.size(); ++i) {
        auto on_speech = [&](const say::SentenceTake& take) {
          if (cancelled()) throw Cancelled{};
          if (reply_first_frame < 0) reply_first_frame = take.first_frame;
          const double start_s = take.start_s - reply_start_s;
          send_json({{"type", "sentence"},
                     {"index", i},
                     {"text", sentences[i]},
                     {"start_s", start_s},
                     {"duration_s", take.speech.duration_s()},
                     {"first_frame", take.first_frame - reply_first_frame},
                     {"frame_count", take.frame_count}});
          pcm.resize(take.speech.samples.size());
          for (size_t k = 0; k < pcm.size(); ++k) {
            pcm[k] = static_cast<int16_t>(std::lrint(std::clamp(take.speech.samples[k], -1.0f, 1.0f) * 32767.0f));
          }
          send_media(binary_frame('A', static_cast<uint32_t>(i), start_s, pcm.data(), pcm.size() * sizeof(int16_t)));
        };
        auto on_frame = [&](int frame_index, const cv::Mat& frame) {
          if (cancelled()) throw Cancelled{};
          cv::imencode(".jpg", frame, jpeg, {cv::IMWRITE_JPEG_QUALITY, kJpegQuality});
          int index = frame_index - reply_first_frame;
          send_media(binary_frame('F', static_cast<uint32_t>(index), index / fps_, jpeg.data(), jpeg.size()));
          frame_count = reply_frames_ = index + 1;
        };
        performer_->perform(sentences[i], on_frame, on_speech);
      }
      duration_s = performer_->elapsed_s() - reply_start_s;
    }
    send_json({{"type", "done"}, {"frame_count", frame_count}, {"duration_s", duration_s}});
  }

  const int64_t id_;
  const ServeOptions options_;
  std::shared_ptr<SharedModels> models_;
  persona::PersonaParams params_;

  mutable std::mutex mutex_;  // closed_, inbox_
  std::condition_variable wake_;
  bool closed_ = false;
  std::deque<std::string> inbox_;
  std::atomic<bool> finished_{false};

  std::mutex send_mutex_;  // socket_
  ws::ws_handle_t socket_;
  std::atomic<size_t> buffered_bytes_{0};

  std::string partial_;  // a fragmented message so far (I/O thread only)
  bool partial_binary_ = false;

  // The worker thread's own.
  std::unique_ptr<persona::Memory> memory_;
  std::unique_ptr<persona::ChatEngine> engine_;
  std::string engine_error_;
  std::unique_ptr<Catalog> catalog_;
  int64_t conversation_id_ = 0;
  std::vector<persona::Message> history_;
  std::unique_ptr<transcript::PocketSphinxRecognizer> recognizer_;
  int voice_count_ = 0;
  int reply_frames_ = 0;  // frames sent of the reply under way
  int size_ = 512;
  double fps_ = 25;
  std::unique_ptr<say::Performer> performer_;
};

LiveHub::LiveHub(const ServeOptions& options) : options_(options), models_(std::make_shared<SharedModels>()) {
  models_->options = options;
}

LiveHub::~LiveHub() { stop_all(); }

Handled LiveHub::accept(const Request& request) {
  if (restinio::http_connection_header_t::upgrade != request->header().connection() ||
      header(request, "Upgrade").find("websocket") == std::string::npos ||
      header(request, "Sec-WebSocket-Key").empty()) {
    throw HttpError(400, "GET /api/live is a WebSocket: connect with a WebSocket client");
  }
  reap();
  std::shared_ptr<LiveSession> session;
  int64_t id = 0;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) throw HttpError(503, "the server is stopping");
    if (static_cast<int>(sessions_.size()) >= options_.max_live_sessions) {
      throw HttpError(429, fmt::format("{} live conversations are open, the most this server takes "
                                       "(dself serve --max-live-sessions); try again later",
                                       sessions_.size()));
    }
    id = next_id_++;
    session = std::make_shared<LiveSession>(id, options_, models_);
    sessions_[id].session = session;
  }
  std::weak_ptr<LiveSession> weak = session;
  ws::ws_handle_t socket;
  try {
    socket = ws::upgrade<Traits>(*request, ws::activation_t::immediate,
                                 [weak](const ws::ws_handle_t&, const ws::message_handle_t& message) {
                                   auto s = weak.lock();
                                   if (!s) return;
                                   try {
                                     s->on_frame(message);
                                   } catch (const std::exception& e) {
                                     spdlog::warn("live session: a client's frame could not be taken: {}", e.what());
                                   }
                                 });
  } catch (...) {
    std::lock_guard lock(mutex_);
    sessions_.erase(id);
    throw;
  }
  session->attach(socket);
  spdlog::info("live session {} opened", id);
  {
    std::lock_guard lock(mutex_);
    sessions_[id].thread = std::thread([session] { session->run(); });
  }
  return restinio::request_accepted();
}

int LiveHub::session_count() const {
  std::lock_guard lock(mutex_);
  int open = 0;
  for (const auto& [id, entry] : sessions_) open += entry.session->finished() ? 0 : 1;
  return open;
}

void LiveHub::reap() {
  std::vector<std::thread> done;
  {
    std::lock_guard lock(mutex_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (it->second.session->finished() && it->second.thread.joinable()) {
        done.push_back(std::move(it->second.thread));
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& thread : done) thread.join();
}

void LiveHub::stop_all() {
  std::map<int64_t, Entry> sessions;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    sessions.swap(sessions_);
  }
  for (auto& [id, entry] : sessions) entry.session->stop();
  for (auto& [id, entry] : sessions) {
    if (entry.thread.joinable()) entry.thread.join();
  }
}

void LiveHub::invalidate() { models_->invalidate(); }

nlohmann::json LiveHub::say(const std::string& text) {
  persona::PersonaParams params;
  persona::check_message(text, params);
  fs::create_directories(workspace::renders_dir(options_.avatar));
  std::string stamp = utc_now();
  stamp.erase(std::remove_if(stamp.begin(), stamp.end(), [](char c) { return c == ':' || c == '-'; }), stamp.end());
  std::string name = fmt::format("say-{}-{}.mp4", stamp, ++renders_);
  // The shared cast: loaded once, not per call (it took seconds: the motion model is learned).
  say::SayResult result =
      say::say(text, workspace::renders_dir(options_.avatar) / name, {}, models_->say_options(), models_->load_cast());
  return {{"video", "/api/renders/" + name},
          {"duration_s", result.duration_s},
          {"sentences", result.sentence_count},
          {"voice", result.voice_name}};
}

}  // namespace dself::server::detail
