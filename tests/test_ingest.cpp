// Ingest, end to end through the real binary: the sample person's playlist page downloaded by the
// real yt-dlp from a loopback HTTP server (also interrupted, killed and crashed halfway), files
// and directories imported, and every kind of bad input refused without harm to the catalog.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <thread>

#include "core/catalog.h"
#include "core/hash.h"
#include "ingest/ingest.h"
#include "support.h"

namespace dself {
namespace {

namespace fs = std::filesystem;

const fs::path tests_dir = DSELF_TESTS_DIR;  // not __FILE__: ccache's base_dir makes it relative
constexpr const char* python = "/usr/bin/python3";

// tests/ingest_http_server.py serving a directory on 127.0.0.1, as a child process.
class HttpServer {
 public:
  explicit HttpServer(fs::path dir) : dir_(std::move(dir)) {
    int out[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe");
    std::string script = (tests_dir / "ingest_http_server.py").string();
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      execl(python, python, script.c_str(), dir_.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    // Its first line, "port N", comes once it is listening.
    FILE* from_server = fdopen(out[0], "r");
    char line[64] = {};
    if (!std::fgets(line, sizeof line, from_server) || std::sscanf(line, "port %d", &port_) != 1) port_ = 0;
    std::fclose(from_server);
    if (port_ == 0) throw std::runtime_error("the test HTTP server did not start");
  }
  ~HttpServer() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  std::string url(const std::string& name) const { return "http://127.0.0.1:" + std::to_string(port_) + "/" + name; }
  // "ok", "truncate" or "slow" for the .mp4 files it serves (see the script).
  void set_mode(const std::string& mode) const { std::ofstream(dir_ / ".server-mode") << mode; }

 private:
  fs::path dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// A loopback port that nothing listens on.
int closed_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Video files in the workspace's sources/ outside the staging area.
std::vector<fs::path> placed_videos(const fs::path& avatar) {
  std::vector<fs::path> videos;
  if (!fs::exists(avatar / "sources")) return videos;
  for (const auto& entry : fs::recursive_directory_iterator(avatar / "sources")) {
    std::string path = entry.path().string();
    if (contains(path, "/.downloading/") || contains(path, "/.importing/")) continue;
    if (entry.path().extension() == ".mp4") videos.push_back(entry.path());
  }
  return videos;
}

int64_t file_size_or_zero(const fs::path& path) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  return ec ? 0 : static_cast<int64_t>(size);
}

// Every source has a video, an info JSON (downloads) and captions, on disk as the catalog says.
void expect_catalog_matches_disk(const fs::path& avatar, size_t source_count, bool downloaded) {
  Catalog catalog(avatar);
  auto sources = catalog.sources();
  ASSERT_EQ(sources.size(), source_count);
  for (const Source& source : sources) {
    SCOPED_TRACE(source.key);
    EXPECT_EQ(source.kind, downloaded ? "url" : "file");
    EXPECT_TRUE(source.key.starts_with(downloaded ? "url:" : "file:")) << source.key;
    std::map<std::string, int> roles;
    for (const MediaFile& file : catalog.media(source.id)) {
      ++roles[file.role];
      fs::path path = avatar / file.path;
      ASSERT_TRUE(fs::exists(path)) << path;
      EXPECT_FALSE(contains(file.path, ".downloading")) << file.path;
      EXPECT_EQ(static_cast<int64_t>(fs::file_size(path)), file.size_bytes) << path;
      EXPECT_EQ(hash_file(path), file.content_hash) << path;
      if (file.role == "video") {
        EXPECT_GT(file.duration_s, 0);
        EXPECT_GT(file.width, 0);
        EXPECT_GT(file.fps, 0);
        EXPECT_TRUE(file.has_video);
        EXPECT_TRUE(file.has_audio);
      }
    }
    EXPECT_EQ(roles["video"], 1);
    EXPECT_EQ(roles["captions"], 1);
    EXPECT_EQ(roles["info"], downloaded ? 1 : 0);
  }
}

class IngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(test::sample_dir() / "playlist.html")) << "no sample person at " << test::sample_dir();
    // A copy: the server's mode file is written into the directory it serves.
    fs::copy(test::sample_dir(), site_.path(), fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  }

  test::CommandResult ingest(const std::vector<std::string>& sources, const std::vector<std::string>& flags = {}) {
    std::vector<std::string> args = {"--avatar", avatar().string(), "ingest"};
    args.insert(args.end(), flags.begin(), flags.end());
    args.insert(args.end(), sources.begin(), sources.end());
    return test::run_dself(args);
  }

  fs::path avatar() const { return work_ / "avatar"; }
  fs::path site() const { return site_.path(); }

  test::TempDir site_;
  test::TempDir work_;
};

TEST_F(IngestTest, DownloadsPlaylistWithInfoAndCaptionsAndRerunFetchesNothing) {
  HttpServer server(site());
  std::string playlist = server.url("playlist.html");
  auto first = ingest({playlist});
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_TRUE(contains(first.output, "2 new, 0 already present, 0 failed")) << first.output;
  expect_catalog_matches_disk(avatar(), 2, true);
  auto videos = placed_videos(avatar());
  ASSERT_EQ(videos.size(), 2u);
  auto mtime = fs::last_write_time(videos[0]);

  auto second = ingest({playlist});
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_TRUE(contains(second.output, "0 new, 2 already present, 0 failed")) << second.output;
  EXPECT_FALSE(contains(second.output, "ingest: download")) << "downloaded again:\n" << second.output;
  expect_catalog_matches_disk(avatar(), 2, true);
  EXPECT_EQ(fs::last_write_time(videos[0]), mtime);

  Catalog catalog(avatar());
  auto jobs = catalog.jobs();
  ASSERT_EQ(jobs.size(), 2u);
  for (const Job& job : jobs) {
    EXPECT_EQ(job.command, "ingest");
    EXPECT_EQ(job.state, "done");
    EXPECT_EQ(job.arguments, playlist);
  }
}

TEST_F(IngestTest, InterruptedDownloadIsNotRegisteredAndTheNextRunGetsIt) {
  HttpServer server(site());
  std::string playlist = server.url("playlist.html");
  server.set_mode("truncate");
  auto broken = ingest({playlist});
  EXPECT_EQ(broken.exit_code, 1) << broken.output;
  EXPECT_TRUE(contains(broken.output, playlist + ": yt-dlp failed")) << broken.output;
  EXPECT_TRUE(contains(broken.output, "0 new, 0 already present, 2 failed")) << broken.output;
  EXPECT_TRUE(Catalog(avatar()).sources().empty());
  EXPECT_TRUE(placed_videos(avatar()).empty());
  {
    Catalog catalog(avatar());
    ASSERT_FALSE(catalog.jobs().empty());
    EXPECT_EQ(catalog.jobs()[0].state, "failed");
    EXPECT_TRUE(contains(catalog.jobs()[0].message, playlist)) << catalog.jobs()[0].message;
  }

  server.set_mode("ok");
  auto fixed = ingest({playlist});
  ASSERT_EQ(fixed.exit_code, 0) << fixed.output;
  EXPECT_TRUE(contains(fixed.output, "2 new, 0 already present, 0 failed")) << fixed.output;
  expect_catalog_matches_disk(avatar(), 2, true);
}

// Whether any process has `file` open (a link to it under /proc/PID/fd/).
bool open_by_any_process(const fs::path& file) {
  std::error_code ec;
  const fs::path target = fs::canonical(file, ec);
  if (ec) return false;
  for (auto process = fs::directory_iterator("/proc", ec); !ec && process != fs::directory_iterator();
       process.increment(ec)) {
    std::error_code fd_ec;
    for (auto fd = fs::directory_iterator(process->path() / "fd", fd_ec); !fd_ec && fd != fs::directory_iterator();
         fd.increment(fd_ec)) {
      std::error_code link_ec;
      if (fs::read_symlink(fd->path(), link_ec) == target) return true;
    }
  }
  return false;
}

TEST_F(IngestTest, KilledDuringDownloadRegistersNothingAndTheNextRunGetsIt) {
  HttpServer server(site());
  std::string playlist = server.url("playlist.html");
  server.set_mode("slow");
  fs::path log = work_ / "killed.log";
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    std::string avatar_text = avatar().string();
    execl(DSELF_BINARY, DSELF_BINARY, "--avatar", avatar_text.c_str(), "ingest", playlist.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait until the first video is partly downloaded, then kill dself as hard as can be.
  fs::path part;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (part.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(avatar() / "sources", ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->path().extension() == ".part" && file_size_or_zero(it->path()) > 0) part = it->path();
    }
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  ASSERT_FALSE(part.empty()) << "no partial download appeared";

  // yt-dlp died with dself: soon no process has the partial file open (so it stops growing).
  EXPECT_TRUE(test::wait_until([&] { return !open_by_any_process(part); }, 10))
      << "yt-dlp goes on downloading after dself was killed";
  EXPECT_TRUE(Catalog(avatar()).sources().empty());
  EXPECT_TRUE(placed_videos(avatar()).empty());

  server.set_mode("ok");
  auto resumed = ingest({playlist});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_TRUE(contains(resumed.output, "2 new, 0 already present, 0 failed")) << resumed.output;
  expect_catalog_matches_disk(avatar(), 2, true);
  // The killed run's job is marked as such, not left "running".
  auto jobs = Catalog(avatar()).jobs();
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0].state, "done");
  EXPECT_EQ(jobs[1].state, "interrupted");
  EXPECT_TRUE(contains(jobs[1].message, "interrupted")) << jobs[1].message;
}

TEST_F(IngestTest, DownloadFinishedButNeverRegisteredIsRegisteredByTheNextRun) {
  HttpServer server(site());
  std::string playlist = server.url("playlist.html");
  // A yt-dlp that finishes the first video, records it in the archive, and kills dself.
  fs::path crashing = work_ / "crashing-yt-dlp.py";
  fs::copy_file(tests_dir / "ingest_crashing_yt_dlp.py", crashing);
  fs::permissions(crashing, fs::perms::owner_all);
  auto crashed = ingest({playlist}, {"--yt-dlp", crashing.string()});
  EXPECT_EQ(crashed.exit_code, 128 + SIGKILL) << crashed.output;
  EXPECT_TRUE(Catalog(avatar()).sources().empty());

  auto next = ingest({playlist});
  ASSERT_EQ(next.exit_code, 0) << next.output;
  EXPECT_TRUE(contains(next.output, "recovered from an interrupted run")) << next.output;
  // The recovered video is not downloaded a second time (it is in the archive rebuilt from the
  // catalog), and the other one is.
  EXPECT_TRUE(contains(next.output, "2 new, 1 already present, 0 failed")) << next.output;
  expect_catalog_matches_disk(avatar(), 2, true);
}

TEST_F(IngestTest, ImportsFilesWithTheirCaptionsAndDirectoriesOnce) {
  auto file = ingest({(site() / "video_000.mp4").string()});
  ASSERT_EQ(file.exit_code, 0) << file.output;
  EXPECT_TRUE(contains(file.output, "1 new, 0 already present, 0 failed")) << file.output;
  expect_catalog_matches_disk(avatar(), 1, false);
  Source source = Catalog(avatar()).sources().at(0);
  EXPECT_EQ(source.origin, (site() / "video_000.mp4").string());
  EXPECT_EQ(source.key, "file:" + hash_file(site() / "video_000.mp4"));

  auto again = ingest({(site() / "video_000.mp4").string()});
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_TRUE(contains(again.output, "0 new, 1 already present, 0 failed")) << again.output;

  // The directory holds both videos and files that are not videos (ignored, not failures).
  auto directory = ingest({site().string()});
  ASSERT_EQ(directory.exit_code, 0) << directory.output;
  EXPECT_TRUE(contains(directory.output, "1 new, 1 already present, 0 failed")) << directory.output;
  expect_catalog_matches_disk(avatar(), 2, false);
  // A copy: removing the original leaves the workspace whole.
  fs::remove(site() / "video_000.mp4");
  expect_catalog_matches_disk(avatar(), 2, false);
}

TEST_F(IngestTest, LinkImportsWithoutCopying) {
  auto linked = ingest({site().string()}, {"--link"});
  ASSERT_EQ(linked.exit_code, 0) << linked.output;
  expect_catalog_matches_disk(avatar(), 2, false);
  struct stat original {};
  ASSERT_EQ(stat((site() / "video_000.mp4").c_str(), &original), 0);
  bool found = false;
  for (const fs::path& video : placed_videos(avatar())) {
    struct stat placed {};
    ASSERT_EQ(stat(video.c_str(), &placed), 0);  // follows a symbolic link
    found = found || (placed.st_ino == original.st_ino && placed.st_dev == original.st_dev);
  }
  EXPECT_TRUE(found) << "no workspace video is a link to the original";
}

TEST_F(IngestTest, BadInputsAreRefusedClearlyAndHarmNothing) {
  ASSERT_EQ(ingest({(site() / "video_000.mp4").string()}).exit_code, 0);
  auto count_rows = [&] {
    Catalog catalog(avatar());
    return std::make_pair(catalog.sources().size(), catalog.media().size());
  };
  const auto rows = count_rows();
  const fs::path registered_video = placed_videos(avatar()).at(0);
  const std::string registered_hash = hash_file(registered_video);

  fs::path bad = work_ / "bad";
  fs::create_directories(bad);
  std::ofstream(bad / "notes.mp4") << "these are my notes, not a video\n";
  {
    std::ifstream in(site() / "video_001.mp4", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(bad / "truncated.mp4", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  auto silent =
      test::run_program({"ffmpeg", "-nostdin", "-loglevel", "error", "-i", (site() / "video_001.mp4").string(), "-an",
                         "-c", "copy", (bad / "silent.mp4").string()});
  ASSERT_EQ(silent.exit_code, 0) << silent.output;
  std::string unreachable = "http://127.0.0.1:" + std::to_string(closed_port()) + "/x.mp4";

  struct Case {
    std::string input;
    std::vector<std::string> flags;
    int exit_code;
    std::vector<std::string> says;
  };
  const std::vector<Case> cases = {
      {(bad / "missing.mp4").string(), {}, 1, {"no such file"}},
      {(bad / "notes.mp4").string(), {}, 1, {"not a usable video"}},
      {(bad / "truncated.mp4").string(), {}, 1, {"truncated"}},
      {(bad / "silent.mp4").string(), {}, 1, {"no audio", "voice"}},
      {unreachable, {}, 1, {"yt-dlp failed", "Unable to download"}},
      {unreachable, {"--yt-dlp", "/nonexistent/yt-dlp"}, 2, {"cannot find yt-dlp", "--yt-dlp", "apt install yt-dlp"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.input);
    auto result = ingest({c.input}, c.flags);
    EXPECT_EQ(result.exit_code, c.exit_code) << result.output;
    if (c.exit_code == 1) {
      EXPECT_TRUE(contains(result.output, c.input + ": ")) << result.output;
    }
    for (const std::string& words : c.says) EXPECT_TRUE(contains(result.output, words)) << result.output;
    EXPECT_EQ(count_rows(), rows);
    EXPECT_EQ(hash_file(registered_video), registered_hash);
  }

  // Good and bad together: the good one goes in, and the summary lists the bad one.
  auto mixed = ingest({(bad / "silent.mp4").string(), (site() / "video_001.mp4").string()});
  EXPECT_EQ(mixed.exit_code, 1) << mixed.output;
  EXPECT_TRUE(contains(mixed.output, "1 new, 0 already present, 1 failed")) << mixed.output;
  EXPECT_TRUE(contains(mixed.output, "could not be ingested:\n  " + (bad / "silent.mp4").string())) << mixed.output;
  expect_catalog_matches_disk(avatar(), 2, false);
  Catalog catalog(avatar());
  EXPECT_EQ(catalog.jobs()[0].state, "failed");
  EXPECT_TRUE(contains(catalog.jobs()[0].message, "silent.mp4")) << catalog.jobs()[0].message;
}

TEST(Ingest, TellsUrlsFromPaths) {
  EXPECT_TRUE(ingest::is_url("https://www.youtube.com/playlist?list=PL123"));
  EXPECT_TRUE(ingest::is_url("http://127.0.0.1:8000/playlist.html"));
  EXPECT_FALSE(ingest::is_url("videos/talk.mp4"));
  EXPECT_FALSE(ingest::is_url("/tmp/http:/x.mp4"));
}

}  // namespace
}  // namespace dself
