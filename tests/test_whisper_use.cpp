// Whisper used by the avatar: `dself config` (stt, whisper_model), the one rule that picks the
// checkpoint (flag > the person's fine-tuned model > the setting), `prepare --stt whisper`, the
// server's voice messages, `status`, and captions checked against the audio. The checkpoints are
// small and random: their text is garbage, so these tests check wiring and determinism, never
// the quality of what is heard.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/error.h"
#include "core/fs.h"
#include "media/media.h"
#include "speech/speech.h"
#include "support.h"
#include "support/client.h"
#include "transcript/transcript.h"
#include "whisper/whisper.h"
#include "whisper_checkpoint.h"

namespace fs = std::filesystem;
using dself::test::run_dself;
using dself::test::TempDir;
using dself::test::write_random_whisper;

namespace {

nlohmann::json read_json(const fs::path& path) { return nlohmann::json::parse(dself::read_file(path)); }

// The JSON document at the end of a command's output (notes on stderr may come first).
nlohmann::json json_output(const std::string& output) { return nlohmann::json::parse(output.substr(output.find('{'))); }

// RFC 4648 base64, with padding.
std::string base64(const std::string& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    uint32_t v = 0;
    for (size_t k = 0; k < 3; ++k) v = (v << 8) | (k < n ? uint8_t(bytes[i + k]) : 0);
    for (size_t k = 0; k < 4; ++k) out += k <= n ? table[(v >> (18 - 6 * k)) & 63] : '=';
  }
  return out;
}

std::string absolute_path(const fs::path& path) { return fs::absolute(path).lexically_normal().string(); }

// Every source's transcript file and its modification time.
std::map<fs::path, fs::file_time_type> transcript_times(const fs::path& avatar) {
  std::map<fs::path, fs::file_time_type> times;
  for (const auto& entry : fs::directory_iterator(avatar / "transcripts"))
    times[entry.path()] = fs::last_write_time(entry);
  return times;
}

}  // namespace

TEST(AvatarConfig, GetSetUnsetAndValidation) {
  TempDir dir;
  const std::string avatar = (dir / "avatar").string();
  const fs::path model = write_random_whisper(dir / "model", false, 1);

  auto r = run_dself({"--avatar", avatar, "config"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("stt = (unset)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("whisper_model = (unset)"), std::string::npos) << r.output;

  r = run_dself({"--avatar", avatar, "config", "stt", "whisper"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_json(dir / "avatar/config.json")["stt"], "whisper");

  // Bad keys and values: exit 1, saying what would do.
  r = run_dself({"--avatar", avatar, "config", "colour", "red"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("unknown setting \"colour\": the settings are stt, whisper_model"), std::string::npos)
      << r.output;
  r = run_dself({"--avatar", avatar, "config", "stt", "vosk"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("auto, captions, pocketsphinx, whisper"), std::string::npos) << r.output;
  r = run_dself({"--avatar", avatar, "config", "whisper_model", (dir / "absent").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("absent: not a directory"), std::string::npos) << r.output;
  // The checks `config whisper_model` makes (in process: each run of the binary costs a second).
  auto check_message = [](const fs::path& dir) {
    try {
      dself::whisper::check_checkpoint(dir);
    } catch (const dself::InputError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  fs::copy(model, dir / "no-merges", fs::copy_options::recursive);
  fs::remove(dir / "no-merges/merges.txt");
  EXPECT_NE(check_message(dir / "no-merges").find("merges.txt"), std::string::npos) << check_message(dir / "no-merges");
  fs::copy(model, dir / "no-weights", fs::copy_options::recursive);
  fs::remove(dir / "no-weights/model.safetensors");
  EXPECT_NE(check_message(dir / "no-weights").find("no-weights/model.safetensors: missing"), std::string::npos)
      << check_message(dir / "no-weights");
  fs::copy(model, dir / "not-whisper", fs::copy_options::recursive);
  auto config = read_json(dir / "not-whisper/config.json");
  config["model_type"] = "llama";
  dself::write_file_atomic(dir / "not-whisper/config.json", config.dump());
  EXPECT_NE(check_message(dir / "not-whisper").find("model_type \"llama\" is not \"whisper\""), std::string::npos);
  EXPECT_EQ(check_message(model), "accepted");
  EXPECT_FALSE(read_json(dir / "avatar/config.json").contains("whisper_model"));  // nothing bad was stored

  // A good one is stored as an absolute path.
  r = run_dself({"--avatar", avatar, "config", "whisper_model", model.string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(run_dself({"--avatar", avatar, "config", "whisper_model"}).output, absolute_path(model) + "\n");
  r = run_dself({"--avatar", avatar, "config", "--unset", "stt"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(run_dself({"--avatar", avatar, "config", "stt"}).output,
            "");  // an empty line (empty lines are not captured)
  EXPECT_EQ(run_dself({"--avatar", avatar, "config", "whisper_model"}).output, absolute_path(model) + "\n");

  // A hand-edited file that is not a config: named, exit 1.
  dself::write_file_atomic(dir / "avatar/config.json", R"({"format": "dself-config", "stt": 3})");
  r = run_dself({"--avatar", avatar, "config"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("config.json: \"stt\" is 3"), std::string::npos) << r.output;
}

// The one rule: --model > the person's fine-tuned models/whisper > the setting; none: how to set one.
TEST(AvatarConfig, TheWhisperModelIsChosenByOneRule) {
  TempDir dir;
  const fs::path avatar = dir / "avatar";
  fs::create_directories(avatar);
  const fs::path set = write_random_whisper(dir / "set", false, 1);
  const fs::path flag = write_random_whisper(dir / "flag", false, 2);
  EXPECT_FALSE(dself::whisper::find_model(avatar).has_value());
  try {
    dself::whisper::resolve_model(avatar, {}, "--model");
    ADD_FAILURE() << "no model, yet one was chosen";
  } catch (const dself::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("config whisper_model DIR"), std::string::npos) << e.what();
  }
  ASSERT_EQ(run_dself({"--avatar", avatar.string(), "config", "whisper_model", set.string()}).exit_code, 0);
  auto choice = dself::whisper::find_model(avatar);
  ASSERT_TRUE(choice.has_value());
  EXPECT_EQ(choice->dir.string(), absolute_path(set));
  EXPECT_EQ(choice->source, dself::whisper::ModelSource::config);
  write_random_whisper(avatar / "models/whisper", false, 3);
  choice = dself::whisper::find_model(avatar);
  EXPECT_EQ(choice->dir, avatar / "models/whisper");
  EXPECT_EQ(choice->source, dself::whisper::ModelSource::trained);
  choice = dself::whisper::find_model(avatar, flag);
  EXPECT_EQ(choice->dir, flag);
  EXPECT_EQ(choice->source, dself::whisper::ModelSource::flag);

  // transcribe follows it too.
  dself::media::write_wav(dir / "a.wav", std::vector<float>(16000, 0.01f), 16000);
  auto r = run_dself(
      {"--quiet", "--avatar", avatar.string(), "transcribe", "--stt", "whisper", (dir / "a.wav").string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(json_output(r.output)["model"], (avatar / "models/whisper").string());
  r = run_dself({"--quiet", "--avatar", (dir / "elsewhere").string(), "transcribe", "--stt", "whisper",
                 (dir / "a.wav").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("no Whisper model: give --model DIR"), std::string::npos) << r.output;

  // The identity prepare hashes changes with the weights, not only with config.json.
  const std::string before = dself::whisper::model_identity(set);
  EXPECT_EQ(before, dself::whisper::model_identity(set));
  fs::copy_file(flag / "model.safetensors", set / "model.safetensors", fs::copy_options::overwrite_existing);
  fs::last_write_time(set / "model.safetensors",
                      fs::last_write_time(set / "model.safetensors") + std::chrono::seconds(5));
  EXPECT_NE(before, dself::whisper::model_identity(set));
}

// prepare --stt whisper: transcripts by the checkpoint (engine, model), up to date on a second
// run, made again by another checkpoint; the same checkpoint makes the same transcript.
TEST(WhisperPrepare, TranscriptsFollowTheModel) {
  TempDir dir;
  const fs::path avatar = dself::test::copy_avatar(dir.path());
  const fs::path one = write_random_whisper(dir / "one", false, 11);
  const fs::path two = write_random_whisper(dir / "two", false, 12);
  const auto before = transcript_times(avatar);
  // Random weights hear garbage, which the aligner may reject: the speech step's outcome is not
  // this test's business, the transcripts are.
  auto r = run_dself({"--quiet", "--avatar", avatar.string(), "prepare", "--stt", "whisper", "--model", one.string()});
  ASSERT_TRUE(r.exit_code == 0 || r.exit_code == 1) << r.output;
  const auto first = transcript_times(avatar);
  ASSERT_EQ(first.size(), before.size());
  std::map<fs::path, nlohmann::json> made;
  for (const auto& [path, time] : first) {
    EXPECT_NE(time, before.at(path)) << path;
    made[path] = read_json(path);
    EXPECT_EQ(made[path]["engine"], "whisper") << path;
    EXPECT_EQ(made[path]["model"], one.string()) << path;
  }
  r = run_dself({"--quiet", "--avatar", avatar.string(), "prepare", "--stt", "whisper", "--model", one.string()});
  EXPECT_EQ(transcript_times(avatar), first) << "a second run with the same model made the transcripts again";
  r = run_dself({"--quiet", "--avatar", avatar.string(), "prepare", "--stt", "whisper", "--model", two.string()});
  for (const auto& [path, time] : transcript_times(avatar)) {
    EXPECT_NE(time, first.at(path)) << path;
    EXPECT_EQ(read_json(path)["model"], two.string()) << path;
  }
  // What prepare wrote is what the library makes of the same audio with the same model.
  const auto model = dself::whisper::Model::load(one);
  const auto audio = dself::media::decode_audio(avatar / "audio/1.wav", 16000);
  const auto expected = dself::whisper::to_transcript(model, dself::whisper::transcribe_samples(model, audio));
  EXPECT_EQ(made.at(avatar / "transcripts/1.json"), dself::transcript::to_json(expected));

  // The setting makes whisper prepare's default; no model at all is an error before any work.
  ASSERT_EQ(run_dself({"--avatar", avatar.string(), "config", "stt", "whisper"}).exit_code, 0);
  r = run_dself({"--quiet", "--avatar", avatar.string(), "prepare"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("no Whisper model: give --model DIR"), std::string::npos) << r.output;
}

// serve --stt whisper: a checkpoint that does not load stops serve before it listens; a good one
// transcribes voice messages (the same text as the library on the same audio), and /api/status
// and `status` say which model.
TEST(WhisperServe, VoiceMessagesAndStatusUseTheModel) {
  TempDir dir;
  const fs::path avatar = dself::test::copy_avatar(dir.path());
  auto r = run_dself({"--avatar", avatar.string(), "serve", "--port", "0", "--stt", "whisper", "--whisper-model",
                      (dir / "absent").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("absent: not a directory"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("listening"), std::string::npos) << r.output;

  const fs::path model = write_random_whisper(dir / "model", false, 21);
  ASSERT_EQ(run_dself({"--avatar", avatar.string(), "config", "whisper_model", model.string()}).exit_code, 0);
  r = run_dself({"--avatar", avatar.string(), "status"});
  EXPECT_NE(r.output.find("Whisper model " + absolute_path(model)), std::string::npos) << r.output;

  dself::client::ServeProcess server(DSELF_BINARY, avatar, {"--stt", "whisper"}, dir / "serve.log");
  ASSERT_TRUE(server.ready) << dself::read_file(dir / "serve.log");
  auto response = dself::client::http_request("127.0.0.1", server.port, "GET", "/api/status");
  ASSERT_EQ(response.status, 200) << response.body;
  const auto status = nlohmann::json::parse(response.body);  // status --json's document, and the server's engine
  EXPECT_EQ(status["stt"]["engine"], "auto");
  EXPECT_EQ(status["stt"]["whisper_model"], absolute_path(model));
  EXPECT_EQ(status["stt"]["whisper_model_from"], "config");
  EXPECT_EQ(status["stt"]["voice_messages"]["engine"], "whisper");
  EXPECT_EQ(status["stt"]["voice_messages"]["whisper_model"], absolute_path(model));

  const fs::path clip = avatar / "speech/1/0000.wav";
  const auto audio = dself::media::decode_audio(clip, 16000);
  const auto heard = dself::whisper::transcribe_samples(dself::whisper::Model::load(model), audio);
  std::string expected;
  for (const auto& s : heard.segments) {
    std::string piece = s.text.substr(std::min(s.text.size(), s.text.find_first_not_of(' ')));
    if (!piece.empty()) expected += (expected.empty() ? "" : " ") + piece;
  }
  dself::client::WebSocketClient client;
  ASSERT_EQ(client.open("127.0.0.1", server.port, "/api/live"), 101);
  const std::string wav = dself::read_file(clip);
  client.send_text(nlohmann::json{{"type", "voice"}, {"mime", "audio/wav"}, {"audio_base64", base64(wav)}}.dump());
  std::optional<nlohmann::json> transcript;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!transcript && std::chrono::steady_clock::now() < deadline && !client.closed()) {
    auto message = client.receive(1);
    if (!message || message->binary) continue;
    auto json = nlohmann::json::parse(message->data);
    if (json.value("type", "") == "transcript") transcript = json;
  }
  ASSERT_TRUE(transcript.has_value()) << dself::read_file(dir / "serve.log");
  EXPECT_EQ((*transcript)["text"], expected);
  client.close();
}

// Captions checked against the audio: without a model the report says they were not; with one,
// every caption utterance carries its scores and the flag follows the rule from those scores.
TEST(WhisperCaptions, ChecksFollowTheThresholdRule) {
  TempDir dir;
  const fs::path avatar = dself::test::copy_avatar(dir.path());
  auto r = run_dself({"--quiet", "--avatar", avatar.string(), "report"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string report = dself::read_file(avatar / "report.html");
  EXPECT_NE(report.find("were not checked against the audio: no Whisper model"), std::string::npos);

  // 448 decoder positions, as the real models: a caption of 15 s fits.
  const fs::path model = write_random_whisper(dir / "model", false, 31, 448);
  ASSERT_EQ(run_dself({"--avatar", avatar.string(), "config", "whisper_model", model.string()}).exit_code, 0);
  r = run_dself({"--avatar", avatar.string(), "prepare"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  int checked = 0, flagged = 0;
  for (const auto& entry : fs::directory_iterator(avatar / "speech")) {
    const auto dataset = dself::speech::read_dataset(entry.path());
    for (const auto& u : dataset.utterances) {
      ASSERT_TRUE(u.caption_check.has_value()) << entry.path() << " " << u.id << r.output;
      const auto& c = *u.caption_check;
      EXPECT_EQ(c.model, absolute_path(model));
      EXPECT_LT(c.caption_logprob, 0);
      EXPECT_LT(c.whisper_logprob, 0);
      EXPECT_GT(c.margin, 0);
      EXPECT_EQ(c.flagged, c.caption_logprob < c.whisper_logprob - c.margin) << u.id;
      ++checked;
      flagged += c.flagged ? 1 : 0;
    }
  }
  EXPECT_GT(checked, 0);
  r = run_dself({"--quiet", "--avatar", avatar.string(), "report"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  report = dself::read_file(avatar / "report.html");
  EXPECT_NE(report.find(std::to_string(checked) + " of " + std::to_string(checked) + " caption utterances checked; " +
                        std::to_string(flagged) + " flagged"),
            std::string::npos);
  // Up to date on a second run: the check is not made again.
  r = run_dself({"--avatar", avatar.string(), "prepare"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("done: speech"), std::string::npos) << r.output;
}
