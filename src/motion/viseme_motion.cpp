// A motion stream on a learned viseme model: the mouth and jaw blended from the phones' targets,
// the person's blinks and their real head motion, continuing from one call to the next.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"
#include "core/random.h"
#include "motion/detail/model.h"

namespace dself::motion {
namespace {

// How far the lids are shut u of the way through a blink: they close in its first 40% and
// open, more slowly, in the rest (a squared sine over a warped clock).
double blink_profile(double u) {
  if (u <= 0 || u >= 1) return 0;
  double warped = u < 0.4 ? 0.5 * u / 0.4 : 0.5 + 0.5 * (u - 0.4) / 0.6;
  double s = std::sin(std::numbers::pi * warped);
  return s * s;
}

HeadMotion mix(const HeadMotion& a, const HeadMotion& b, float w) {
  return {a.roll_deg + w * (b.roll_deg - a.roll_deg), a.scale + w * (b.scale - a.scale),
          a.shift_x + w * (b.shift_x - a.shift_x), a.shift_y + w * (b.shift_y - a.shift_y)};
}

class VisemeMotion final : public Motion {
 public:
  VisemeMotion(std::shared_ptr<const VisemeModel> model, const VisemeOptions& options)
      : model_(std::move(model)), options_(options), random_(options.seed, "viseme motion") {
    if (!model_) throw InputError("make_viseme_motion: no model given (learn_viseme_model first)");
    if (!(options_.coarticulation_s > 0)) throw InputError("viseme motion: coarticulation_s must be above 0");
    reset();
  }

  std::string name() const override { return "viseme"; }

  std::vector<FacePose> animate(const std::vector<speech::TimedPhone>& phones, std::span<const float>,
                                double duration_s, double fps) override {
    check_fps(fps);
    if (!(duration_s >= 0)) throw InputError("animate: duration_s must be 0 or more");
    auto frame_count = static_cast<int>(std::ceil(duration_s * fps - 1e-9));
    return run(segments_of(phones), frame_count, fps);
  }

  std::vector<FacePose> idle(int frame_count, double fps) override {
    check_fps(fps);
    return run({}, std::max(0, frame_count), fps);
  }

  void reset() override {
    random_ = Random(options_.seed, "viseme motion");
    clock_s_ = 0;
    has_last_ = false;
    fade_s_ = -1;
    run_ = -1;
    if (!model_->head_runs.empty()) pick_run(run_, position_s_);
    double rate = options_.blinks_per_minute > 0 ? options_.blinks_per_minute : model_->blinks_per_minute;
    blink_interval_s_ = 60 / std::max(rate, 0.1);
    blink_start_s_ = random_.uniform(0.2, 1.0) * blink_interval_s_;
  }

 private:
  static void check_fps(double fps) {
    if (!(fps > 0 && fps <= 1000)) throw InputError("viseme motion: fps must be in (0, 1000]");
  }

  std::vector<FacePose> run(const std::vector<Segment>& segments, int frame_count, double fps) {
    std::vector<FacePose> poses(static_cast<size_t>(frame_count));
    const float max_step = static_cast<float>(options_.max_speed_iod_per_s * 0.3 * model_->canonical_size / fps);
    size_t hint = 0;
    for (int k = 0; k < frame_count; ++k) {
      FacePose& pose = poses[static_cast<size_t>(k)];
      // Mouth and jaw: the blend of the classes' targets.
      auto w = blend_weights(segments, k / fps, options_.coarticulation_s, hint);
      Shape shape{};
      for (int v = 0; v < kVisemeCount; ++v) {
        if (w[v] == 0) continue;
        auto wv = static_cast<float>(w[v]);
        for (int i = 0; i < kShapePointCount; ++i) shape[i] += wv * model_->targets[v][i];
      }
      // No popping: no point moves faster than max_speed, also across calls.
      if (has_last_) {
        for (int i = 0; i < kShapePointCount; ++i) {
          cv::Point2f step = shape[i] - last_[i];
          auto length = static_cast<float>(cv::norm(step));
          if (length > max_step) shape[i] = last_[i] + step * (max_step / length);
        }
      }
      last_ = shape;
      has_last_ = true;
      pose.points = model_->rest;
      put_shape(pose.points, shape);
      auto blink = static_cast<float>(blink_at(clock_s_));
      for (int i = 0; i < kEyeCount; ++i) pose.points[kEyeFirst + i] += blink * model_->blink_closed[i];
      pose.head = head_now();
      advance(1 / fps);
    }
    return poses;
  }

  double blink_at(double t) {
    double duration = model_->blink_duration_s;
    while (t >= blink_start_s_ + duration) {
      blink_start_s_ += duration + blink_interval_s_ * random_.uniform(0.5, 1.5);
    }
    return blink_profile((t - blink_start_s_) / duration);
  }

  // A stretch of real head motion, chosen in proportion to length, and where to start in it.
  void pick_run(int& run, double& position_s) {
    double total = 0;
    for (const HeadRun& r : model_->head_runs) total += r.duration_s();
    double x = random_.uniform(0, total);
    run = 0;
    while (run + 1 < static_cast<int>(model_->head_runs.size()) && x > model_->head_runs[run].duration_s()) {
      x -= model_->head_runs[run++].duration_s();
    }
    double room = model_->head_runs[run].duration_s() - 2 * options_.head_crossfade_s;
    position_s = room > 0 ? random_.uniform(0, room) : 0;
  }

  HeadMotion head_now() const {
    if (run_ < 0) return {};
    HeadMotion here = model_->head_runs[run_].at(position_s_);
    if (fade_s_ < 0) return here;
    // Smoothstep from the ending stretch to the next one.
    double u = std::clamp(fade_s_ / std::max(options_.head_crossfade_s, 1e-3), 0.0, 1.0);
    auto w = static_cast<float>(u * u * (3 - 2 * u));
    return mix(here, model_->head_runs[next_run_].at(next_position_s_), w);
  }

  void advance(double dt) {
    clock_s_ += dt;
    if (run_ < 0) return;
    position_s_ += dt;
    if (fade_s_ >= 0) {
      next_position_s_ += dt;
      fade_s_ += dt;
      if (fade_s_ >= options_.head_crossfade_s) {
        run_ = next_run_, position_s_ = next_position_s_, fade_s_ = -1;
      }
    } else if (position_s_ + options_.head_crossfade_s >= model_->head_runs[run_].duration_s()) {
      pick_run(next_run_, next_position_s_);
      fade_s_ = 0;
    }
  }

  std::shared_ptr<const VisemeModel> model_;
  VisemeOptions options_;
  Random random_;
  double clock_s_ = 0;  // time since reset, over every call
  Shape last_{};        // the previous frame's mouth and jaw
  bool has_last_ = false;
  int run_ = -1;        // head stretch playing (-1: none learned, the head stays still)
  double position_s_ = 0;
  int next_run_ = -1;   // the stretch faded into while fade_s_ >= 0
  double next_position_s_ = 0;
  double fade_s_ = -1;
  double blink_interval_s_ = 4;
  double blink_start_s_ = 1;
};

}  // namespace

std::unique_ptr<Motion> make_viseme_motion(std::shared_ptr<const VisemeModel> model, const VisemeOptions& options) {
  return std::make_unique<VisemeMotion>(std::move(model), options);
}

}  // namespace dself::motion
