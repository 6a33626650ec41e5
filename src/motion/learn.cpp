// Learning the person's viseme motion from prepare's outputs: the speech dataset's aligned phones
// (train split) and the face track, all in the canonical face frame.
#include <algorithm>
#include <cmath>
#include <complex>
#include <numbers>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "core/error.h"
#include "core/workspace.h"
#include "face/face_track.h"
#include "motion/detail/learn.h"
#include "motion/detail/model.h"

namespace dself::motion {
namespace {

constexpr double kRidge = 4.0;              // pull of each target towards its phone-centre mean (in frames)
constexpr double kTrimShare = 0.7;          // robust mean: the samples nearest the median kept
constexpr double kRestEdgeS = 0.1;          // rest frames lie this far inside a silence
constexpr double kMinHeadRunS = 1.0;        // shorter stretches of found frames are not played back
constexpr float kBlinkDepth = 0.15f;        // an eyelid dip of this share of the open eye is a blink
constexpr float kBlinkClosure = 0.85f;      // how far a synthesized blink shuts the lids
constexpr double kMaxBlinkS = 0.8;          // longer closures are looking down, not blinking
constexpr int kMinTrainFrames = 50;         // fewer aligned frames with the face found: refuse
constexpr int kUpperFaceStride = 5;         // every n-th found frame goes into the upper face's median

using Points = std::vector<cv::Point2f>;

float median_of(std::vector<float> v) {
  if (v.empty()) return 0;
  auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

// Coordinate-wise median of many point sets of the same length.
Points median_points(const std::vector<Points>& sets) {
  Points out(sets.empty() ? 0 : sets.front().size());
  std::vector<float> xs(sets.size()), ys(sets.size());
  for (size_t k = 0; k < out.size(); ++k) {
    for (size_t i = 0; i < sets.size(); ++i) xs[i] = sets[i][k].x, ys[i] = sets[i][k].y;
    out[k] = {median_of(xs), median_of(ys)};
  }
  return out;
}

// The mean of the shapes nearest their coordinate-wise median (a trimmed mean: mistracked
// frames and mis-aligned phones fall outside).
Shape robust_mean(const std::vector<Shape>& samples) {
  std::vector<Points> sets;
  for (const Shape& s : samples) sets.emplace_back(s.begin(), s.end());
  Points median = median_points(sets);
  std::vector<std::pair<double, size_t>> by_distance;
  for (size_t i = 0; i < samples.size(); ++i) {
    double d = 0;
    for (int k = 0; k < kShapePointCount; ++k) d += cv::norm(samples[i][k] - median[k]);
    by_distance.emplace_back(d, i);
  }
  std::sort(by_distance.begin(), by_distance.end());
  size_t keep = std::max<size_t>(1, static_cast<size_t>(std::ceil(kTrimShare * static_cast<double>(samples.size()))));
  Shape mean{};
  for (size_t j = 0; j < keep; ++j) {
    for (int k = 0; k < kShapePointCount; ++k) mean[k] += samples[by_distance[j].second][k];
  }
  for (auto& p : mean) p *= 1.0f / static_cast<float>(keep);
  return mean;
}

float mouth_opening(const Landmarks& p) { return static_cast<float>(cv::norm(p[62] - p[66])); }

float eye_opening(const Landmarks& p) {
  return static_cast<float>(
      (cv::norm(p[37] - p[41]) + cv::norm(p[38] - p[40]) + cv::norm(p[43] - p[47]) + cv::norm(p[44] - p[46])) / 4);
}

bool usable(const face::TrackedFrame& f) { return (f.flags & face::kFaceFound) && !(f.flags & face::kNotFrontal); }

// What one source adds to the model; sources are read one at a time, so memory stays bounded by
// the largest source's track.
struct Accumulator {
  cv::Mat wtw = cv::Mat::zeros(kVisemeCount, kVisemeCount, CV_64F);           // sum of w w^T
  cv::Mat wty = cv::Mat::zeros(kVisemeCount, 2 * kShapePointCount, CV_64F);  // sum of w y^T
  std::array<std::vector<Shape>, kVisemeCount> centres;  // shapes at phone centres, per class
  std::vector<std::pair<float, Shape>> silent;           // (opening, shape) inside pauses
  std::vector<std::pair<float, Shape>> any;              // (opening, shape) of every n-th found frame
  std::vector<Points> upper;                             // every n-th found frame's 68 points
  std::vector<std::array<cv::Point2f, kEyeCount>> blink_offsets;
  std::vector<double> blink_durations_s;
  double found_s = 0;  // seconds of found frames, for the blink rate
  int train_frames = 0;
  int train_utterances = 0;
  std::vector<HeadRun> head_runs;
};

void add_speech(const speech::SpeechDataset& dataset, const face::FaceTrack& track,
                const std::vector<Landmarks>& canonical, double coarticulation_s, Accumulator& acc) {
  for (const auto& u : dataset.utterances) {
    if (u.split != speech::Split::train) continue;
    ++acc.train_utterances;
    std::vector<Segment> segments = segments_of(u.alignment.phones);
    // Phone centres: the shape the person makes for each class.
    for (const Segment& s : segments) {
      if (s.viseme == kSil) continue;
      int i = frame_at(track, u.source_start_s + 0.5 * (s.start_s + s.end_s));
      if (i >= 0 && usable(track.frames[i])) acc.centres[s.viseme].push_back(shape_of(canonical[i]));
    }
    // Every frame of the utterance, for the targets fitted through the blend.
    size_t hint = 0;
    auto first = std::lower_bound(track.frames.begin(), track.frames.end(), u.source_start_s,
                                  [](const face::TrackedFrame& f, double t) { return f.time_s < t; });
    for (auto i = static_cast<size_t>(first - track.frames.begin());
         i < track.frames.size() && track.frames[i].time_s < u.source_end_s; ++i) {
      if (!usable(track.frames[i])) continue;
      double t = track.frames[i].time_s - u.source_start_s;
      auto w = blend_weights(segments, t, coarticulation_s, hint);
      Shape y = shape_of(canonical[i]);
      for (int a = 0; a < kVisemeCount; ++a) {
        if (w[a] == 0) continue;
        for (int b = 0; b < kVisemeCount; ++b) acc.wtw.at<double>(a, b) += w[a] * w[b];
        for (int k = 0; k < kShapePointCount; ++k) {
          acc.wty.at<double>(a, 2 * k) += w[a] * y[k].x;
          acc.wty.at<double>(a, 2 * k + 1) += w[a] * y[k].y;
        }
      }
      ++acc.train_frames;
      // Well inside a pause: a candidate for the rest face.
      auto at = std::find_if(segments.begin(), segments.end(), [&](const Segment& s) { return s.end_s > t; });
      if (at != segments.end() && at->viseme == kSil && t - at->start_s >= kRestEdgeS && at->end_s - t >= kRestEdgeS) {
        acc.silent.emplace_back(mouth_opening(canonical[i]), y);
      }
    }
  }
}

// Blinks: dips of the eyelid opening well below its level over the second around them (the
// level drifts with pose and expression), short enough not to be a look down. The track is
// smoothed over +-4 frames, so a blink shows shallower than it is; its shape is taken as the
// direction the lids moved, scaled to kBlinkClosure of the open eye.
void add_blinks(const face::FaceTrack& track, const std::vector<Landmarks>& canonical, Accumulator& acc) {
  size_t n = track.frames.size();
  double fps = track.fps > 0 ? track.fps : 25;
  auto window = static_cast<ptrdiff_t>(std::lround(fps));
  std::vector<float> opening(n, 0), level(n, 0);
  std::vector<float> around;
  for (size_t i = 0; i < n; ++i) {
    if (usable(track.frames[i])) opening[i] = eye_opening(canonical[i]);
  }
  for (size_t i = 0; i < n; ++i) {
    if (opening[i] <= 0) continue;
    around.clear();
    for (ptrdiff_t j = static_cast<ptrdiff_t>(i) - window; j <= static_cast<ptrdiff_t>(i) + window; ++j) {
      if (j >= 0 && j < static_cast<ptrdiff_t>(n) && opening[j] > 0) around.push_back(opening[j]);
    }
    level[i] = median_of(around);
    acc.found_s += 1 / fps;
  }
  auto dip = [&](size_t i) { return opening[i] > 0 && level[i] > 0 ? 1 - opening[i] / level[i] : 0.0f; };
  size_t i = 0;
  while (i < n) {
    if (dip(i) < kBlinkDepth) {
      ++i;
      continue;
    }
    // Widen to where the lids are half-way back; find the deepest frame.
    size_t start = i, end = i, deepest = i;
    while (start > 0 && dip(start - 1) >= 0.5 * kBlinkDepth) --start;
    while (end < n && dip(end) >= 0.5 * kBlinkDepth) {
      if (dip(end) > dip(deepest)) deepest = end;
      ++end;
    }
    double duration_s = static_cast<double>(end - start) / fps;
    if (duration_s <= kMaxBlinkS) {
      // The lids' movement from the open eye (the frame before the dip) to the deepest frame,
      // per unit of closure.
      size_t open = start > 0 && opening[start - 1] > 0 ? start - 1 : end < n && opening[end] > 0 ? end : deepest;
      std::array<cv::Point2f, kEyeCount> offset;
      float depth = dip(deepest);
      for (int k = 0; k < kEyeCount; ++k) {
        offset[k] = (canonical[deepest][kEyeFirst + k] - canonical[open][kEyeFirst + k]) * (1.0f / depth);
      }
      acc.blink_offsets.push_back(offset);
      acc.blink_durations_s.push_back(duration_s);
    }
    i = std::max(end, i + 1);
  }
}

// The head's motion about the source's median pose, over runs of found frames. A frame's
// similarity S maps its image to the canonical frame; the median's, M, maps the person's usual
// framing there. M o S^-1 is where this frame's head sits in the usual canonical frame: as a
// complex number z = a + ib, its linear part is z_M / z_S.
void add_head_runs(const face::FaceTrack& track, int canonical_size, Accumulator& acc) {
  std::vector<float> as, bs, txs, tys;
  for (const auto& f : track.frames) {
    if (!(f.flags & face::kFaceFound)) continue;
    as.push_back(f.to_canonical.a), bs.push_back(f.to_canonical.b);
    txs.push_back(f.to_canonical.tx), tys.push_back(f.to_canonical.ty);
  }
  if (as.empty()) return;
  std::complex<double> zm(median_of(as), median_of(bs));
  std::complex<double> tm(median_of(txs), median_of(tys));
  const std::complex<double> pivot(0.5 * canonical_size, 0.57 * canonical_size);
  double fps = track.fps > 0 ? track.fps : 25;
  HeadRun run;
  run.fps = fps;
  auto flush = [&] {
    if (run.duration_s() >= kMinHeadRunS) acc.head_runs.push_back(run);
    run.frames.clear();
  };
  for (size_t i = 0; i < track.frames.size(); ++i) {
    const auto& f = track.frames[i];
    bool gap = i > 0 && track.frames[i].time_s - track.frames[i - 1].time_s > 1.5 / fps;
    if (!(f.flags & face::kFaceFound) || gap) flush();
    if (!(f.flags & face::kFaceFound)) continue;
    std::complex<double> zs(f.to_canonical.a, f.to_canonical.b);
    std::complex<double> ts(f.to_canonical.tx, f.to_canonical.ty);
    if (std::abs(zs) == 0) continue;
    std::complex<double> linear = zm / zs;
    std::complex<double> moved_pivot = linear * (pivot - ts) + tm;  // H(pivot) = M(S^-1(pivot))
    std::complex<double> shift = moved_pivot - pivot;
    run.frames.push_back({static_cast<float>(std::arg(linear) * 180 / std::numbers::pi),
                          static_cast<float>(std::abs(linear)), static_cast<float>(shift.real()),
                          static_cast<float>(shift.imag())});
  }
  flush();
}

void add_frames(const face::FaceTrack& track, const std::vector<Landmarks>& canonical, Accumulator& acc) {
  int n = 0;
  for (size_t i = 0; i < track.frames.size(); ++i) {
    if (!usable(track.frames[i]) || n++ % kUpperFaceStride != 0) continue;
    acc.upper.emplace_back(canonical[i].begin(), canonical[i].end());
    acc.any.emplace_back(mouth_opening(canonical[i]), shape_of(canonical[i]));
  }
}

// The mouth of the closed, relaxed face: the median over the more closed half of the frames
// well inside pauses (or, with too few pauses, the most closed tenth of all frames).
Shape rest_mouth(Accumulator& acc, int& frames_used) {
  auto& pool = acc.silent.size() >= 10 ? acc.silent : acc.any;
  double share = acc.silent.size() >= 10 ? 0.5 : 0.1;
  std::sort(pool.begin(), pool.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  size_t keep = std::max<size_t>(1, static_cast<size_t>(share * static_cast<double>(pool.size())));
  std::vector<Points> sets;
  for (size_t i = 0; i < keep && i < pool.size(); ++i) sets.emplace_back(pool[i].second.begin(), pool[i].second.end());
  frames_used = static_cast<int>(sets.size());
  Points median = median_points(sets);
  Shape s;
  std::copy(median.begin(), median.end(), s.begin());
  return s;
}

}  // namespace

int frame_at(const face::FaceTrack& track, double t) {
  if (track.frames.empty()) return -1;
  double step = 1 / (track.fps > 0 ? track.fps : 25);
  auto i = static_cast<long>(std::lround((t - track.frames.front().time_s) / step));
  if (i < 0 || i >= static_cast<long>(track.frames.size())) return -1;
  // Variable frame rates: walk to the nearest presentation time.
  while (i > 0 && std::abs(track.frames[i - 1].time_s - t) < std::abs(track.frames[i].time_s - t)) --i;
  while (i + 1 < static_cast<long>(track.frames.size()) &&
         std::abs(track.frames[i + 1].time_s - t) < std::abs(track.frames[i].time_s - t)) {
    ++i;
  }
  return std::abs(track.frames[i].time_s - t) <= step ? static_cast<int>(i) : -1;
}

std::vector<PreparedSource> prepared_sources(const std::filesystem::path& avatar) {
  workspace::require_avatar(avatar);
  std::vector<PreparedSource> sources;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(workspace::speech_root(avatar), ec)) {
    const int64_t id = workspace::source_id_of(entry.path());
    if (id < 0 || entry.path().has_extension()) continue;
    PreparedSource s{id, workspace::speech_dir(avatar, id), workspace::landmarks_path(avatar, id)};
    if (std::filesystem::exists(s.speech_dir / "utterances.json") && std::filesystem::exists(s.landmarks)) {
      sources.push_back(s);
    }
  }
  std::sort(sources.begin(), sources.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  if (sources.empty()) {
    throw InputError(fmt::format(
        "avatar {} has no source with both a speech dataset (speech/<id>/utterances.json) and a face track "
        "(faces/<id>/landmarks.bin): run `dself prepare` (its speech and face steps) first",
        avatar.string()));
  }
  return sources;
}

std::shared_ptr<const VisemeModel> learn_viseme_model(const std::filesystem::path& avatar) {
  auto model = std::make_shared<VisemeModel>();
  model->canonical_size = face::TrackOptions{}.canonical_size;
  model->coarticulation_s = VisemeOptions{}.coarticulation_s;
  Accumulator acc;
  for (const PreparedSource& source : prepared_sources(avatar)) {
    speech::SpeechDataset dataset = speech::read_dataset(source.speech_dir);
    face::FaceTrack track = face::read_landmarks(source.landmarks);
    std::vector<Landmarks> canonical(track.frames.size());
    for (size_t i = 0; i < track.frames.size(); ++i) canonical[i] = to_canonical(track.frames[i]);
    add_speech(dataset, track, canonical, model->coarticulation_s, acc);
    add_blinks(track, canonical, acc);
    add_head_runs(track, model->canonical_size, acc);
    add_frames(track, canonical, acc);
    ++model->source_count;
  }
  int centre_count = 0;
  for (int v = 1; v < kVisemeCount; ++v) centre_count += static_cast<int>(acc.centres[v].size());
  if (acc.train_frames < kMinTrainFrames || centre_count == 0) {
    throw InputError(fmt::format(
        "avatar {}: only {} frames of train-split speech with the face found (at least {} needed) to learn the "
        "person's mouth from: ingest more video of them speaking to the camera and run `dself prepare`",
        avatar.string(), acc.train_frames, kMinTrainFrames));
  }
  model->train_frames = acc.train_frames;
  model->train_utterances = acc.train_utterances;

  // The rest face: brows, eyes and nose from the median of all frames (blinks are rare), the
  // mouth and jaw from the closed, relaxed frames.
  Points upper = median_points(acc.upper);
  std::copy(upper.begin(), upper.end(), model->rest.begin());
  put_shape(model->rest, rest_mouth(acc, model->rest_frames));

  // Phone-centre means first: they are the targets where the fit below has little to say.
  std::vector<Shape> all_speech;
  for (int v = 1; v < kVisemeCount; ++v) all_speech.insert(all_speech.end(), acc.centres[v].begin(), acc.centres[v].end());
  Shape speaking = robust_mean(all_speech);
  std::array<Shape, kVisemeCount> prior;
  prior[kSil] = shape_of(model->rest);
  for (int v = 1; v < kVisemeCount; ++v) {
    model->samples[v] = static_cast<int>(acc.centres[v].size());
    prior[v] = acc.centres[v].empty() ? speaking : robust_mean(acc.centres[v]);
  }

  // Targets fitted through the blend: minimise sum_t |y_t - sum_c w_c(t) T_c|^2 +
  // ridge * sum_c |T_c - prior_c|^2 over the free classes, silence held at the rest face.
  constexpr int free_count = kVisemeCount - 1;
  cv::Mat a(free_count, free_count, CV_64F), b(free_count, 2 * kShapePointCount, CV_64F);
  for (int i = 0; i < free_count; ++i) {
    for (int j = 0; j < free_count; ++j) a.at<double>(i, j) = acc.wtw.at<double>(i + 1, j + 1) + (i == j ? kRidge : 0);
    for (int k = 0; k < kShapePointCount; ++k) {
      double sil = acc.wtw.at<double>(i + 1, kSil);
      b.at<double>(i, 2 * k) = acc.wty.at<double>(i + 1, 2 * k) - sil * prior[kSil][k].x + kRidge * prior[i + 1][k].x;
      b.at<double>(i, 2 * k + 1) =
          acc.wty.at<double>(i + 1, 2 * k + 1) - sil * prior[kSil][k].y + kRidge * prior[i + 1][k].y;
    }
  }
  cv::Mat x;
  cv::solve(a, b, x, cv::DECOMP_CHOLESKY);
  model->targets[kSil] = prior[kSil];
  for (int v = 1; v < kVisemeCount; ++v) {
    for (int k = 0; k < kShapePointCount; ++k) {
      model->targets[v][k] = {static_cast<float>(x.at<double>(v - 1, 2 * k)),
                              static_cast<float>(x.at<double>(v - 1, 2 * k + 1))};
    }
  }

  // Blinks: the person's own when at least two were seen.
  model->blink_count = static_cast<int>(acc.blink_offsets.size());
  if (acc.blink_offsets.size() >= 2 && acc.found_s > 0) {
    model->blinks_measured = true;
    model->blinks_per_minute = 60.0 * static_cast<double>(acc.blink_offsets.size()) / acc.found_s;
    std::vector<float> durations(acc.blink_durations_s.begin(), acc.blink_durations_s.end());
    model->blink_duration_s = std::clamp<double>(median_of(durations), 0.1, 0.5);
    for (const auto& offset : acc.blink_offsets) {
      for (int k = 0; k < kEyeCount; ++k) {
        model->blink_closed[k] += offset[k] * (kBlinkClosure / static_cast<float>(acc.blink_offsets.size()));
      }
    }
  } else {
    // A typical blink: each upper lid point goes most of the way to the lower lid.
    const int pairs[4][2] = {{37, 41}, {38, 40}, {43, 47}, {44, 46}};
    for (const auto& pair : pairs) {
      model->blink_closed[pair[0] - kEyeFirst] = kBlinkClosure * (model->rest[pair[1]] - model->rest[pair[0]]);
    }
  }
  model->head_runs = std::move(acc.head_runs);
  return model;
}

nlohmann::json model_summary(const VisemeModel& model) {
  nlohmann::json samples = nlohmann::json::object();
  for (int v = 1; v < kVisemeCount; ++v) samples[viseme_info(v).name] = model.samples[v];
  double head_s = 0;
  for (const HeadRun& run : model.head_runs) head_s += run.duration_s();
  return {{"engine", "viseme"},
          {"sources", model.source_count},
          {"train_utterances", model.train_utterances},
          {"train_frames", model.train_frames},
          {"rest_frames", model.rest_frames},
          {"phone_centres", samples},
          {"blinks", {{"measured", model.blinks_measured},
                      {"found", model.blink_count},
                      {"per_minute", model.blinks_per_minute},
                      {"duration_s", model.blink_duration_s}}},
          {"head", {{"runs", model.head_runs.size()}, {"seconds", head_s}}}};
}

}  // namespace dself::motion
