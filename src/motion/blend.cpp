// The viseme classes and their coarticulation: shared by learning (targets are fitted to this
// blend) and synthesis (which plays it back).
#include <algorithm>
#include <cmath>
#include <map>
#include <numbers>
#include <string>

#include "core/error.h"
#include "motion/detail/model.h"

namespace dself::motion {
namespace {

constexpr double kInfluenceS = 0.5;   // segments further away than this do not count
constexpr double kLipRampS = 0.05;    // bilabials shut the lips over this long before and after
constexpr double kFarAwayS = 1e6;     // how far the silence before the first phone reaches

// Dominance: vowels set the jaw and hold strongly; lip consonants (p b m, f v, w) and the
// sibilants hold their shape against the vowels around them; k, g, ng, hh take their
// neighbours' (low dominance).
const std::array<VisemeInfo, kVisemeCount> kInfo = {{
    {"sil", 0.5},
    {"pbm", 0.8},
    {"fv", 0.8},
    {"th", 0.6},
    {"tdnl", 0.45},
    {"kg", 0.3},
    {"sz", 0.7},
    {"sh", 0.7},
    {"r", 0.6},
    {"wuw", 0.9},
    {"iy", 1.0},
    {"eh", 1.0},
    {"aa", 1.0},
    {"ao", 1.0},
}};

}  // namespace

const VisemeInfo& viseme_info(int viseme) { return kInfo.at(static_cast<size_t>(viseme)); }

int viseme_of(std::string_view phone) {
  static const std::map<std::string, int, std::less<>> table = {
      {"sil", kSil}, {"pau", kSil}, {"sp", kSil}, {"", kSil},   {"p", kPbm},   {"b", kPbm},   {"m", kPbm},
      {"f", kFv},    {"v", kFv},    {"th", kTh},  {"dh", kTh},  {"t", kTdnl},  {"d", kTdnl},  {"n", kTdnl},
      {"l", kTdnl},  {"k", kKg},    {"g", kKg},   {"ng", kKg},  {"hh", kKg},   {"s", kSz},    {"z", kSz},
      {"sh", kSh},   {"zh", kSh},   {"ch", kSh},  {"jh", kSh},  {"r", kR},     {"er", kR},    {"axr", kR},
      {"w", kWuw},   {"uw", kWuw},  {"uh", kWuw}, {"iy", kIy},  {"ih", kIy},   {"y", kIy},    {"eh", kEh},
      {"ey", kEh},   {"ae", kEh},   {"aa", kAa},  {"ah", kAa},  {"ay", kAa},   {"ax", kAa},   {"ao", kAo},
      {"ow", kAo},   {"oy", kAo},   {"aw", kAo},
  };
  while (!phone.empty() && phone.back() >= '0' && phone.back() <= '9') phone.remove_suffix(1);  // stress
  auto found = table.find(phone);
  return found == table.end() ? kTdnl : found->second;
}

std::string viseme_class(std::string_view phone) { return viseme_info(viseme_of(phone)).name; }

std::vector<Segment> segments_of(const std::vector<speech::TimedPhone>& phones) {
  std::vector<speech::TimedPhone> sorted = phones;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const speech::TimedPhone& a, const speech::TimedPhone& b) { return a.start_s < b.start_s; });
  std::vector<Segment> segments;
  double previous_end = -kFarAwayS;
  for (const auto& p : sorted) {
    if (!(p.end_s > p.start_s)) continue;
    double start = std::max(p.start_s, previous_end);
    if (start >= p.end_s) continue;  // overlapped by the phone before
    if (start > previous_end) segments.push_back({kSil, previous_end, start});
    segments.push_back({viseme_of(p.phone), start, p.end_s});
    previous_end = p.end_s;
  }
  segments.push_back({kSil, previous_end, previous_end + 2 * kFarAwayS});
  // Neighbouring silences merge, so a pause is one segment however it was cut.
  std::vector<Segment> merged;
  for (const Segment& s : segments) {
    if (!merged.empty() && merged.back().viseme == kSil && s.viseme == kSil) {
      merged.back().end_s = s.end_s;
    } else {
      merged.push_back(s);
    }
  }
  return merged;
}

// ref: Cohen & Massaro, "Modeling coarticulation in synthetic visual speech" (1993): each
// segment's dominance D(t) = a * exp(-|tau| / c) (tau: distance to the segment, 0 inside it),
// the shape being the dominance-weighted mean of the targets.
std::array<double, kVisemeCount> blend_weights(const std::vector<Segment>& segments, double t, double coarticulation_s,
                                               size_t& first) {
  std::array<double, kVisemeCount> w{};
  if (segments.empty()) {
    w[kSil] = 1;
    return w;
  }
  if (first >= segments.size()) first = segments.size() - 1;
  while (first > 0 && segments[first - 1].end_s >= t - kInfluenceS) --first;
  while (first + 1 < segments.size() && segments[first].end_s < t - kInfluenceS) ++first;
  double total = 0;
  double closure = 0;
  for (size_t i = first; i < segments.size() && segments[i].start_s <= t + kInfluenceS; ++i) {
    const Segment& s = segments[i];
    double distance = std::max({0.0, s.start_s - t, t - s.end_s});
    double d = viseme_info(s.viseme).dominance * std::exp(-distance / coarticulation_s);
    w[static_cast<size_t>(s.viseme)] += d;
    total += d;
    // A p, b or m shuts the lips whatever the vowels around it want (raised-cosine ramp).
    if (s.viseme == kPbm && distance < kLipRampS) {
      closure = std::max(closure, 0.5 * (1 + std::cos(std::numbers::pi * distance / kLipRampS)));
    }
  }
  if (total <= 0) {
    w = {};
    w[kSil] = 1;
    return w;
  }
  for (double& x : w) x *= (1 - closure) / total;
  w[kPbm] += closure;
  return w;
}

HeadMotion HeadRun::at(double t) const {
  if (frames.empty()) return {};
  double x = std::clamp(t * fps, 0.0, static_cast<double>(frames.size() - 1));
  auto i = static_cast<size_t>(x);
  size_t j = std::min(i + 1, frames.size() - 1);
  auto u = static_cast<float>(x - static_cast<double>(i));
  const HeadMotion& a = frames[i];
  const HeadMotion& b = frames[j];
  return {a.roll_deg + u * (b.roll_deg - a.roll_deg), a.scale + u * (b.scale - a.scale),
          a.shift_x + u * (b.shift_x - a.shift_x), a.shift_y + u * (b.shift_y - a.shift_y)};
}

Shape shape_of(const Landmarks& points) {
  Shape s;
  for (int k = 0; k < kShapePointCount; ++k) s[k] = points[kShapePoints[k]];
  return s;
}

void put_shape(Landmarks& points, const Shape& shape) {
  for (int k = 0; k < kShapePointCount; ++k) points[kShapePoints[k]] = shape[k];
}

Landmarks to_canonical(const face::TrackedFrame& frame) {
  const face::Similarity& s = frame.to_canonical;
  Landmarks out;
  for (int i = 0; i < face::kLandmarkCount; ++i) {
    const cv::Point2f& p = frame.points[i];
    out[i] = {s.a * p.x - s.b * p.y + s.tx, s.b * p.x + s.a * p.y + s.ty};
  }
  return out;
}

Landmarks with_head_motion(const FacePose& pose, int canonical_size) {
  const cv::Point2f pivot(0.5f * canonical_size, 0.57f * canonical_size);  // the canonical nose tip
  double angle = pose.head.roll_deg * std::numbers::pi / 180;
  auto c = static_cast<float>(pose.head.scale * std::cos(angle));
  auto s = static_cast<float>(pose.head.scale * std::sin(angle));
  Landmarks out;
  for (int i = 0; i < face::kLandmarkCount; ++i) {
    cv::Point2f d = pose.points[i] - pivot;
    out[i] = {pivot.x + c * d.x - s * d.y + pose.head.shift_x, pivot.y + s * d.x + c * d.y + pose.head.shift_y};
  }
  return out;
}

const Landmarks& rest_face(const VisemeModel& model) { return model.rest; }

Landmarks viseme_face(const VisemeModel& model, std::string_view viseme) {
  for (int v = 0; v < kVisemeCount; ++v) {
    if (viseme == viseme_info(v).name) {
      Landmarks face = model.rest;
      put_shape(face, model.targets[static_cast<size_t>(v)]);
      return face;
    }
  }
  throw InputError("unknown viseme class \"" + std::string(viseme) +
                   "\": one of sil, pbm, fv, th, tdnl, kg, sz, sh, r, wuw, iy, eh, aa, ao");
}

}  // namespace dself::motion
