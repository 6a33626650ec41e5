// The viseme motion measured on the person's held-out utterances (DESIGN.md §4, motion): landmark
// distance and mouth-opening correlation against their tracked face and, on a sample person,
// against the commanded landmarks.
#include <chrono>
#include <cmath>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/catalog.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/workspace.h"
#include "motion/detail/learn.h"
#include "motion/detail/model.h"

namespace dself::motion {
namespace {

// Pearson correlation; 0 when either side is constant.
double correlation(const std::vector<double>& x, const std::vector<double>& y) {
  size_t n = std::min(x.size(), y.size());
  if (n < 2) return 0;
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; ++i) mx += x[i], my += y[i];
  mx /= static_cast<double>(n), my /= static_cast<double>(n);
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < n; ++i) {
    sxy += (x[i] - mx) * (y[i] - my), sxx += (x[i] - mx) * (x[i] - mx), syy += (y[i] - my) * (y[i] - my);
  }
  return sxx > 0 && syy > 0 ? sxy / std::sqrt(sxx * syy) : 0;
}

double opening(const Landmarks& p) { return cv::norm(p[62] - p[66]); }

// Distances of the model's and the rest face's mouth and jaw from a reference, frame by frame.
struct Tally {
  double iod = 0;  // of the canonical frame
  double lmd_sum = 0, mouth_sum = 0, rest_sum = 0, rest_mouth_sum = 0, reference_sum = 0;
  int64_t frames = 0;
  std::vector<double> model_opening, reference_opening;

  static double distance(const Landmarks& a, const Landmarks& b, int first_shape_point) {
    double sum = 0;
    for (int k = first_shape_point; k < kShapePointCount; ++k) sum += cv::norm(a[kShapePoints[k]] - b[kShapePoints[k]]);
    return sum / (kShapePointCount - first_shape_point);
  }
  // `tracked`: the tracker's own landmarks on this frame, when the reference is the truth.
  void add(const Landmarks& model, const Landmarks& rest, const Landmarks& reference,
           const Landmarks* tracked = nullptr) {
    constexpr int mouth_first = 17;  // shape points 17.. are the mouth (48-67)
    lmd_sum += distance(model, reference, 0);
    mouth_sum += distance(model, reference, mouth_first);
    rest_sum += distance(rest, reference, 0);
    rest_mouth_sum += distance(rest, reference, mouth_first);
    if (tracked) reference_sum += distance(*tracked, reference, 0);
    model_opening.push_back(opening(model));
    reference_opening.push_back(opening(reference));
    ++frames;
  }
  double pct(double sum) const { return frames ? 100 * sum / static_cast<double>(frames) / iod : 0.0; }
  nlohmann::json json(bool with_tracker) const {
    nlohmann::json j = {{"frames", frames},
                        {"lmd_iod_pct", pct(lmd_sum)},
                        {"mouth_lmd_iod_pct", pct(mouth_sum)},
                        {"opening_correlation", correlation(model_opening, reference_opening)},
                        {"rest_lmd_iod_pct", pct(rest_sum)},
                        {"rest_mouth_lmd_iod_pct", pct(rest_mouth_sum)}};
    if (with_tracker) j["tracker_lmd_iod_pct"] = pct(reference_sum);
    return j;
  }
};

// The truth file of a source: <stem of its original file name>.truth.json, else <title>.truth.json.
std::optional<std::filesystem::path> truth_file(const std::vector<Source>& sources, int64_t id,
                                                const std::filesystem::path& truth_dir) {
  for (const Source& source : sources) {
    if (source.id != id) continue;
    std::string name = source.origin.substr(source.origin.find_last_of('/') + 1);
    name = name.substr(0, name.find_first_of("?#"));
    for (const std::string& stem : {std::filesystem::path(name).stem().string(), source.title}) {
      std::filesystem::path path = truth_dir / (stem + ".truth.json");
      if (!stem.empty() && std::filesystem::exists(path)) return path;
    }
  }
  return std::nullopt;
}

}  // namespace

nlohmann::json evaluate_motion(const std::filesystem::path& avatar, const std::filesystem::path& truth_dir) {
  if (!truth_dir.empty() && !std::filesystem::is_directory(truth_dir)) {
    throw InputError(fmt::format("--truth {}: not a directory; give the --out directory of `dself sample`",
                                 truth_dir.string()));
  }
  std::vector<PreparedSource> prepared = prepared_sources(avatar);
  std::shared_ptr<const VisemeModel> model = learn_viseme_model(avatar);
  std::vector<Source> catalog_sources;
  if (!truth_dir.empty() && std::filesystem::exists(workspace::catalog_path(avatar))) catalog_sources = Catalog(avatar).sources();

  std::unique_ptr<Motion> motion = make_viseme_motion(model);
  Tally tracked, truth, fit;
  for (Tally* t : {&tracked, &truth, &fit}) t->iod = 0.3 * model->canonical_size;
  int held_out = 0;
  int truth_sources = 0;
  double animate_s = 0;
  int64_t animated_frames = 0;
  for (const PreparedSource& source : prepared) {
    speech::SpeechDataset dataset = speech::read_dataset(source.speech_dir);
    face::FaceTrack track = face::read_landmarks(source.landmarks);
    double fps = track.fps > 0 ? track.fps : 25;
    nlohmann::json truth_json;
    if (auto path = truth_dir.empty() ? std::nullopt : truth_file(catalog_sources, source.id, truth_dir)) {
      truth_json = nlohmann::json::parse(read_file(*path));
      ++truth_sources;
    }
    for (const auto& u : dataset.utterances) {
      bool is_held_out = u.split == speech::Split::held_out;
      motion->reset();
      auto start = std::chrono::steady_clock::now();
      std::vector<FacePose> poses = motion->animate(u.alignment.phones, {}, u.source_end_s - u.source_start_s, fps);
      animate_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      animated_frames += static_cast<int64_t>(poses.size());
      held_out += is_held_out ? 1 : 0;
      for (size_t k = 0; k < poses.size(); ++k) {
        double t = u.source_start_s + static_cast<double>(k) / fps;
        int i = frame_at(track, t);
        if (i < 0 || !(track.frames[i].flags & face::kFaceFound)) continue;
        Landmarks seen = to_canonical(track.frames[i]);
        if (!is_held_out) {
          fit.add(poses[k].points, model->rest, seen);
          continue;
        }
        tracked.add(poses[k].points, model->rest, seen);
        if (truth_json.is_null()) continue;
        // The commanded landmarks, mapped to the canonical frame with the tracked similarity.
        const auto& frames = truth_json.at("landmarks");
        auto j = static_cast<size_t>(std::lround(t * truth_json.value("fps", 25.0)));
        if (j >= frames.size()) continue;
        face::TrackedFrame commanded = track.frames[i];
        for (int p = 0; p < face::kLandmarkCount; ++p) {
          commanded.points[p] = {frames[j][2 * p].get<float>(), frames[j][2 * p + 1].get<float>()};
        }
        truth.add(poses[k].points, model->rest, to_canonical(commanded), &seen);
      }
    }
  }
  if (held_out == 0 || tracked.frames == 0) {
    throw InputError(fmt::format(
        "avatar {} has no held-out utterance with the face found to measure the motion on (about 10% of "
        "utterances are held out): ingest more video and run `dself prepare`",
        avatar.string()));
  }
  nlohmann::json result = {{"format", "dself-eval-motion"},
                           {"version", 1},
                           {"engine", motion->name()},
                           {"held_out_utterances", held_out},
                           {"tracked", tracked.json(false)},
                           {"train_fit", fit.json(false)},
                           {"animate_ms_per_frame", animated_frames ? 1000 * animate_s / animated_frames : 0.0},
                           {"model", model_summary(*model)}};
  if (!truth_dir.empty()) {
    nlohmann::json t = truth.json(true);
    t["sources"] = truth_sources;
    result["truth"] = t;
  }
  return result;
}

}  // namespace dself::motion
