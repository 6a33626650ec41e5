#include "sample/detail/motion.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numbers>
#include <string>

#include "core/random.h"
#include "sample/detail/script.h"

namespace dself::sample {

namespace {

// A phone's mouth target and how strongly it holds its neighbours (dominance).
struct Viseme {
  double open;
  double spread;
  double dominance;
};

// Targets for the CMU phone set flite speaks. Vowels set the jaw; labials and rounded or
// spread consonants hold their lip shape against the vowels around them; "hh", "k", "g" take
// their neighbours' shape (low dominance).
const Viseme& viseme_of(const std::string& phone) {
  static const std::map<std::string, Viseme> table = {
      {"aa", {0.95, 0.0, 1.0}},   {"ae", {0.75, 0.35, 1.0}},  {"ah", {0.65, 0.0, 1.0}},    {"ao", {0.80, -0.45, 1.0}},
      {"aw", {0.75, -0.3, 1.0}},  {"ax", {0.45, 0.0, 1.0}},   {"axr", {0.40, -0.25, 1.0}}, {"ay", {0.80, 0.2, 1.0}},
      {"eh", {0.60, 0.3, 1.0}},   {"er", {0.40, -0.3, 1.0}},  {"ey", {0.50, 0.45, 1.0}},   {"ih", {0.40, 0.4, 1.0}},
      {"iy", {0.30, 0.65, 1.0}},  {"ow", {0.55, -0.65, 1.0}}, {"oy", {0.55, -0.55, 1.0}},  {"uh", {0.40, -0.5, 1.0}},
      {"uw", {0.30, -0.85, 1.0}}, {"p", {0.0, 0.0, 0.8}},     {"b", {0.0, 0.0, 0.8}},      {"m", {0.0, 0.0, 0.8}},
      {"f", {0.15, 0.0, 0.8}},    {"v", {0.15, 0.0, 0.8}},    {"th", {0.25, 0.05, 0.6}},   {"dh", {0.25, 0.05, 0.6}},
      {"t", {0.25, 0.1, 0.45}},   {"d", {0.25, 0.1, 0.45}},   {"n", {0.25, 0.1, 0.45}},    {"l", {0.30, 0.05, 0.4}},
      {"s", {0.12, 0.35, 0.7}},   {"z", {0.12, 0.35, 0.7}},   {"sh", {0.20, -0.45, 0.7}},  {"zh", {0.20, -0.45, 0.7}},
      {"ch", {0.20, -0.45, 0.7}}, {"jh", {0.20, -0.45, 0.7}}, {"k", {0.30, 0.0, 0.35}},    {"g", {0.30, 0.0, 0.35}},
      {"ng", {0.30, 0.0, 0.35}},  {"hh", {0.45, 0.0, 0.2}},   {"r", {0.25, -0.45, 0.6}},   {"w", {0.12, -0.9, 0.9}},
      {"y", {0.25, 0.45, 0.6}},   {"pau", {0.0, 0.0, 0.5}},
  };
  static const Viseme neutral{0.4, 0.0, 0.4};
  auto found = table.find(phone);
  return found == table.end() ? neutral : found->second;
}

bool is_bilabial(const std::string& phone) { return phone == "p" || phone == "b" || phone == "m"; }
bool is_labiodental(const std::string& phone) { return phone == "f" || phone == "v"; }

constexpr double kCoarticulationS = 0.07;  // time constant of a phone's dominance outside it
constexpr double kInfluenceS = 0.5;        // phones further away than this are ignored
constexpr double kLipRampS = 0.05;         // lips close (or tuck) this long before a labial

// ref: Cohen & Massaro, "Modeling coarticulation in synthetic visual speech" (1993):
// D(t) = a * exp(-theta * |tau|), here with tau the distance to the phone (0 inside it).
double dominance(const Phone& phone, double t, double strength) {
  double distance = std::max({0.0, phone.start_s - t, t - phone.end_s});
  return strength * std::exp(-distance / kCoarticulationS);
}

// 1 inside the phone, falling to 0 over kLipRampS on either side (raised cosine).
double hold(const Phone& phone, double t) {
  double distance = std::max({0.0, phone.start_s - t, t - phone.end_s});
  if (distance >= kLipRampS) return 0;
  return 0.5 * (1 + std::cos(std::numbers::pi * distance / kLipRampS));
}

cv::Point2f unit(cv::Point2f v) {
  float n = std::hypot(v.x, v.y);
  return n > 0 ? v * (1.0f / n) : cv::Point2f(1, 0);
}

// Sum of sinusoids: smooth, seeded, and bounded by the sum of the amplitudes.
double sum_waves(const auto& waves, double t) {
  double value = 0;
  for (const auto& w : waves) value += w.amplitude * std::sin(2 * std::numbers::pi * w.frequency_hz * t + w.phase);
  return value;
}

}  // namespace

Landmarks articulate(const Landmarks& rest, double iod, const Articulation& a) {
  Landmarks p = rest;
  cv::Point2f ex = unit(face::centroid(rest, 42, 48) - face::centroid(rest, 36, 42));  // along the eyes
  cv::Point2f ey(-ex.y, ex.x);                                                         // down the face
  auto move = [&](int i, double along_x, double along_y) {
    p[i] += ex * static_cast<float>(along_x * iod) + ey * static_cast<float>(along_y * iod);
  };

  // Jaw and lips. The gap between the inner lips opens to 0.3 IOD for a wide "aa"; the lower
  // lip carries 80% of it and the chin a little more (the jaw rotates).
  double gap = 0.30 * a.open;
  double lower = 0.8 * gap;
  double upper = 0.2 * gap + 0.04 * a.tuck;  // "f": the upper lip lifts off the teeth
  const int jaw[] = {4, 5, 6, 7, 8, 9, 10, 11, 12};
  const double jaw_weight[] = {0.15, 0.4, 0.7, 0.92, 1.0, 0.92, 0.7, 0.4, 0.15};
  for (int k = 0; k < 9; ++k) move(jaw[k], 0, 1.1 * lower * jaw_weight[k]);
  const int lower_lip[] = {55, 56, 57, 58, 59, 65, 66, 67};
  const double lower_weight[] = {0.55, 0.9, 1.0, 0.9, 0.55, 0.9, 1.0, 0.9};
  for (int k = 0; k < 8; ++k) move(lower_lip[k], 0, lower * lower_weight[k]);
  const int upper_lip[] = {49, 50, 51, 52, 53, 61, 62, 63};
  const double upper_weight[] = {0.6, 0.95, 1.0, 0.95, 0.6, 0.95, 1.0, 0.95};
  for (int k = 0; k < 8; ++k) move(upper_lip[k], 0, -upper * upper_weight[k]);
  for (int corner : {48, 54, 60, 64}) move(corner, 0, 0.45 * lower);
  // "f": the lower lip rolls up and in under the upper teeth, so it looks thinner.
  for (int i : {56, 57, 58}) move(i, 0, -0.03 * a.tuck);

  // Spread pulls the corners out; rounding pulls them in and pushes the lips out (fuller).
  double corner_x = a.spread >= 0 ? 0.07 * a.spread : 0.10 * a.spread;
  for (int i : {48, 60}) move(i, -corner_x, 0);
  for (int i : {54, 64}) move(i, corner_x, 0);
  for (int i : {49, 59, 61, 67}) move(i, -0.5 * corner_x, 0);
  for (int i : {53, 55, 63, 65}) move(i, 0.5 * corner_x, 0);
  double fuller = 0.03 * std::max(0.0, -a.spread);
  for (int i : {50, 51, 52}) move(i, 0, -fuller);
  for (int i : {56, 57, 58}) move(i, 0, fuller);

  // Blink: each upper lid point goes 80% of the way down to its lower partner, which rises 10%.
  const int lid_pairs[4][2] = {{37, 41}, {38, 40}, {43, 47}, {44, 46}};
  auto b = static_cast<float>(a.blink);
  for (const auto& pair : lid_pairs) {
    cv::Point2f top = rest[pair[0]];
    cv::Point2f bottom = rest[pair[1]];
    p[pair[0]] += (bottom - top) * (0.8f * b);
    p[pair[1]] += (top - bottom) * (0.1f * b);
  }
  return p;
}

Motion::Motion(const Portrait& portrait, const std::vector<Phone>& phones, double duration_s, uint64_t seed,
               int video_index)
    : portrait_(portrait), phones_(phones) {
  auto index = static_cast<uint64_t>(video_index);
  // Blinks every 2-6 s, lasting 150-250 ms.
  Random blink_random(seed, "blinks", index);
  for (double t = blink_random.uniform(0.4, 2.5); t < duration_s;) {
    double length = blink_random.uniform(0.15, 0.25);
    if (t + length < duration_s) blinks_.push_back(Blink{t, t + length});
    t += length + blink_random.uniform(2.0, 6.0);
  }
  // Head: three slow sinusoids per degree of freedom (0.05-0.35 Hz).
  Random head_random(seed, "head", index);
  auto make_waves = [&](double total_amplitude) {
    std::vector<Wave> waves(3);
    double sum = 0;
    for (Wave& w : waves) {
      w = Wave{head_random.uniform(0.05, 0.35), head_random.uniform(0, 2 * std::numbers::pi),
               head_random.uniform(0.5, 1.0)};
      sum += w.amplitude;
    }
    for (Wave& w : waves) w.amplitude *= total_amplitude / sum;
    return waves;
  };
  double pixels = portrait.size / 512.0;
  roll_deg_ = make_waves(2.0);
  shift_x_px_ = make_waves(4.0 * pixels);
  shift_y_px_ = make_waves(3.0 * pixels);
  scale_ = make_waves(0.008);
}

Articulation Motion::speech_at(double t) const {
  auto first = std::lower_bound(phones_.begin(), phones_.end(), t - kInfluenceS,
                                [](const Phone& p, double time) { return p.end_s < time; });
  double weight = 0, open = 0, spread = 0, closed = 0, tuck = 0;
  for (auto it = first; it != phones_.end() && it->start_s <= t + kInfluenceS; ++it) {
    const Viseme& v = viseme_of(it->phone);
    double d = dominance(*it, t, v.dominance);
    weight += d;
    open += d * v.open;
    spread += d * v.spread;
    if (is_bilabial(it->phone)) closed = std::max(closed, hold(*it, t));
    if (is_labiodental(it->phone)) tuck = std::max(tuck, hold(*it, t));
  }
  Articulation a;
  if (weight <= 0) return a;
  // Labials are made with the lips whatever the vowels around them want: a "p" shuts them.
  a.open = open / weight * (1 - closed) * (1 - 0.6 * tuck);
  a.spread = spread / weight;
  a.tuck = tuck;
  return a;
}

double Motion::blink_at(double t) const {
  for (const Blink& blink : blinks_) {
    if (t <= blink.start_s || t >= blink.end_s) continue;
    // Lids close in the first 40% and open, more slowly, in the rest.
    double u = (t - blink.start_s) / (blink.end_s - blink.start_s);
    double half_pi = 0.5 * std::numbers::pi;
    return u < 0.4 ? std::pow(std::sin(half_pi * u / 0.4), 2) : std::pow(std::cos(half_pi * (u - 0.4) / 0.6), 2);
  }
  return 0;
}

cv::Matx23f head_transform(const Portrait& portrait, double roll_deg, double scale, cv::Point2f shift_px) {
  double angle = roll_deg * std::numbers::pi / 180;
  cv::Point2f pivot = face::centroid(portrait.rest, 0, face::kLandmarkCount);
  double c = scale * std::cos(angle);
  double s = scale * std::sin(angle);
  double tx = pivot.x - (c * pivot.x - s * pivot.y) + shift_px.x - portrait.margin;
  double ty = pivot.y - (s * pivot.x + c * pivot.y) + shift_px.y - portrait.margin;
  return cv::Matx23f(static_cast<float>(c), static_cast<float>(-s), static_cast<float>(tx), static_cast<float>(s),
                     static_cast<float>(c), static_cast<float>(ty));
}

Landmarks transform(const cv::Matx23f& m, const Landmarks& points) {
  Landmarks out;
  for (int i = 0; i < face::kLandmarkCount; ++i) {
    const cv::Point2f& q = points[i];
    out[i] = cv::Point2f(m(0, 0) * q.x + m(0, 1) * q.y + m(0, 2), m(1, 0) * q.x + m(1, 1) * q.y + m(1, 2));
  }
  return out;
}

cv::Matx23f Motion::head_at(double t) const {
  cv::Point2f shift(static_cast<float>(sum_waves(shift_x_px_, t)), static_cast<float>(sum_waves(shift_y_px_, t)));
  return head_transform(portrait_, sum_waves(roll_deg_, t), 1 + sum_waves(scale_, t), shift);
}

Pose Motion::at_frame(int64_t frame) const {
  double t = static_cast<double>(frame) / kFps;
  Pose pose;
  pose.articulation = speech_at(t);
  pose.articulation.blink = blink_at(t);
  pose.face = articulate(portrait_.rest, portrait_.inter_ocular_px, pose.articulation);
  pose.head = head_at(t);
  pose.landmarks = transform(pose.head, pose.face);
  return pose;
}

}  // namespace dself::sample
