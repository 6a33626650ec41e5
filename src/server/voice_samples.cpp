// The training curve, the held-out utterances and the trained voice saying them (the Studio's
// Train panel). Every id from a URL is checked against the datasets before a file is opened.
#include "server/detail/voice_samples.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <system_error>

#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/workspace.h"
#include "media/media.h"
#include "server/detail/http.h"
#include "speech/speech.h"
#include "train/train.h"
#include "voice/voice.h"

namespace dself::server::detail {
namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxSamples = 50;  // held-out utterances listed at most (spread evenly)

bool all_of_chars(const std::string& s, const std::function<bool(char)>& ok) {
  return std::all_of(s.begin(), s.end(), [&](char c) { return ok(c); });
}

// A source id is a number (its speech/<id>/ directory); an utterance id letters, digits, '-', '_'.
void check_ids(const std::string& source, const std::string& id) {
  if (source.empty() || source.size() > 15 || !all_of_chars(source, [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; })) {
    throw HttpError(400, fmt::format("\"{}\" is not a source id: give the number GET /api/voice/samples lists", source));
  }
  if (id.empty() || id.size() > 64 ||
      !all_of_chars(id, [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; })) {
    throw HttpError(400, fmt::format("\"{}\" is not an utterance id: give one GET /api/voice/samples lists", id));
  }
}

// The prepared sources' datasets, by id (unreadable ones skipped: status reports them).
std::vector<std::pair<std::string, speech::SpeechDataset>> datasets(const fs::path& avatar) {
  std::vector<std::pair<std::string, speech::SpeechDataset>> found;
  std::error_code ec;
  const fs::path root = workspace::speech_root(avatar);
  if (!fs::is_directory(root, ec)) return found;
  std::vector<fs::path> dirs;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    if (entry.is_directory(ec) && fs::is_regular_file(entry.path() / "utterances.json", ec)) dirs.push_back(entry.path());
  }
  std::sort(dirs.begin(), dirs.end());
  for (const auto& dir : dirs) {
    try {
      found.emplace_back(dir.filename().string(), speech::read_dataset(dir));
    } catch (const std::exception&) {
      // a malformed dataset has no samples to offer
    }
  }
  return found;
}

std::string url_of(const std::string& source, const std::string& id, const char* which) {
  return fmt::format("/api/voice/samples/{}/{}/{}.wav", source, id, which);
}

// What identifies the trained model on disk now; empty when there is none.
std::string model_stamp(const fs::path& model_dir) {
  std::error_code ec;
  const fs::path weights = model_dir / "model.safetensors";
  if (!fs::is_regular_file(model_dir / "config.json", ec) || !fs::is_regular_file(weights, ec)) return {};
  auto time = fs::last_write_time(weights, ec).time_since_epoch().count();
  return fmt::format("{}-{}", time, fs::file_size(weights, ec));
}

}  // namespace

nlohmann::json voice_curve(const fs::path& avatar) {
  const fs::path dir = workspace::model_dir(avatar, "voice");
  std::error_code ec;
  if (fs::is_regular_file(dir / "curve.json", ec) && fs::is_regular_file(dir / "config.json", ec)) {
    nlohmann::json curve = nlohmann::json::parse(read_file(dir / "curve.json"), nullptr, false);
    if (curve.is_object() && curve.contains("points")) {
      curve["partial"] = false;
      return curve;
    }
  }
  // While training (or stopped): the curve so far, as the last checkpoint saved it.
  for (const char* checkpoint : {"checkpoint", "checkpoint.new"}) {
    const fs::path state_path = dir / checkpoint / "state.json";
    if (!fs::is_regular_file(state_path, ec)) continue;
    nlohmann::json state = nlohmann::json::parse(read_file(state_path), nullptr, false);
    if (!state.is_object() || !state.contains("curve") || !state["curve"].is_array()) continue;
    return {{"format", "dself-voice-curve"},
            {"points", state["curve"]},
            {"partial", true},
            {"step", state.value("step", 0)},
            {"step_count", state.value("step_count", 0)}};
  }
  throw HttpError(404, "no training curve yet: the voice has not been trained (start a \"train\" job or run `dself train voice`)");
}

nlohmann::json voice_samples(const fs::path& avatar) {
  double train_s = 0, held_out_s = 0;
  nlohmann::json samples = nlohmann::json::array();
  for (const auto& [source, dataset] : datasets(avatar)) {
    for (const auto& u : dataset.utterances) {
      const double length = u.source_end_s - u.source_start_s;
      if (u.split == speech::Split::train) {
        train_s += length;
        continue;
      }
      held_out_s += length;
      samples.push_back({{"source", source},
                         {"id", u.id},
                         {"text", u.text},
                         {"duration_s", length},
                         {"real_url", url_of(source, u.id, "real")},
                         {"trained_url", url_of(source, u.id, "trained")}});
    }
  }
  if (samples.size() > kMaxSamples) {
    nlohmann::json spread = nlohmann::json::array();
    for (size_t i = 0; i < kMaxSamples; ++i) spread.push_back(samples[i * samples.size() / kMaxSamples]);
    samples = spread;
  }
  std::string why;
  const std::string state = train::model_state(avatar, train::Model::voice, &why);
  const bool trained = !model_stamp(workspace::model_dir(avatar, "voice")).empty();
  nlohmann::json speech = {{"train_s", train_s},
                           {"held_out_s", held_out_s},
                           {"min_train_s", voice::kMinVoiceSpeechS},
                           {"ready", train_s >= voice::kMinVoiceSpeechS}};
  if (train_s < voice::kMinVoiceSpeechS) {
    speech["waiting_for"] = fmt::format(
        "needs {:.0f} minutes of the person's speech; has {:.1f} — add videos and prepare",
        voice::kMinVoiceSpeechS / 60, train_s / 60);
  }
  // The name the voice goes by where it speaks (voice::Voice::name()), without loading the model.
  std::string name = "fallback voice (espeak-ng)";
  if (trained) {
    nlohmann::json config =
        nlohmann::json::parse(read_file(workspace::model_dir(avatar, "voice") / "config.json"), nullptr, false);
    const double speech_s = config.is_object() ? config.value("speech_s", 0.0) : 0.0;
    name = fmt::format("trained voice ({:.0f} min of speech)", speech_s / 60);
  }
  // Whether GET /api/models/voice/curve has a curve: the page asks for it only then.
  bool curve = true;
  try {
    voice_curve(avatar);
  } catch (const HttpError&) {
    curve = false;
  }
  return {{"voice", {{"name", name}, {"trained", trained}, {"state", state}, {"why", why}}},
          {"speech", speech},
          {"samples", samples},
          {"curve", curve}};
}

HeldOutClip held_out_clip(const fs::path& avatar, const std::string& source, const std::string& id) {
  check_ids(source, id);
  const fs::path dir = workspace::speech_root(avatar) / source;
  std::error_code ec;
  if (!fs::is_regular_file(dir / "utterances.json", ec)) {
    throw HttpError(404, fmt::format("source {} has no speech dataset", source));
  }
  speech::SpeechDataset dataset;
  try {
    dataset = speech::read_dataset(dir);
  } catch (const std::exception& e) {
    throw HttpError(404, fmt::format("source {}'s speech dataset cannot be read: {}", source, describe(e)));
  }
  for (const auto& u : dataset.utterances) {
    if (u.id != id) continue;
    if (u.split != speech::Split::held_out) {
      throw HttpError(404, fmt::format("utterance {} of source {} is in the train split: only held-out ones are served",
                                       id, source));
    }
    // The clip's file name must be a plain name beside utterances.json.
    const fs::path wav = fs::path(u.wav);
    if (u.wav.empty() || wav.has_parent_path() || wav.filename() != wav || u.wav == "." || u.wav == ".." ||
        !fs::is_regular_file(dir / wav, ec)) {
      throw HttpError(404, fmt::format("utterance {} of source {} has no recording", id, source));
    }
    return {dir / wav, u.text};
  }
  throw HttpError(404, fmt::format("source {} has no utterance {}", source, id));
}

TrainedVoiceSamples::TrainedVoiceSamples(fs::path avatar) : avatar_(std::move(avatar)) {}
TrainedVoiceSamples::~TrainedVoiceSamples() = default;

fs::path TrainedVoiceSamples::wav(const std::string& source, const std::string& id) {
  const HeldOutClip clip = held_out_clip(avatar_, source, id);
  const fs::path model_dir = workspace::model_dir(avatar_, "voice");
  std::lock_guard lock(mutex_);
  const std::string stamp = model_stamp(model_dir);
  if (stamp.empty()) {
    voice_.reset();
    throw HttpError(404, "no trained voice yet: start a \"train\" job (or run `dself train voice`), then listen again");
  }
  const fs::path file = workspace::renders_dir(avatar_) / "voice-samples" /
                        fmt::format("{}-{}-{}.wav", source, id, hash_bytes(stamp + "\n" + clip.text).substr(0, 16));
  std::error_code ec;
  if (fs::is_regular_file(file, ec)) return file;
  if (!voice_ || loaded_stamp_ != stamp) {
    voice_.reset();
    try {
      voice_ = voice::make_trained_voice(model_dir);
    } catch (const std::exception& e) {
      throw HttpError(404, fmt::format("the trained voice cannot be used ({}): train it again", describe(e)));
    }
    loaded_stamp_ = stamp;
  }
  // A held-out utterance is usually one sentence; longer ones
  // are said sentence by sentence (voice::split_sentences) with a short pause, as `say` does.
  std::vector<float> samples;
  for (const std::string& sentence : voice::split_sentences(clip.text)) {
    voice::Utterance said = voice_->say(sentence);
    if (!samples.empty()) samples.insert(samples.end(), voice::kSampleRate / 5, 0.0f);
    samples.insert(samples.end(), said.samples.begin(), said.samples.end());
  }
  if (samples.empty()) throw HttpError(404, fmt::format("utterance {} of source {} has nothing to say", id, source));
  fs::create_directories(file.parent_path());
  media::write_wav(file, samples, voice::kSampleRate);
  return file;
}

}  // namespace dself::server::detail
