// `dself eval say`: every part of `say` judged on the avatar's held-out data (DESIGN.md §4), and the
// figures kept beside each model as metrics.json for `status` and the web UI.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>

#include "core/catalog.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/workspace.h"
#include "say/say.h"
#include "speech/speech.h"
#include "train/train.h"

namespace dself::say {
namespace {

namespace fs = std::filesystem;

// Sentences the person said that no model learned from: the held-out split of the speech dataset
// (the train split when an avatar is too small to have one), spread over all sources.
std::vector<std::string> held_out_texts(const fs::path& avatar, size_t count) {
  std::vector<std::string> held_out, train;
  Catalog catalog(avatar);
  for (const auto& source : catalog.sources()) {
    fs::path dir = workspace::speech_dir(avatar, source.id);
    if (!fs::exists(workspace::utterances_path(avatar, source.id))) continue;
    for (const auto& u : speech::read_dataset(dir).utterances) {
      (u.split == speech::Split::held_out ? held_out : train).push_back(u.text);
    }
  }
  std::vector<std::string>& pool = held_out.empty() ? train : held_out;
  std::vector<std::string> chosen;
  for (size_t i = 0; i < count && i < pool.size(); ++i) chosen.push_back(pool[i * pool.size() / std::min(count, pool.size())]);
  return chosen;
}

// Lip sync by re-detection: the held-out sentences said, animated and drawn, the face found again
// on every frame and its mouth compared with the commanded one.
nlohmann::json lip_sync(const Cast& cast, const SayOptions& options,
                        const std::vector<std::string>& texts) {
  auto voice = make_voice(cast);
  auto motion = make_motion(cast, options);
  std::vector<motion::FacePose> poses;
  double speech_s = 0;
  for (const auto& text : texts) {
    voice::Utterance u = voice->say(text);
    auto more = motion->animate(u.phones, u.samples, u.duration_s(), options.fps);
    poses.insert(poses.end(), more.begin(), more.end());
    speech_s += u.duration_s();
  }
  auto renderer = render::make_photoreal_renderer(cast.renderer);
  nlohmann::json result = render::evaluate_lip_sync(*renderer, poses);
  result["sentences"] = texts.size();
  result["speech_s"] = speech_s;
  return result;
}

// A part whose evaluation cannot run on this avatar (e.g. no held-out utterance) is reported with
// the reason, and the others still run.
nlohmann::json guarded(const char* part, const std::function<nlohmann::json()>& evaluate_part) {
  try {
    return evaluate_part();
  } catch (const InputError& e) {
    spdlog::warn("eval say: {} not measured: {}", part, e.what());
    return {{"error", e.what()}};
  }
}

void write_metrics(const fs::path& avatar, const std::string& kind, const nlohmann::json& metrics) {
  fs::create_directories(workspace::model_dir(avatar, kind));
  write_file_atomic(workspace::metrics_path(avatar, kind), metrics.dump(2) + "\n");
}

}  // namespace

nlohmann::json evaluate(const SayOptions& options, const fs::path& truth_dir) {
  auto cast = load_cast(options);
  std::vector<std::string> texts = held_out_texts(options.avatar, 6);
  if (texts.empty()) {
    throw InputError(fmt::format("the avatar at {} has no utterances to evaluate on: run `dself --avatar {} prepare`",
                                 options.avatar.string(), options.avatar.string()));
  }
  nlohmann::ordered_json result;
  result["voice"] = guarded("voice", [&] { return train::evaluate_voice(options.avatar); });
  result["motion"] = guarded("motion", [&] { return motion::evaluate_motion(options.avatar, truth_dir); });
  result["lip_sync"] = guarded("lip sync", [&] { return lip_sync(*cast, options, texts); });
  result["reenactment"] = guarded("self-reenactment", [&] { return render::evaluate_reenactment(options.avatar); });
  result["targets"] = {{"face_found_share", 1.0}, {"mouth_error_iod_pct", 5.0}, {"opening_correlation", 0.9}};

  write_metrics(options.avatar, "motion", result["motion"]);
  write_metrics(options.avatar, "render", {{"lip_sync", result["lip_sync"]}, {"reenactment", result["reenactment"]}});
  return result;
}

}  // namespace dself::say
