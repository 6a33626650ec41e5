// `dself serve` end to end: the real binary on a free loopback port, against a copy of the
// prepared sample avatar, spoken to over real HTTP and WebSocket. Every bad request is followed
// by a good one: the server must keep serving.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <tuple>

#include "support/client.h"
#include "support.h"

namespace dself::test {
namespace {

namespace fs = std::filesystem;
using client::HttpResponse;
using client::ServeProcess;
using client::WebSocketClient;
using Clock = std::chrono::steady_clock;

nlohmann::json parse(const std::string& text) { return nlohmann::json::parse(text, nullptr, false); }

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

std::string fmt_range(size_t first, size_t last, size_t size) {
  return "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" + std::to_string(size);
}

std::string base64(const std::string& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int k = 3; k >= 0; --k) out += table[(v >> (6 * k)) & 63];
  }
  if (i + 1 == bytes.size()) {
    uint32_t v = uint8_t(bytes[i]) << 16;
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8);
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += table[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

// The prepared avatar with the say pipeline's models built once (by `dself say`) and kept beside
// it: every server test process copies this one, so none spends seconds building them again.
fs::path warmed_avatar() {
  const fs::path prepared = prepared_avatar_dir();
  const fs::path warm = prepared.parent_path() / "test-server-avatar";
  const fs::path building = prepared.parent_path() / "test-server-avatar.building";
  int lock = open((warm.string() + ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  flock(lock, LOCK_EX);
  std::error_code ec;
  bool fresh = fs::exists(warm / "warmed") &&
               fs::last_write_time(warm / "warmed", ec) >= fs::last_write_time(prepared / "dself.db", ec);
  if (!fresh) {
    fs::remove_all(warm, ec);
    fs::remove_all(building, ec);
    fs::copy(prepared, building, fs::copy_options::recursive);
    run_dself({"--quiet", "--avatar", building.string(), "say", "Hello.", "-o", (building / "warm.mp4").string()});
    fs::remove(building / "warm.mp4", ec);
    std::ofstream(building / "warmed") << "models built by test_server\n";
    fs::rename(building, warm);
  }
  flock(lock, LOCK_UN);
  close(lock);
  return warm;
}

fs::path copy_warmed_avatar(const fs::path& dir) {
  fs::path copy = dir / "avatar";
  fs::copy(warmed_avatar(), copy, fs::copy_options::recursive);
  return copy;
}

// The server the tests share: small limits so that every limit can be crossed cheaply, a web
// root with a symbolic link out of it, and a yt-dlp that takes its time and fails.
class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    avatar_ = copy_warmed_avatar(dir_->path());
    web_ = dir_->path() / "web";
    fs::create_directories(web_ / "assets");
    std::ofstream(web_ / "index.html") << "<!doctype html><title>dself test UI</title>";
    std::ofstream(web_ / "assets" / "app.js") << "console.log('dself');";
    std::ofstream(dir_->path() / "secret.txt") << "SECRET-OUTSIDE-WEB-ROOT";
    fs::create_symlink(dir_->path() / "secret.txt", web_ / "escape.txt");
    // The test's yt-dlp holds its job running until the test opens its gate (a file), then fails:
    // a test decides when the job ends instead of racing a fixed delay. (It gives up after 60 s.)
    fs::path slow = dir_->path() / "slow-yt-dlp";
    std::ofstream(slow) << "#!/bin/sh\ni=0\nwhile [ ! -e '" << gate().string()
                        << "' ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\n"
                           "echo 'ERROR: no such video' >&2\nexit 1\n";
    fs::permissions(slow, fs::perms::owner_all);
    server_ = new ServeProcess(DSELF_BINARY, avatar_,
                               {"--web-root", web_.string(), "--max-upload-mb", "1", "--max-body-kb", "16",
                                "--max-message-kb", "512", "--max-live-sessions", "2", "--yt-dlp", slow.string()},
                               dir_->path() / "serve.log");
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }
  void SetUp() override { ASSERT_TRUE(server_->ready) << read_bytes(dir_->path() / "serve.log"); }
  // After every bad request: a good one still gets its answer.
  void TearDown() override {
    HttpResponse status = get("/api/status");
    EXPECT_EQ(status.status, 200) << "the server stopped serving: " << read_bytes(dir_->path() / "serve.log");
    EXPECT_TRUE(server_->alive());
  }

  // While this file is absent, the test's yt-dlp waits.
  static fs::path gate() { return dir_->path() / "yt-dlp-gate"; }

  static HttpResponse get(const std::string& target, const client::HeaderList& headers = {}) {
    return client::http_request("127.0.0.1", server_->port, "GET", target, {}, headers);
  }
  static HttpResponse post_json(const std::string& target, const nlohmann::json& body,
                                client::HeaderList headers = {}) {
    headers.push_back({"Content-Type", "application/json"});
    return client::http_request("127.0.0.1", server_->port, "POST", target, body.dump(), headers);
  }
  static HttpResponse post(const std::string& target, const std::string& body, const client::HeaderList& headers = {}) {
    return client::http_request("127.0.0.1", server_->port, "POST", target, body, headers);
  }
  static std::string error_of(const HttpResponse& response) {
    nlohmann::json json = parse(response.body);
    return json.is_object() && json.contains("error") ? json["error"].get<std::string>() : "(no error field)";
  }
  // Waits for a job to finish; its final JSON.
  static nlohmann::json wait_job(int64_t id, double timeout_s = 60) {
    auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
    nlohmann::json job;
    while (Clock::now() < deadline) {
      job = parse(get("/api/jobs/" + std::to_string(id)).body)["job"];
      if (job["state"] == "done" || job["state"] == "failed" || job["state"] == "interrupted") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return job;
  }
  static void wait_idle() {
    for (const auto& job : parse(get("/api/jobs").body)["jobs"]) wait_job(job["id"].get<int64_t>());
  }
  int open_live(WebSocketClient& client, const client::HeaderList& headers = {}) {
    return client.open("127.0.0.1", server_->port, "/api/live", headers);
  }
  // Reads text messages until one of `type`; all text messages read, in order.
  static std::vector<nlohmann::json> read_until(WebSocketClient& client, const std::string& type, double timeout_s = 60) {
    std::vector<nlohmann::json> seen;
    auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
    while (Clock::now() < deadline) {
      auto message = client.receive(1);
      if (!message) {
        if (client.closed()) break;
        continue;
      }
      if (message->binary) continue;
      seen.push_back(parse(message->data));
      if (seen.back().value("type", "") == type) break;
    }
    return seen;
  }

  static TempDir* dir_;
  static fs::path avatar_;
  static fs::path web_;
  static ServeProcess* server_;
};

TempDir* ServerTest::dir_ = nullptr;
fs::path ServerTest::avatar_;
fs::path ServerTest::web_;
ServeProcess* ServerTest::server_ = nullptr;

TEST_F(ServerTest, StatusIsWhatTheCliPrints) {
  HttpResponse response = get("/api/status");
  ASSERT_EQ(response.status, 200);
  EXPECT_NE(response.headers["content-type"].find("application/json"), std::string::npos);
  CommandResult cli = run_dself({"--quiet", "--avatar", avatar_.string(), "status", "--json"});
  ASSERT_EQ(cli.exit_code, 0) << cli.output;
  nlohmann::json api = parse(response.body);
  nlohmann::json printed = parse(cli.output);
  ASSERT_TRUE(api.is_object());
  // Jobs the server has run may have landed in between; the rest is the same document.
  api.erase("jobs");
  printed.erase("jobs");
  // The server adds what it transcribes voice messages with (its own flags).
  EXPECT_EQ(api["stt"]["voice_messages"], (nlohmann::json{{"engine", "pocketsphinx"}, {"whisper_model", nullptr}}));
  api["stt"].erase("voice_messages");
  EXPECT_EQ(api, printed);

  nlohmann::json metrics = parse(get("/api/metrics").body);
  EXPECT_TRUE(metrics["models"].is_object());
  EXPECT_TRUE(metrics["server"].contains("live_sessions"));
  EXPECT_TRUE(metrics["server"].contains("jobs_done"));
}

TEST_F(ServerTest, ServesTheWebUiWithContentTypes) {
  HttpResponse page = get("/");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("dself test UI"), std::string::npos);
  EXPECT_NE(page.headers["content-type"].find("text/html"), std::string::npos);
  HttpResponse script = get("/assets/app.js");
  EXPECT_EQ(script.status, 200);
  EXPECT_NE(script.headers["content-type"].find("javascript"), std::string::npos);
  // A page route of the single-page UI gets the UI.
  EXPECT_EQ(get("/conversation").status, 200);
  EXPECT_EQ(get("/assets/missing.js").status, 404);
}

TEST_F(ServerTest, StaticFilesCannotEscapeTheWebRoot) {
  for (const std::string target :
       {"/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt",
        "/assets/..%2f..%2fsecret.txt", "/..%5csecret.txt", "/assets/%252e%252e/secret.txt", "/escape.txt",
        "/..\\secret.txt", "/%00", "/%zz"}) {
    HttpResponse response = get(target);
    EXPECT_NE(response.status, 200) << target;
    EXPECT_EQ(response.body.find("SECRET-OUTSIDE-WEB-ROOT"), std::string::npos) << target;
  }
}

TEST_F(ServerTest, BadRequestsGetJsonErrors) {
  HttpResponse unknown = get("/api/nothing-here");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_FALSE(error_of(unknown).empty());
  HttpResponse not_json = post("/api/jobs", "{not json", {{"Content-Type", "application/json"}});
  EXPECT_EQ(not_json.status, 400);
  EXPECT_NE(error_of(not_json), "(no error field)");
  EXPECT_EQ(post("/api/jobs", R"({"kind": "prepare"})", {{"Content-Type", "text/plain"}}).status, 415);
  EXPECT_EQ(post_json("/api/jobs", {{"kind", "bake"}}).status, 400);
  EXPECT_EQ(post_json("/api/jobs", {{"kind", std::string(20000, 'x')}}).status, 413);
  EXPECT_EQ(post_json("/api/sources", {{"url", "file:///etc/passwd"}}).status, 400);
  EXPECT_EQ(get("/api/jobs/999999").status, 404);
  EXPECT_EQ(get("/api/conversations/999999").status, 404);
  EXPECT_EQ(get("/api/renders/..%2f..%2fdself.db").status, 404);
  // Only URLs and uploaded files can be ingested, never the server's other files.
  HttpResponse outside = post_json("/api/jobs", {{"kind", "ingest"}, {"sources", {"/etc/passwd"}}});
  EXPECT_EQ(outside.status, 400);
  EXPECT_EQ(post_json("/api/jobs", {{"kind", "ingest"}, {"sources", {"uploads/../../dself.db"}}}).status, 400);
}

TEST_F(ServerTest, UploadsLandOnlyInTheWorkspaceAndAreIngested) {
  wait_idle();
  std::string video = read_bytes(sample_dir() / "video_000.mp4");
  ASSERT_GT(video.size(), 1000u);
  ASSERT_LT(video.size(), 1u << 20) << "the upload limit of this test is 1 MiB";
  for (const std::string name : {"../../escape.mp4", "..%2F..%2Fescape.mp4", "/tmp/escape.mp4", ".hidden.mp4", "notes.txt", ""}) {
    HttpResponse response = post("/api/uploads?name=" + name, video, {{"Content-Type", "video/mp4"}});
    EXPECT_EQ(response.status, 400) << name << ": " << response.body;
  }
  EXPECT_FALSE(fs::exists(dir_->path() / "escape.mp4"));
  EXPECT_FALSE(fs::exists(avatar_ / "escape.mp4"));
  EXPECT_FALSE(fs::exists("/tmp/escape.mp4"));
  // Over the limit: 413 just above it; far above, the connection is closed before the body.
  EXPECT_EQ(post("/api/uploads?name=big.mp4", std::string((1 << 20) + 200000, 'x')).status, 413);
  HttpResponse huge = post("/api/uploads?name=huge.mp4", std::string(6 << 20, 'x'));
  EXPECT_TRUE(huge.status == 0 || huge.status == 413) << huge.status;
  EXPECT_EQ(get("/api/status").status, 200);

  // The sample's video is a source of the avatar already: said before anything is stored.
  HttpResponse duplicate = post("/api/uploads?name=my%20clip.mp4", video, {{"Content-Type", "video/mp4"}});
  ASSERT_EQ(duplicate.status, 409) << duplicate.body;
  EXPECT_NE(error_of(duplicate).find("my clip.mp4 is already in the avatar as source"), std::string::npos)
      << duplicate.body;
  EXPECT_GT(parse(duplicate.body)["duplicate"]["source_id"].get<int64_t>(), 0);
  EXPECT_FALSE(fs::exists(avatar_ / "uploads" / "my clip.mp4"));

  // A new file: stored, and (without ingest=0) ingested at once; this one is no video, and
  // ingest says so.
  HttpResponse upload =
      post("/api/uploads?name=not%20a%20video.mp4", std::string(5000, 'v'), {{"Content-Type", "video/mp4"}});
  ASSERT_EQ(upload.status, 202) << upload.body;
  nlohmann::json job = parse(upload.body)["job"];
  EXPECT_EQ(job["kind"], "ingest");
  EXPECT_EQ(parse(upload.body)["file"], "uploads/not a video.mp4");
  EXPECT_TRUE(fs::exists(avatar_ / "uploads" / "not a video.mp4"));
  nlohmann::json finished = wait_job(job["id"].get<int64_t>());
  EXPECT_EQ(finished["state"], "failed") << finished.dump();
  EXPECT_NE(finished["error"].get<std::string>().find("not a video.mp4"), std::string::npos) << finished.dump();
}

// Captions come with their video (matched by name) and several files become one ingest job;
// captions without their video, or in a format ingest cannot read, are refused naming the file.
TEST_F(ServerTest, UploadsTakeCaptionsWithTheirVideoAsOneJob) {
  wait_idle();
  const std::string vtt = "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nHello there.\n";
  HttpResponse orphan = post("/api/uploads?name=lonely.en.vtt", vtt);
  EXPECT_EQ(orphan.status, 400) << orphan.body;
  EXPECT_NE(error_of(orphan).find("lonely.en.vtt: no video named lonely"), std::string::npos) << orphan.body;
  HttpResponse ass = post("/api/uploads?name=talk.ass", "[Script Info]\n");
  EXPECT_EQ(ass.status, 400) << ass.body;
  EXPECT_NE(error_of(ass).find("talk.ass"), std::string::npos) << ass.body;
  EXPECT_FALSE(fs::exists(avatar_ / "uploads" / "lonely.en.vtt"));

  // Stored only (ingest=0): two videos, then the captions of one, then one job for all.
  HttpResponse first = post("/api/uploads?name=talk.mp4&ingest=0", std::string(3000, 'a'));
  ASSERT_EQ(first.status, 201) << first.body;
  EXPECT_EQ(parse(first.body)["file"], "uploads/talk.mp4");
  EXPECT_FALSE(parse(first.body).contains("job"));
  HttpResponse again = post("/api/uploads?name=talk.mp4&ingest=0", std::string(3000, 'a'));
  ASSERT_EQ(again.status, 201) << again.body;
  EXPECT_EQ(parse(again.body)["file"], "uploads/talk.mp4") << "the same bytes again are not stored twice";
  EXPECT_FALSE(fs::exists(avatar_ / "uploads" / "talk-1.mp4"));
  HttpResponse second = post("/api/uploads?name=other.mp4&ingest=0", std::string(3000, 'b'));
  ASSERT_EQ(second.status, 201) << second.body;
  HttpResponse bad_vtt = post("/api/uploads?name=talk.vtt", "not captions at all");
  EXPECT_EQ(bad_vtt.status, 400) << bad_vtt.body;
  EXPECT_NE(error_of(bad_vtt).find("talk.vtt: not WebVTT"), std::string::npos) << bad_vtt.body;
  HttpResponse captions = post("/api/uploads?name=talk.en.vtt", vtt);
  ASSERT_EQ(captions.status, 201) << captions.body;
  EXPECT_EQ(parse(captions.body)["video"], "uploads/talk.mp4");
  EXPECT_EQ(read_bytes(avatar_ / "uploads" / "talk.en.vtt"), vtt);

  HttpResponse started =
      post_json("/api/jobs", {{"kind", "ingest"}, {"sources", {"uploads/talk.mp4", "uploads/other.mp4"}}});
  ASSERT_EQ(started.status, 202) << started.body;
  nlohmann::json job = wait_job(parse(started.body)["job"]["id"].get<int64_t>());
  EXPECT_EQ(job["sources"].size(), 2u) << job.dump();
  // Neither is a real video: both are named in the one job's failure.
  EXPECT_NE(job["error"].get<std::string>().find("talk.mp4"), std::string::npos) << job.dump();
  EXPECT_NE(job["error"].get<std::string>().find("other.mp4"), std::string::npos) << job.dump();
}

// A file in parts: each appended where the last ended; until the last arrives nothing is in
// uploads/ (an interrupted upload adds nothing), and a part at the wrong offset says where to go on.
TEST_F(ServerTest, UploadsInPartsAddNothingUntilTheLastArrives) {
  wait_idle();
  std::string bytes;
  for (int i = 0; i < 3000; ++i) bytes += static_cast<char>('a' + i % 26);
  const std::string base = "/api/uploads?name=parts.mp4&ingest=0&total=3000&offset=";
  HttpResponse first = post(base + "0", bytes.substr(0, 1000));
  ASSERT_EQ(first.status, 202) << first.body;
  EXPECT_EQ(parse(first.body)["received"], 1000);
  EXPECT_FALSE(fs::exists(avatar_ / "uploads" / "parts.mp4")) << "half an upload is not in uploads/";
  HttpResponse skipped = post(base + "2000", bytes.substr(2000));
  EXPECT_EQ(skipped.status, 409) << skipped.body;
  EXPECT_EQ(parse(skipped.body)["received"], 1000);
  HttpResponse past = post(base + "1000", bytes.substr(0, 2500));
  EXPECT_EQ(past.status, 400) << past.body;
  HttpResponse second = post(base + "1000", bytes.substr(1000, 1000));
  ASSERT_EQ(second.status, 202) << second.body;
  EXPECT_FALSE(fs::exists(avatar_ / "uploads" / "parts.mp4"));
  HttpResponse last = post(base + "2000", bytes.substr(2000));
  ASSERT_EQ(last.status, 201) << last.body;
  EXPECT_EQ(parse(last.body)["file"], "uploads/parts.mp4");
  EXPECT_EQ(read_bytes(avatar_ / "uploads" / "parts.mp4"), bytes);
  EXPECT_FALSE(fs::exists(avatar_ / "uploads" / ".partial" / "parts.mp4"));
  // An interrupted one: a first part, then nothing; uploading it again starts from 0.
  ASSERT_EQ(post("/api/uploads?name=cut.mp4&ingest=0&total=3000&offset=0", bytes.substr(0, 1500)).status, 202);
  EXPECT_FALSE(fs::exists(avatar_ / "uploads" / "cut.mp4"));
  ASSERT_EQ(post("/api/uploads?name=cut.mp4&ingest=0&total=1500&offset=0", bytes.substr(0, 1500)).status, 201);
  EXPECT_EQ(read_bytes(avatar_ / "uploads" / "cut.mp4"), bytes.substr(0, 1500));
  // Over the limit by its total, before any byte is kept.
  EXPECT_EQ(post("/api/uploads?name=big.mp4&total=9999999999&offset=0", "x").status, 413);
  EXPECT_EQ(post("/api/uploads?name=x.mp4&total=10", "x").status, 400) << "offset and total go together";
}

// The report read through the API: every picture it shows loads, it scrolls inside a phone's
// width, and it leads back to the Studio.
TEST_F(ServerTest, ReportPicturesLoadThroughTheApi) {
  wait_idle();
  HttpResponse started = post_json("/api/jobs", {{"kind", "report"}});
  ASSERT_EQ(started.status, 202) << started.body;
  ASSERT_EQ(wait_job(parse(started.body)["job"]["id"].get<int64_t>())["state"], "done");
  HttpResponse page = get("/api/report");
  ASSERT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("data-testid=report-back"), std::string::npos);
  EXPECT_NE(page.body.find("#/studio"), std::string::npos);
  EXPECT_NE(page.body.find("overflow-x:auto"), std::string::npos);
  std::vector<std::string> pictures;
  for (size_t at = page.body.find("src='"); at != std::string::npos; at = page.body.find("src='", at + 5)) {
    pictures.push_back(page.body.substr(at + 5, page.body.find('\'', at + 5) - at - 5));
  }
  ASSERT_GE(pictures.size(), 2u) << "the fixture's report shows reference frames and a mouth atlas";
  for (const std::string& url : pictures) {
    EXPECT_EQ(url.rfind("/api/report/faces/", 0), 0u) << url;
    HttpResponse picture = get(url);
    EXPECT_EQ(picture.status, 200) << url;
    EXPECT_EQ(picture.body.substr(1, 3), "PNG") << url;
  }
  EXPECT_EQ(get("/api/report/faces/1/../../dself.db").status, 404);
  EXPECT_EQ(get("/api/report/faces/1/%2e%2e/summary.json").status, 404);
  EXPECT_EQ(get("/api/report/faces/1/summary.json").status, 404);
  EXPECT_EQ(get("/api/report/faces/999/mouths.png").status, 404);
}

// The person's own video, served for the Talk page's sources: whole, or the byte range a
// browser asks for when it seeks.
TEST_F(ServerTest, SourceVideosAnswerRangeRequests) {
  nlohmann::json status = parse(get("/api/status").body);
  ASSERT_FALSE(status["sources"].empty());
  int64_t id = status["sources"][0]["id"];
  std::string path;
  for (const auto& file : status["sources"][0]["files"]) {
    if (file["role"] == "video") path = file["path"];
  }
  std::string bytes = read_bytes(avatar_ / path);
  ASSERT_GT(bytes.size(), 1000u);
  const std::string url = "/api/sources/" + std::to_string(id) + "/video";
  HttpResponse whole = get(url);
  ASSERT_EQ(whole.status, 200);
  EXPECT_EQ(whole.headers["accept-ranges"], "bytes");
  EXPECT_EQ(whole.headers["content-type"], "video/mp4");
  EXPECT_EQ(whole.body, bytes);
  HttpResponse part = get(url, {{"Range", "bytes=100-199"}});
  ASSERT_EQ(part.status, 206);
  EXPECT_EQ(part.body, bytes.substr(100, 100));
  EXPECT_EQ(part.headers["content-range"], fmt_range(100, 199, bytes.size()));
  HttpResponse tail = get(url, {{"Range", "bytes=-10"}});
  ASSERT_EQ(tail.status, 206);
  EXPECT_EQ(tail.body, bytes.substr(bytes.size() - 10));
  HttpResponse open_end = get(url, {{"Range", "bytes=" + std::to_string(bytes.size() - 5) + "-"}});
  EXPECT_EQ(open_end.body, bytes.substr(bytes.size() - 5));
  EXPECT_EQ(get(url, {{"Range", "bytes=" + std::to_string(bytes.size()) + "-"}}).status, 416);
  EXPECT_EQ(get("/api/sources/999999/video").status, 404);
}

TEST_F(ServerTest, OneJobAtATimeWithEventsAndLogs) {
  wait_idle();
  std::thread listener;
  std::string events;
  listener = std::thread([&] {
    HttpResponse stream = client::http_stream("127.0.0.1", server_->port, "/api/events", {}, 30, [](const std::string& body) {
      return body.find("\"state\":\"failed\"") != std::string::npos;
    });
    events = stream.body;
  });
  // Subscribed when the server counts the listener (GET /api/metrics), not after a guessed while.
  ASSERT_TRUE(test::wait_until([] {
    nlohmann::json metrics = parse(get("/api/metrics").body);
    return metrics.is_object() && metrics["server"].value("event_subscribers", 0) >= 1;
  })) << get("/api/metrics").body;
  // The test's yt-dlp waits for its gate: the first job is running while a second is refused.
  HttpResponse first = post_json("/api/sources", {{"url", "https://example.invalid/watch?v=none"}});
  ASSERT_EQ(first.status, 202) << first.body;
  int64_t id = parse(first.body)["job"]["id"].get<int64_t>();
  HttpResponse second = post_json("/api/jobs", {{"kind", "prepare"}});
  EXPECT_EQ(second.status, 409) << second.body;
  EXPECT_FALSE(error_of(second).empty());
  std::ofstream(gate()) << "go\n";
  nlohmann::json job = wait_job(id);
  fs::remove(gate());
  EXPECT_EQ(job["state"], "failed");
  EXPECT_FALSE(job["error"].get<std::string>().empty());
  EXPECT_TRUE(job["log"].is_array());
  EXPECT_FALSE(job["log"].empty());
  listener.join();
  EXPECT_NE(events.find("event: job"), std::string::npos) << events;
  EXPECT_NE(events.find("\"state\":\"running\""), std::string::npos) << events;
  EXPECT_NE(events.find("\"state\":\"failed\""), std::string::npos) << events;
  // Free again: a report job runs and writes the page the API serves.
  HttpResponse report = post_json("/api/jobs", {{"kind", "report"}});
  ASSERT_EQ(report.status, 202) << report.body;
  EXPECT_EQ(wait_job(parse(report.body)["job"]["id"].get<int64_t>())["state"], "done");
  HttpResponse page = get("/api/report");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.headers["content-type"].find("text/html"), std::string::npos);
  nlohmann::json done =
      parse(get("/api/jobs/" + std::to_string(parse(report.body)["job"]["id"].get<int64_t>())).body)["job"];
  EXPECT_EQ(done["progress"]["share"], 1.0) << done.dump();
  nlohmann::json jobs = parse(get("/api/jobs").body)["jobs"];
  ASSERT_GE(jobs.size(), 2u);
  EXPECT_GT(jobs[0]["id"].get<int64_t>(), jobs[1]["id"].get<int64_t>()) << "newest first";
}

TEST_F(ServerTest, OriginAndHostAreChecked) {
  std::string own = "http://127.0.0.1:" + std::to_string(server_->port);
  WebSocketClient foreign;
  EXPECT_EQ(open_live(foreign, {{"Origin", "http://evil.example"}}), 403);
  EXPECT_FALSE(foreign.refusal().body.empty());
  EXPECT_EQ(post_json("/api/jobs", {{"kind", "report"}}, {{"Origin", "http://evil.example"}}).status, 403);
  // A page that points its own name at 127.0.0.1 (DNS rebinding) is refused.
  EXPECT_EQ(get("/api/status", {{"Host", "evil.example:" + std::to_string(server_->port)}}).status, 403);
  WebSocketClient same;
  ASSERT_EQ(open_live(same, {{"Origin", own}}), 101);
  auto hello = read_until(same, "hello", 60);
  ASSERT_FALSE(hello.empty());
  EXPECT_EQ(hello.back()["type"], "hello");
  EXPECT_EQ(hello.back()["synthetic"], true);
  same.close();
}

TEST_F(ServerTest, LiveConversationStreamsTextAudioAndFrames) {
  WebSocketClient client;
  ASSERT_EQ(open_live(client), 101);
  auto hello = read_until(client, "hello");
  ASSERT_FALSE(hello.empty());
  ASSERT_EQ(hello.back()["type"], "hello") << hello.back().dump();
  bool can_perform = !hello.back()["voice"].is_null();
  ASSERT_TRUE(client.send_text(R"({"type": "message", "text": "What do you like to talk about?"})"));
  int deltas = 0, sentences = 0, audio = 0, frames = 0;
  bool reply = false, done = false;
  int last_frame = -1;
  auto deadline = Clock::now() + std::chrono::seconds(120);
  while (!done && Clock::now() < deadline) {
    auto message = client.receive(2);
    if (!message) {
      ASSERT_FALSE(client.closed());
      continue;
    }
    if (message->binary) {
      ASSERT_GE(message->data.size(), 13u);
      uint32_t index;
      double time_s;
      std::memcpy(&index, message->data.data() + 1, 4);
      std::memcpy(&time_s, message->data.data() + 5, 8);
      EXPECT_GE(time_s, 0);
      if (message->data[0] == 'F') {
        EXPECT_EQ(static_cast<int>(index), last_frame + 1);
        last_frame = static_cast<int>(index);
        EXPECT_EQ(uint8_t(message->data[13]), 0xFF) << "a JPEG";
        EXPECT_EQ(uint8_t(message->data[14]), 0xD8);
        ++frames;
      } else {
        EXPECT_EQ(message->data[0], 'A');
        EXPECT_EQ((message->data.size() - 13) % 2, 0u) << "16-bit PCM";
        ++audio;
      }
      continue;
    }
    nlohmann::json json = parse(message->data);
    std::string type = json.value("type", "");
    if (type == "reply_delta") ++deltas;
    if (type == "reply") {
      reply = true;
      EXPECT_FALSE(json["text"].get<std::string>().empty());
      EXPECT_TRUE(json["sources"].is_array());
    }
    if (type == "sentence") ++sentences;
    if (type == "done") {
      done = true;
      EXPECT_EQ(json["frame_count"].get<int>(), frames);
    }
    ASSERT_NE(type, "error") << json.dump();
  }
  EXPECT_TRUE(done);
  EXPECT_TRUE(reply);
  EXPECT_GT(deltas, 0);
  if (can_perform) {
    EXPECT_GT(sentences, 0);
    EXPECT_EQ(audio, sentences);
    EXPECT_GT(frames, 0);
  }
  client.close();
  // The conversation is kept.
  nlohmann::json list = parse(get("/api/conversations").body)["conversations"];
  ASSERT_FALSE(list.empty());
  int64_t id = list[0]["id"].get<int64_t>();
  EXPECT_GE(list[0]["message_count"].get<int>(), 2);
  nlohmann::json conversation = parse(get("/api/conversations/" + std::to_string(id)).body);
  ASSERT_GE(conversation["messages"].size(), 2u);
  EXPECT_EQ(conversation["messages"][0]["role"], "user");
  EXPECT_EQ(conversation["messages"][1]["role"], "assistant");
}

TEST_F(ServerTest, BadLiveMessagesAreAnsweredAndTheSessionGoesOn) {
  WebSocketClient client;
  ASSERT_EQ(open_live(client), 101);
  read_until(client, "hello");
  client.send_text("not json");
  auto first = read_until(client, "error", 10);
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(first.back()["type"], "error");
  client.send_text(R"({"type": "dance"})");
  EXPECT_EQ(read_until(client, "error", 10).back()["type"], "error");
  client.send_text(R"({"type": "message", "text": ""})");
  EXPECT_EQ(read_until(client, "error", 10).back()["type"], "error");
  client.send_text(R"({"type": "voice", "mime": "audio/webm", "audio_base64": "@@@"})");
  EXPECT_EQ(read_until(client, "error", 10).back()["type"], "error");
  client.send_text(R"({"type": "voice", "mime": "audio/webm", "audio_base64": "bm90IGF1ZGlv"})");
  auto bad_voice = read_until(client, "error", 30);
  EXPECT_EQ(bad_voice.back()["type"], "error");
  EXPECT_EQ(bad_voice.back().dump().find("/tmp"), std::string::npos) << "a server-side path: " << bad_voice.back();
  // The message limit counts characters: 4001 "é" are over it and said so in characters.
  std::string accents;
  for (int i = 0; i < 4001; ++i) accents += "\u00e9";
  client.send_text(nlohmann::json{{"type", "message"}, {"text", accents}}.dump());
  auto over = read_until(client, "error", 10);
  ASSERT_FALSE(over.empty());
  EXPECT_NE(over.back().value("error", std::string()).find("4001 characters"), std::string::npos) << over.back();
  EXPECT_EQ(over.back().dump().find("PersonaParams"), std::string::npos) << over.back();
  EXPECT_FALSE(client.closed());
  client.close();
}

// A job can be stopped: it ends "interrupted" at its next safe point (the test's yt-dlp, which
// waits for a gate the test never opens, is ended at once).
TEST_F(ServerTest, AJobCanBeStopped) {
  wait_idle();
  HttpResponse started = post_json("/api/sources", {{"url", "https://example.invalid/watch?v=stop"}});
  ASSERT_EQ(started.status, 202) << started.body;
  const std::string id = std::to_string(parse(started.body)["job"]["id"].get<int64_t>());
  HttpResponse stop = post("/api/jobs/" + id + "/stop", "");
  EXPECT_EQ(stop.status, 202) << stop.body;
  nlohmann::json job = wait_job(std::stoll(id));
  EXPECT_EQ(job["state"], "interrupted") << job.dump();
  EXPECT_NE(job["error"].get<std::string>().find("interrupted"), std::string::npos) << job.dump();
  EXPECT_EQ(post("/api/jobs/" + id + "/stop", "").status, 409);
  EXPECT_EQ(post("/api/jobs/999999/stop", "").status, 404);
}

// What the router cannot take is answered 400, and the connection is not just dropped.
TEST_F(ServerTest, MalformedRequestLinesAndHostsAre400) {
  EXPECT_EQ(get("/%ZZ").status, 400);
  EXPECT_EQ(get("/api/status%").status, 400);
  std::string host = "127.0.0.1:" + std::to_string(server_->port);
  EXPECT_EQ(get("/api/status", {{"Host", host}, {"Host", host}}).status, 400);
  HttpResponse no_host =
      client::http_raw("127.0.0.1", server_->port, "GET /api/status HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(no_host.status, 400) << no_host.body;
}

TEST_F(ServerTest, VoiceMessagesAreTranscribed) {
  WebSocketClient client;
  ASSERT_EQ(open_live(client), 101);
  read_until(client, "hello");
  fs::path clip = avatar_ / "speech" / "1" / "0000.wav";
  ASSERT_TRUE(fs::exists(clip));
  client.send_text(nlohmann::json{{"type", "voice"}, {"mime", "audio/wav"}, {"audio_base64", base64(read_bytes(clip))}}.dump());
  auto seen = read_until(client, "transcript", 60);
  ASSERT_FALSE(seen.empty());
  ASSERT_EQ(seen.back()["type"], "transcript") << seen.back().dump();
  EXPECT_FALSE(seen.back()["text"].get<std::string>().empty());
  client.close();
}

// A reload or a reconnection goes on with the same conversation: the new session resumes it, its
// next messages land in it, and an unknown or malformed id is refused without ending the session.
TEST_F(ServerTest, ALiveSessionGoesOnWithAnEarlierConversation) {
  int64_t conversation = 0;
  {
    WebSocketClient first;
    ASSERT_EQ(open_live(first), 101);
    read_until(first, "hello");
    first.send_text(nlohmann::json{{"type", "message"}, {"text", "What do you like to talk about?"}}.dump());
    auto seen = read_until(first, "reply", 60);
    ASSERT_FALSE(seen.empty());
    ASSERT_EQ(seen.back()["type"], "reply") << seen.back().dump();
    conversation = seen.back()["conversation_id"].get<int64_t>();
    read_until(first, "done", 120);
    first.close();
  }
  ASSERT_GT(conversation, 0);

  WebSocketClient again;
  ASSERT_EQ(open_live(again), 101);
  read_until(again, "hello");
  again.send_text(nlohmann::json{{"type", "resume"}, {"conversation_id", conversation + 1000}}.dump());
  auto refused = read_until(again, "error", 20);
  ASSERT_FALSE(refused.empty());
  EXPECT_NE(refused.back().value("error", "").find("unknown conversation"), std::string::npos) << refused.back().dump();
  again.send_text(nlohmann::json{{"type", "resume"}, {"conversation_id", "one"}}.dump());
  refused = read_until(again, "error", 20);
  ASSERT_FALSE(refused.empty());
  EXPECT_NE(refused.back().value("error", "").find("conversation_id"), std::string::npos) << refused.back().dump();

  again.send_text(nlohmann::json{{"type", "resume"}, {"conversation_id", conversation}}.dump());
  auto resumed = read_until(again, "resumed", 20);
  ASSERT_FALSE(resumed.empty());
  ASSERT_EQ(resumed.back()["type"], "resumed") << resumed.back().dump();
  EXPECT_EQ(resumed.back()["messages"], 2);
  again.send_text(nlohmann::json{{"type", "message"}, {"text", "And what else?"}}.dump());
  auto reply = read_until(again, "reply", 60);
  ASSERT_FALSE(reply.empty());
  ASSERT_EQ(reply.back()["type"], "reply") << reply.back().dump();
  EXPECT_EQ(reply.back()["conversation_id"], conversation);
  read_until(again, "done", 120);
  again.close();

  auto log = parse(get("/api/conversations/" + std::to_string(conversation)).body);
  ASSERT_EQ(log["messages"].size(), 4u) << log.dump();
  EXPECT_EQ(log["messages"][2]["text"], "And what else?");
}

TEST_F(ServerTest, OversizedLiveMessageClosesOnlyThatSession) {
  WebSocketClient client;
  ASSERT_EQ(open_live(client), 101);
  read_until(client, "hello");
  client.send_text(std::string(600 * 1024, 'x'));
  auto seen = read_until(client, "error", 20);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back()["type"], "error");
  for (int i = 0; i < 20 && !client.closed(); ++i) client.receive(0.5);
  EXPECT_TRUE(client.closed());
  EXPECT_EQ(client.close_code(), 1009);
}

TEST_F(ServerTest, LiveSessionsAreLimitedAndDisconnectsStopTheirWork) {
  {
    WebSocketClient a, b, c;
    ASSERT_EQ(open_live(a), 101);
    ASSERT_EQ(open_live(b), 101);
    EXPECT_EQ(open_live(c), 429);
    EXPECT_FALSE(c.refusal().body.empty());
    read_until(a, "hello");
    read_until(b, "hello");
    // One asks and goes away as soon as the reply starts.
    a.send_text(R"({"type": "message", "text": "Tell me about your work."})");
    auto started = read_until(a, "reply_delta", 60);
    ASSERT_FALSE(started.empty());
    a.close();
    b.close();
  }
  // The reply was cut short, not rendered to its end for nobody.
  EXPECT_TRUE(test::wait_until(
      [&] { return read_bytes(dir_->path() / "serve.log").find("left mid-reply") != std::string::npos; }, 10))
      << read_bytes(dir_->path() / "serve.log");
  // The sessions end and their places free up.
  EXPECT_TRUE(test::wait_until(
      [] { return parse(get("/api/metrics").body)["server"]["live_sessions"].get<int>() == 0; }, 10))
      << get("/api/metrics").body;
  WebSocketClient again;
  EXPECT_EQ(open_live(again), 101);
  again.close();
}

TEST_F(ServerTest, SayRendersAnMp4ToDownload) {
  // The text's limit is documented (docs/API.md) and counted in characters.
  HttpResponse long_text = post_json("/api/say", {{"text", std::string(4001, 'a')}});
  EXPECT_EQ(long_text.status, 400) << long_text.body;
  EXPECT_NE(error_of(long_text).find("4001 characters"), std::string::npos) << long_text.body;
  EXPECT_EQ(error_of(long_text).find("PersonaParams"), std::string::npos) << long_text.body;
  HttpResponse say = post_json("/api/say", {{"text", "Hello there."}});
  ASSERT_EQ(say.status, 200) << say.body;
  nlohmann::json answer = parse(say.body);
  std::string url = answer["video"];
  EXPECT_EQ(url.rfind("/api/renders/", 0), 0u);
  EXPECT_GT(answer["duration_s"].get<double>(), 0);
  HttpResponse video = get(url);
  ASSERT_EQ(video.status, 200);
  EXPECT_EQ(video.headers["content-type"], "video/mp4");
  EXPECT_EQ(video.body.substr(4, 4), "ftyp");
  EXPECT_EQ(post_json("/api/say", {{"text", "   "}}).status, 400);
  // Listed with its text, to play again after a reload.
  nlohmann::json renders = parse(get("/api/renders").body)["renders"];
  ASSERT_FALSE(renders.empty());
  EXPECT_EQ(renders[0]["video"], url);
  EXPECT_EQ(renders[0]["text"], "Hello there.");
  EXPECT_GT(renders[0]["duration_s"].get<double>(), 0);
}

// The fixture has too little speech to train the voice: a train job fails saying how much there
// is and how much is needed, and the request's options are checked.
TEST_F(ServerTest, TrainJobOnTooLittleSpeechSaysWhy) {
  wait_idle();
  EXPECT_EQ(post_json("/api/jobs", {{"kind", "train"}, {"model", "motion"}}).status, 400);
  EXPECT_EQ(post_json("/api/jobs", {{"kind", "train"}, {"steps", 0}}).status, 400);
  EXPECT_EQ(post_json("/api/jobs", {{"kind", "train"}, {"steps", "ten"}}).status, 400);
  EXPECT_EQ(post_json("/api/jobs", {{"kind", "train"}, {"time_budget_s", -1}}).status, 400);
  for (const char* model : {"voice", "all"}) {
    HttpResponse started = post_json("/api/jobs", {{"kind", "train"}, {"model", model}, {"steps", 5}});
    ASSERT_EQ(started.status, 202) << started.body;
    nlohmann::json job = parse(started.body)["job"];
    EXPECT_EQ(job["kind"], "train");
    EXPECT_EQ(job["train"]["model"], model);
    EXPECT_EQ(job["train"]["steps"], 5);
    job = wait_job(job["id"].get<int64_t>());
    EXPECT_EQ(job["state"], "failed") << job.dump();
    const std::string error = job["error"];
    EXPECT_NE(error.find("minutes of train-split speech"), std::string::npos) << model << ": " << error;
    EXPECT_NE(error.find("prepare"), std::string::npos) << model << ": " << error;
  }
  // Nothing was trained: no curve, no trained voice to listen to.
  HttpResponse curve = get("/api/models/voice/curve");
  EXPECT_EQ(curve.status, 404) << curve.body;
  EXPECT_NE(error_of(curve).find("not been trained"), std::string::npos) << curve.body;
  nlohmann::json samples = parse(get("/api/voice/samples").body);
  EXPECT_FALSE(samples["voice"]["trained"].get<bool>()) << samples.dump();
  EXPECT_EQ(samples["voice"]["state"], "none");
  EXPECT_FALSE(samples["speech"]["ready"].get<bool>());
  EXPECT_EQ(samples["speech"]["min_train_s"], 120);
  EXPECT_NE(samples["speech"]["waiting_for"].get<std::string>().find("needs 2 minutes of the person's speech; has 0."),
            std::string::npos)
      << samples.dump();
}

// Held-out utterances only, each with its real recording as a WAV; ids are checked. The fixture
// is too small to hold any utterance out, so this server's copy marks one clip of each source
// held out (as prepare does on a longer avatar).
TEST(ServerVoice, SamplesAreTheHeldOutUtterancesWithTheirRecordings) {
  TempDir dir;
  fs::path avatar = copy_warmed_avatar(dir.path());
  std::vector<std::tuple<std::string, std::string, std::string, fs::path>> held_out;  // source, id, text, wav
  std::vector<std::pair<std::string, std::string>> train;
  for (const auto& entry : fs::directory_iterator(avatar / "speech")) {
    const fs::path file = entry.path() / "utterances.json";
    if (!fs::is_regular_file(file)) continue;
    nlohmann::json dataset = parse(read_bytes(file));
    auto& utterances = dataset["utterances"];
    ASSERT_FALSE(utterances.empty()) << file;
    utterances.back()["split"] = "held_out";
    for (const auto& u : utterances) {
      if (u["split"] == "held_out") {
        held_out.emplace_back(entry.path().filename().string(), u["id"], u["text"], entry.path() / u["wav"].get<std::string>());
      } else {
        train.emplace_back(entry.path().filename().string(), u["id"]);
      }
    }
    std::ofstream(file) << dataset.dump();
  }
  ASSERT_FALSE(held_out.empty());
  ServeProcess server(DSELF_BINARY, avatar, {}, dir.path() / "serve.log");
  ASSERT_TRUE(server.ready) << read_bytes(dir.path() / "serve.log");
  auto get = [&](const std::string& target) { return client::http_request("127.0.0.1", server.port, "GET", target, {}, {}); };

  HttpResponse listed = get("/api/voice/samples");
  ASSERT_EQ(listed.status, 200) << listed.body;
  nlohmann::json samples = parse(listed.body)["samples"];
  ASSERT_EQ(samples.size(), held_out.size()) << listed.body;
  for (const auto& [source, id, text, wav] : held_out) {
    auto it = std::find_if(samples.begin(), samples.end(), [&](const nlohmann::json& s) { return s["source"] == source && s["id"] == id; });
    ASSERT_NE(it, samples.end()) << source << "/" << id << " missing from " << listed.body;
    EXPECT_EQ((*it)["text"], text);
    HttpResponse real = get((*it)["real_url"].get<std::string>());
    ASSERT_EQ(real.status, 200) << real.body;
    EXPECT_EQ(real.headers["content-type"], "audio/wav");
    EXPECT_EQ(real.body.substr(0, 4), "RIFF");
    EXPECT_EQ(real.body.substr(8, 4), "WAVE");
    EXPECT_EQ(real.body, read_bytes(wav)) << "the person's own recording, byte for byte";
    // No trained voice: 404 saying how to get one.
    HttpResponse trained = get((*it)["trained_url"].get<std::string>());
    EXPECT_EQ(trained.status, 404) << trained.body;
    EXPECT_NE(parse(trained.body)["error"].get<std::string>().find("no trained voice"), std::string::npos) << trained.body;
  }
  // A train-split clip is not served, nor anything that is not a listed held-out utterance.
  for (const auto& [source, id] : train) {
    EXPECT_EQ(get("/api/voice/samples/" + source + "/" + id + "/real.wav").status, 404) << source << "/" << id;
  }
  const std::string source = std::get<0>(held_out.front());
  EXPECT_EQ(get("/api/voice/samples/" + source + "/9999/real.wav").status, 404);
  EXPECT_EQ(get("/api/voice/samples/999/0000/real.wav").status, 404);
  EXPECT_EQ(get("/api/voice/samples/abc/0000/real.wav").status, 400);
  EXPECT_EQ(get("/api/voice/samples/" + source + "/..%2Futterances/real.wav").status, 400);
  EXPECT_EQ(get("/api/voice/samples/..%2F..%2Fdself.db/0000/real.wav").status, 400);
  EXPECT_EQ(get("/api/voice/samples/" + source + "/0000.wav/real.wav").status, 400);
  // A run that stopped (checkpointed) has its curve so far in checkpoint/state.json, in the shape
  // voice::train_voice writes it; the curve route serves it, marked partial.
  EXPECT_EQ(get("/api/models/voice/curve").status, 404);
  const nlohmann::json points = {{{"step", 25}, {"train_loss", 1.5}, {"held_out_loss", 1.75}, {"elapsed_s", 3.0}},
                                 {{"step", 50}, {"train_loss", 1.25}, {"held_out_loss", nullptr}, {"elapsed_s", 6.0}}};
  fs::create_directories(avatar / "models" / "voice" / "checkpoint");
  std::ofstream(avatar / "models" / "voice" / "checkpoint" / "state.json")
      << nlohmann::json{{"hash", "h"}, {"step", 50}, {"step_count", 400}, {"curve", points}}.dump();
  HttpResponse curve = get("/api/models/voice/curve");
  ASSERT_EQ(curve.status, 200) << curve.body;
  EXPECT_EQ(parse(curve.body)["points"], points);
  EXPECT_TRUE(parse(curve.body)["partial"].get<bool>());
  EXPECT_EQ(parse(curve.body)["step_count"], 400);
  HttpResponse other = get("/api/voice/samples/" + source + "/0000/fake.wav");
  EXPECT_EQ(other.status, 404) << other.body;
  EXPECT_FALSE(parse(other.body)["error"].get<std::string>().empty());
  EXPECT_EQ(get("/api/status").status, 200);
  EXPECT_EQ(server.stop(), 0);
}

// Jobs keep their ids after a restart (they are the catalog's), and the history shows them.
TEST(ServerJobs, HistorySurvivesARestartWithTheSameIds) {
  TempDir dir;
  fs::path avatar = copy_warmed_avatar(dir.path());
  int64_t id = 0;
  {
    ServeProcess server(DSELF_BINARY, avatar, {}, dir.path() / "serve.log");
    ASSERT_TRUE(server.ready) << read_bytes(dir.path() / "serve.log");
    HttpResponse started = client::http_request("127.0.0.1", server.port, "POST", "/api/jobs", R"({"kind":"report"})",
                                                {{"Content-Type", "application/json"}});
    ASSERT_EQ(started.status, 202) << started.body;
    id = parse(started.body)["job"]["id"];
    ASSERT_TRUE(wait_until([&] {
      nlohmann::json job =
          parse(client::http_request("127.0.0.1", server.port, "GET", "/api/jobs/" + std::to_string(id)).body);
      return job.is_object() && job["job"]["state"] == "done";
    }));
    EXPECT_EQ(server.stop(), 0);
  }
  ServeProcess again(DSELF_BINARY, avatar, {}, dir.path() / "serve2.log");
  ASSERT_TRUE(again.ready) << read_bytes(dir.path() / "serve2.log");
  nlohmann::json jobs = parse(client::http_request("127.0.0.1", again.port, "GET", "/api/jobs").body)["jobs"];
  ASSERT_FALSE(jobs.empty());
  EXPECT_EQ(jobs[0]["id"], id) << jobs.dump();
  EXPECT_EQ(jobs[0]["kind"], "report");
  EXPECT_EQ(jobs[0]["state"], "done");
  HttpResponse one = client::http_request("127.0.0.1", again.port, "GET", "/api/jobs/" + std::to_string(id));
  EXPECT_EQ(one.status, 200) << one.body;
  HttpResponse stop =
      client::http_request("127.0.0.1", again.port, "POST", "/api/jobs/" + std::to_string(id) + "/stop");
  EXPECT_EQ(stop.status, 409) << stop.body;
  // A new job gets a new id, never one of the earlier ones.
  HttpResponse next = client::http_request("127.0.0.1", again.port, "POST", "/api/jobs", R"({"kind":"report"})",
                                           {{"Content-Type", "application/json"}});
  ASSERT_EQ(next.status, 202) << next.body;
  EXPECT_GT(parse(next.body)["job"]["id"].get<int64_t>(), id);
  EXPECT_EQ(again.stop(), 0);
}

// A server with a token: every API and WebSocket call carries it, or gets 401.
TEST(ServerAccess, TokenIsRequiredWhenGiven) {
  TempDir dir;
  fs::path avatar = copy_warmed_avatar(dir.path());
  fs::create_directories(dir.path() / "no-ui");  // a web root without a built UI in it
  ServeProcess server(DSELF_BINARY, avatar, {"--token", "s3cret", "--web-root", (dir.path() / "no-ui").string()}, dir.path() / "serve.log");
  ASSERT_TRUE(server.ready) << read_bytes(dir.path() / "serve.log");
  auto get = [&](const std::string& target, const client::HeaderList& headers = {}) {
    return client::http_request("127.0.0.1", server.port, "GET", target, {}, headers);
  };
  EXPECT_EQ(get("/api/status").status, 401);
  EXPECT_EQ(get("/api/status", {{"Authorization", "Bearer wrong"}}).status, 401);
  EXPECT_EQ(get("/api/status?token=s3cre").status, 401);
  EXPECT_EQ(get("/api/status", {{"Authorization", "Bearer s3cret"}}).status, 200);
  EXPECT_EQ(get("/api/status?token=s3cret").status, 200);
  EXPECT_EQ(get("/api/nothing").status, 401);
  WebSocketClient without;
  EXPECT_EQ(without.open("127.0.0.1", server.port, "/api/live"), 401);
  WebSocketClient with;
  EXPECT_EQ(with.open("127.0.0.1", server.port, "/api/live?token=s3cret"), 101);
  with.close();
  // Pages the browser opens itself carry the token in their links: the report's pictures and
  // its way back, the source videos.
  HttpResponse started =
      client::http_request("127.0.0.1", server.port, "POST", "/api/jobs", R"({"kind":"report"})",
                           {{"Content-Type", "application/json"}, {"Authorization", "Bearer s3cret"}});
  ASSERT_EQ(started.status, 202) << started.body;
  ASSERT_TRUE(wait_until([&] { return get("/api/report?token=s3cret").status == 200; }));
  HttpResponse report = get("/api/report?token=s3cret");
  size_t at = report.body.find("src='/api/report/faces/");
  ASSERT_NE(at, std::string::npos);
  std::string picture = report.body.substr(at + 5, report.body.find('\'', at + 5) - at - 5);
  EXPECT_NE(picture.find("?token=s3cret"), std::string::npos) << picture;
  EXPECT_EQ(get(picture).status, 200) << picture;
  EXPECT_EQ(get(picture.substr(0, picture.find('?'))).status, 401);
  EXPECT_NE(report.body.find("href='/?token=s3cret#/studio'"), std::string::npos);
  EXPECT_EQ(get("/api/sources/1/video").status, 401);
  EXPECT_EQ(get("/api/sources/1/video?token=s3cret").status, 200);
  // Without a built web UI, / says how to build it.
  HttpResponse page = get("/");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("make web"), std::string::npos);
  EXPECT_EQ(server.stop(), 0);
}

TEST(ServerAccess, OtherAddressesNeedAToken) {
  TempDir dir;
  CommandResult result = run_dself({"--avatar", (dir.path() / "avatar").string(), "serve", "--host", "0.0.0.0"});
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("--token"), std::string::npos) << result.output;
}

size_t count_of(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size())) ++n;
  return n;
}

// POST /api/say draws on the models the server keeps (loaded once, shared with live sessions),
// not on models loaded again for every call (seconds each).
TEST(ServerSay, SaysFromTheSharedModels) {
  TempDir dir;
  fs::path avatar = copy_warmed_avatar(dir.path());
  ServeProcess server(DSELF_BINARY, avatar, {}, dir.path() / "serve.log");
  ASSERT_TRUE(server.ready) << read_bytes(dir.path() / "serve.log");
  const std::string loading = "loading the avatar's voice, motion and face models";
  for (const char* text : {"Hello there.", "Good morning to you."}) {
    HttpResponse say = client::http_request("127.0.0.1", server.port, "POST", "/api/say",
                                            nlohmann::json{{"text", text}}.dump(), {{"Content-Type", "application/json"}}, 120);
    ASSERT_EQ(say.status, 200) << say.body;
  }
  EXPECT_EQ(count_of(read_bytes(dir.path() / "serve.log"), loading), 1u) << read_bytes(dir.path() / "serve.log");
  // A live session uses the same models.
  WebSocketClient live;
  ASSERT_EQ(live.open("127.0.0.1", server.port, "/api/live"), 101);
  bool hello = false;
  for (int i = 0; i < 60 && !hello && !live.closed(); ++i) {
    auto message = live.receive(1);
    hello = message && !message->binary && parse(message->data).value("type", "") == "hello";
  }
  EXPECT_TRUE(hello);
  live.close();
  EXPECT_EQ(count_of(read_bytes(dir.path() / "serve.log"), loading), 1u) << read_bytes(dir.path() / "serve.log");
  EXPECT_EQ(server.stop(), 0);
}

// The openai engine streams through libcurl: a client leaving mid-reply stops the request from
// inside curl's write callback (by saying "stop", not by throwing through C code), so curl closes
// the connection to the LLM server at once, and the session ends cleanly.
TEST(ServerOpenAi, AClientLeavingMidReplyStopsTheLlmRequest) {
  TempDir dir;
  fs::path avatar = copy_warmed_avatar(dir.path());
  fs::create_directories(dir.path() / "record");
  OpenAiStub stub(dir.path() / "record");
  ServeProcess server(DSELF_BINARY, avatar,
                      {"--engine", "openai", "--llm-url", stub.url(), "--llm-model", "endless"},
                      dir.path() / "serve.log");
  ASSERT_TRUE(server.ready) << read_bytes(dir.path() / "serve.log");
  WebSocketClient client;
  ASSERT_EQ(client.open("127.0.0.1", server.port, "/api/live"), 101);
  client.send_text(R"({"type": "message", "text": "Tell me about your work."})");
  // Read until the LLM's text is arriving (the stub streams for a minute), then leave.
  bool streaming = false;
  auto deadline = Clock::now() + std::chrono::seconds(60);
  while (!streaming && Clock::now() < deadline && !client.closed()) {
    auto message = client.receive(1);
    if (message && !message->binary) streaming = parse(message->data).value("type", "") == "reply_delta";
  }
  ASSERT_TRUE(streaming) << read_bytes(dir.path() / "serve.log");
  client.close();
  // The stub sees its client (dself's curl) go away long before its minute is up.
  EXPECT_TRUE(wait_until([&] { return fs::exists(dir.path() / "record" / "disconnected"); }, 20))
      << read_bytes(dir.path() / "serve.log");
  EXPECT_FALSE(fs::exists(dir.path() / "record" / "finished"));
  EXPECT_TRUE(wait_until(
      [&] { return read_bytes(dir.path() / "serve.log").find("left mid-reply") != std::string::npos; }, 10))
      << read_bytes(dir.path() / "serve.log");
  EXPECT_TRUE(wait_until(
      [&] {
        auto metrics = parse(client::http_request("127.0.0.1", server.port, "GET", "/api/metrics").body);
        return metrics.is_object() && metrics["server"]["live_sessions"] == 0;
      },
      10));
  // Its place frees up for a new session.
  WebSocketClient again;
  ASSERT_EQ(again.open("127.0.0.1", server.port, "/api/live"), 101);
  again.close();
  EXPECT_TRUE(server.alive());
  EXPECT_EQ(server.stop(), 0) << read_bytes(dir.path() / "serve.log");
}

}  // namespace
}  // namespace dself::test
