// `dself serve` on the sample person, with the extractive engine and the fallback voice:
//   live      time from a message to the first reply text, the first frame and the first audio,
//             and the sustained frame rate, for 1 and 4 clients at once;
//   say       the latency of POST /api/say (a video of a short text, over HTTP);
//   connects  the server's resident memory before and after 200 live sessions opened and closed.
// Prints tables; asserts nothing. `bench_serve [live|say|connects]...` runs those parts (default:
// all). DSELF_BENCH_AVATAR=DIR uses a copy of a prepared avatar instead of making one.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.h"
#include "support/client.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start, Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(t - start).count();
}


struct Turn {
  bool ok = false;
  std::string error;
  double hello_ms = 0;        // from connecting to the hello (the session's models loaded)
  double first_text_ms = -1;  // from sending the message
  double first_frame_ms = -1;
  double first_audio_ms = -1;
  double done_ms = -1;
  int frames = 0;
  double speech_s = 0;
  double frames_span_s = 0;  // first frame to last frame, seconds
};

Turn converse(uint16_t port, const std::string& question) {
  Turn turn;
  dself::client::WebSocketClient client;
  auto connect = Clock::now();
  if (client.open("127.0.0.1", port, "/api/live") != 101) {
    turn.error = "refused: " + client.refusal().body;
    return turn;
  }
  while (true) {
    auto message = client.receive(120);
    if (!message) {
      turn.error = "no hello";
      return turn;
    }
    if (!message->binary && nlohmann::json::parse(message->data).value("type", "") == "hello") break;
  }
  turn.hello_ms = ms_since(connect, Clock::now());
  auto start = Clock::now();
  Clock::time_point last_frame;
  client.send_text(nlohmann::json{{"type", "message"}, {"text", question}}.dump());
  while (true) {
    auto message = client.receive(120);
    if (!message) {
      turn.error = "the reply stopped";
      return turn;
    }
    auto now = Clock::now();
    if (message->binary) {
      if (message->data[0] == 'F') {
        if (turn.first_frame_ms < 0) turn.first_frame_ms = ms_since(start, now);
        last_frame = now;
        ++turn.frames;
      } else if (turn.first_audio_ms < 0) {
        turn.first_audio_ms = ms_since(start, now);
      }
      continue;
    }
    nlohmann::json json = nlohmann::json::parse(message->data);
    std::string type = json.value("type", "");
    if (type == "reply_delta" && turn.first_text_ms < 0) turn.first_text_ms = ms_since(start, now);
    if (type == "error") {
      turn.error = json.value("error", "");
      if (turn.first_text_ms < 0) return turn;
    }
    if (type == "done") {
      turn.done_ms = ms_since(start, now);
      turn.speech_s = json.value("duration_s", 0.0);
      break;
    }
  }
  if (turn.frames > 1) turn.frames_span_s = ms_since(start, last_frame) / 1000.0 - turn.first_frame_ms / 1000.0;
  client.close();
  turn.ok = true;
  return turn;
}

double median(std::vector<double> values) {
  if (values.empty()) return -1;
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// The resident memory of a process (VmRSS in /proc/PID/status), MiB; -1 when unknown.
double rss_mib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;
  }
  return -1;
}

int live_sessions(uint16_t port) {
  auto metrics = nlohmann::json::parse(dself::client::http_request("127.0.0.1", port, "GET", "/api/metrics").body,
                                       nullptr, false);
  if (!metrics.is_object() || !metrics.contains("server")) return -1;
  return metrics["server"].value("live_sessions", -1);
}

// POST /api/say, sequentially: the first call and the median of the others, ms.
void bench_say(uint16_t port) {
  const std::string text = "Hello there. I like to talk about trains.";
  std::vector<double> ms;
  for (int i = 0; i < 5; ++i) {
    auto start = Clock::now();
    auto response = dself::client::http_request("127.0.0.1", port, "POST", "/api/say",
                                                nlohmann::json{{"text", text}}.dump(),
                                                {{"Content-Type", "application/json"}}, 300);
    if (response.status != 200) {
      std::fprintf(stderr, "bench_serve: POST /api/say answered %d: %s\n", response.status, response.body.c_str());
      return;
    }
    ms.push_back(ms_since(start, Clock::now()));
  }
  std::vector<double> rest(ms.begin() + 1, ms.end());
  std::printf("POST /api/say (\"%s\", 2 sentences), sequential:\n", text.c_str());
  std::printf("%-14s %14s %12s\n", "calls", "1st call ms", "median ms");
  std::printf("%-14zu %14.0f %12.0f\n\n", ms.size(), ms[0], median(rest));
}

// 200 live sessions opened (each until its hello) and closed, one after another; the server's RSS.
void bench_connects(uint16_t port, int pid) {
  const int rounds = 200;
  auto cycle = [&](int n) {
    int failed = 0;
    for (int i = 0; i < n; ++i) {
      dself::client::WebSocketClient client;
      if (client.open("127.0.0.1", port, "/api/live") != 101) {
        ++failed;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      while (auto message = client.receive(60)) {
        if (!message->binary && nlohmann::json::parse(message->data).value("type", "") == "hello") break;
      }
      client.close();
    }
    for (int i = 0; i < 200 && live_sessions(port) != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return failed;
  };
  cycle(5);  // the shared models and the allocator's pools settle first
  double before = rss_mib(pid);
  int failed = cycle(rounds);
  double after = rss_mib(pid);
  failed += cycle(rounds);
  double after_twice = rss_mib(pid);
  std::printf("live sessions opened and closed (each until its hello), server RSS:\n");
  std::printf("%-10s %12s %16s %16s %8s\n", "sessions", "before MiB", "after 200 MiB", "after 400 MiB", "refused");
  std::printf("%-10d %12.1f %16.1f %16.1f %8d\n\n", rounds, before, after, after_twice, failed);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> parts(argv + 1, argv + argc);
  if (parts.empty()) parts = {"live", "say", "connects"};
  auto wanted = [&](const std::string& part) { return std::find(parts.begin(), parts.end(), part) != parts.end(); };
  const fs::path dir = fs::temp_directory_path() / "dself-bench-serve";
  const fs::path avatar = dir / "avatar";
  std::printf("serve on the sample person (extractive engine, fallback voice); %u hardware threads\n\n",
              std::thread::hardware_concurrency());
  if (!fs::exists(avatar / "dself.db")) {
    fs::create_directories(dir);
    if (const char* given = std::getenv("DSELF_BENCH_AVATAR")) {
      fs::copy(given, avatar, fs::copy_options::recursive);
    } else {
      const fs::path sample = dir / "sample";
      using dself::bench::must;
      using dself::bench::run_dself;
      if (!must(run_dself({"--quiet", "sample", "--out", sample, "--minutes", "1", "--videos", "1", "--seed", "4"}),
                "bench_serve", "sample") ||
          !must(run_dself({"--quiet", "--avatar", avatar, "ingest", sample}), "bench_serve", "ingest") ||
          !must(run_dself({"--quiet", "--avatar", avatar, "prepare"}), "bench_serve", "prepare")) {
        return 1;
      }
    }
  }
  dself::client::ServeProcess server(DSELF_BINARY, avatar, {"--max-live-sessions", "8"}, "/dev/null");
  const uint16_t port = server.port;
  if (!server.ready) {
    std::fprintf(stderr, "bench_serve: dself serve did not start\n");
    return 1;
  }
  if (wanted("say")) bench_say(port);
  if (wanted("connects")) bench_connects(port, server.pid());
  if (!wanted("live")) return 0;
  const std::vector<std::string> questions = {"What do you like to talk about?", "Tell me about your work.",
                                              "What did you learn this year?", "How do you start your day?"};
  // The first session loads (and may build) the models the others share.
  Turn warm = converse(port, questions[0]);
  if (!warm.ok) {
    std::fprintf(stderr, "bench_serve: the first conversation failed: %s\n", warm.error.c_str());
    return 1;
  }
  std::printf("first session: hello after %.0f ms (loads the shared models)\n\n", warm.hello_ms);
  std::printf("%-8s %10s %12s %12s %12s %9s %8s %12s %11s\n", "clients", "hello ms", "1st text ms", "1st frame ms",
              "1st audio ms", "speech s", "frames", "fps/client", "fps total");
  for (int clients : {1, 4}) {
    std::vector<Turn> turns(clients);
    std::vector<std::thread> threads;
    auto start = Clock::now();
    for (int i = 0; i < clients; ++i) {
      threads.emplace_back([&, i] { turns[i] = converse(port, questions[i % questions.size()]); });
    }
    for (auto& t : threads) t.join();
    double wall_s = ms_since(start, Clock::now()) / 1000.0;
    std::vector<double> hello, text, frame, audio, speech, fps;
    int frames = 0, failed = 0;
    for (const auto& t : turns) {
      if (!t.ok) {
        ++failed;
        std::fprintf(stderr, "bench_serve: a client failed: %s\n", t.error.c_str());
        continue;
      }
      hello.push_back(t.hello_ms);
      text.push_back(t.first_text_ms);
      frame.push_back(t.first_frame_ms);
      audio.push_back(t.first_audio_ms);
      speech.push_back(t.speech_s);
      if (t.frames_span_s > 0) fps.push_back((t.frames - 1) / t.frames_span_s);
      frames += t.frames;
    }
    std::printf("%-8d %10.0f %12.1f %12.0f %12.0f %9.2f %8d %12.1f %11.1f%s\n", clients, median(hello), median(text),
                median(frame), median(audio), median(speech), frames, median(fps), frames / wall_s,
                failed ? " (some failed)" : "");
  }
  std::printf("\n(medians over clients; fps/client: frames while streaming; fps total: all frames / wall time;\n"
              " the video plays at 25 fps, so fps/client above 25 keeps up with real time)\n");
  return 0;
}
