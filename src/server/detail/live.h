// The live conversation (GET /api/live, a WebSocket; protocol in docs/API.md) and `say` renders:
// each session has a worker thread of its own for its chat engine, voice, motion and renderer,
// on models loaded once and shared.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "server/detail/http.h"
#include "server/server.h"

namespace dself::server::detail {

class LiveSession;
struct SharedModels;

class LiveHub {
 public:
  explicit LiveHub(const ServeOptions& options);
  ~LiveHub();  // stops every session
  LiveHub(const LiveHub&) = delete;
  LiveHub& operator=(const LiveHub&) = delete;

  // Upgrades the request to a conversation (access and Origin are checked before); 429 when
  // max_live_sessions are already open, 400 for a request that is not a WebSocket upgrade.
  Handled accept(const Request& request);
  int session_count() const;
  // Cancels every session's work and closes its socket; waits for their threads.
  void stop_all();
  // The workspace changed (a prepare or a train job finished): models and memory load again on next use.
  void invalidate();

  // Renders `text` to <avatar>/renders/NAME.mp4 on the calling thread (a worker's): the answer
  // of POST /api/say. InputError for text with nothing to say.
  nlohmann::json say(const std::string& text);

 private:
  friend class LiveSession;
  void reap();  // joins the threads of sessions that ended

  ServeOptions options_;
  std::shared_ptr<SharedModels> models_;
  mutable std::mutex mutex_;
  struct Entry {
    std::shared_ptr<LiveSession> session;
    std::thread thread;
  };
  std::map<int64_t, Entry> sessions_;
  int64_t next_id_ = 1;
  std::atomic<int> renders_{0};
  bool stopping_ = false;
};

}  // namespace dself::server::detail
