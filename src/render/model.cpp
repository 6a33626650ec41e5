// Building, saving and loading the photoreal model: the reference frame, the output crop around
// its head, and libraries of real mouth and eye crops (docs/FORMATS.md, models/render/).
#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <spdlog/spdlog.h>

#include "core/catalog.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/workspace.h"
#include "media/media.h"
#include "render/detail/model.h"
#include "render/detail/warp.h"

namespace dself::render {

// ---------------------------------------------------------------------------------------------
// Geometry helpers

cv::Matx23d to_matrix(const face::Similarity& s) { return {s.a, -s.b, s.tx, s.b, s.a, s.ty}; }

cv::Matx23d invert(const cv::Matx23d& m) {
  cv::Matx23d out;
  cv::invertAffineTransform(m, out);
  return out;
}

cv::Matx23d compose(const cv::Matx23d& a, const cv::Matx23d& b) {
  cv::Matx33d a3(a(0, 0), a(0, 1), a(0, 2), a(1, 0), a(1, 1), a(1, 2), 0, 0, 1);
  cv::Matx33d b3(b(0, 0), b(0, 1), b(0, 2), b(1, 0), b(1, 1), b(1, 2), 0, 0, 1);
  cv::Matx33d c = a3 * b3;
  return {c(0, 0), c(0, 1), c(0, 2), c(1, 0), c(1, 1), c(1, 2)};
}

cv::Point2f apply(const cv::Matx23d& m, cv::Point2f p) {
  return {static_cast<float>(m(0, 0) * p.x + m(0, 1) * p.y + m(0, 2)),
          static_cast<float>(m(1, 0) * p.x + m(1, 1) * p.y + m(1, 2))};
}

namespace {

double iod(const Landmarks& p) { return std::max(1e-3, face::inter_ocular_distance(p)); }

}  // namespace

float mouth_opening(const Landmarks& p) {
  double inner = (cv::norm(p[61] - p[67]) + cv::norm(p[62] - p[66]) + cv::norm(p[63] - p[65])) / 3;
  return static_cast<float>(inner / iod(p));
}

float mouth_width(const Landmarks& p) { return static_cast<float>(cv::norm(p[48] - p[54]) / iod(p)); }

float eye_opening(const Landmarks& p) {
  double left = (cv::norm(p[37] - p[41]) + cv::norm(p[38] - p[40])) / 2;
  double right = (cv::norm(p[43] - p[47]) + cv::norm(p[44] - p[46])) / 2;
  return static_cast<float>((left + right) / 2 / iod(p));
}

cv::Matx23d canonical_to_output(const PhotorealModel& model) {
  cv::Matx23d crop(model.scale, 0, -model.origin.x * model.scale, 0, model.scale, -model.origin.y * model.scale);
  return compose(crop, invert(to_matrix(model.reference_to_canonical)));
}

namespace {

// Warps a whole source frame with `m` (source pixels -> destination pixels) into `size`; a strong
// reduction goes through an area resize first so that fine detail does not alias.
cv::Mat warp_frame(const cv::Mat& frame, const cv::Matx23d& m, cv::Size size) {
  double scale = std::sqrt(std::abs(m(0, 0) * m(1, 1) - m(0, 1) * m(1, 0)));
  cv::Mat out;
  if (scale < 0.8) {
    cv::Mat small;
    cv::resize(frame, small, cv::Size(), scale, scale, cv::INTER_AREA);
    cv::Matx23d unscale(1 / scale, 0, 0, 0, 1 / scale, 0);
    cv::warpAffine(small, out, compose(m, unscale), size, cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  } else {
    cv::warpAffine(frame, out, m, size, cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  }
  return out;
}

}  // namespace

cv::Mat crop_to_output(const PhotorealModel& model, const cv::Mat& frame) {
  cv::Matx23d crop(model.scale, 0, -model.origin.x * model.scale, 0, model.scale, -model.origin.y * model.scale);
  return warp_frame(frame, crop, cv::Size(model.options.size, model.options.size));
}

namespace {

// ---------------------------------------------------------------------------------------------
// The avatar's prepared sources

struct SourceInput {
  int64_t id = 0;
  std::filesystem::path video;
  std::filesystem::path landmarks;
  std::string video_hash;
};

std::vector<SourceInput> prepared_sources(const std::filesystem::path& avatar) {
  workspace::require_avatar(avatar);
  Catalog catalog(avatar);
  std::vector<SourceInput> sources;
  for (const Source& source : catalog.sources()) {
    SourceInput input{source.id, {}, workspace::landmarks_path(avatar, source.id), {}};
    for (const MediaFile& file : catalog.media(source.id)) {
      if (file.role == "video") input.video = avatar / file.path, input.video_hash = file.content_hash;
    }
    bool tracked = std::filesystem::exists(input.landmarks) &&
                   std::filesystem::exists(workspace::face_summary_path(avatar, source.id));
    if (tracked && !input.video.empty() && std::filesystem::exists(input.video)) sources.push_back(input);
  }
  if (sources.empty()) {
    throw InputError(fmt::format(
        "avatar {} has no face track (faces/<id>/landmarks.bin with its video): run `dself prepare` (its face "
        "step) first",
        avatar.string()));
  }
  return sources;
}

nlohmann::json options_json(const PhotorealOptions& options) {
  nlohmann::json exclude = nlohmann::json::array();
  for (const auto& [source, range] : options.exclude) exclude.push_back({source, range.first, range.second});
  return {{"size", options.size}, {"max_crops", options.max_crops}, {"exclude", exclude}};
}

std::string input_hash(const std::vector<SourceInput>& sources, const PhotorealOptions& options) {
  std::string text = std::string(kModelVersion) + "\n" + options_json(options).dump() + "\n";
  for (const SourceInput& s : sources) {
    text += fmt::format("{} {} {}\n", s.id, s.video_hash, hash_file(s.landmarks));
  }
  return hash_bytes(text);
}

// ---------------------------------------------------------------------------------------------
// Choosing frames

struct Candidate {
  int source = 0;  // index into the sources
  int64_t frame = 0;
  double time_s = 0;
  Landmarks canonical{};
  float opening = 0;
  float width = 0;
  float eyes = 0;
  float sharpness = 0;
  face::HeadPose pose;
  face::Similarity to_canonical;
};

bool excluded(const PhotorealOptions& options, int64_t source_id, double time_s) {
  for (const auto& [id, range] : options.exclude) {
    if (id == source_id && time_s >= range.first && time_s < range.second) return true;
  }
  return false;
}

Landmarks canonical_points(const face::TrackedFrame& f) {
  Landmarks out;
  for (int i = 0; i < face::kLandmarkCount; ++i) out[i] = apply(to_matrix(f.to_canonical), f.points[i]);
  return out;
}

double median(std::vector<float> values) {
  if (values.empty()) return 0;
  auto mid = values.begin() + static_cast<long>(values.size() / 2);
  std::nth_element(values.begin(), mid, values.end());
  return *mid;
}

double quantile(std::vector<float> values, double q) {
  if (values.empty()) return 0;
  auto at = values.begin() + static_cast<long>(q * static_cast<double>(values.size() - 1));
  std::nth_element(values.begin(), at, values.end());
  return *at;
}

// Frontal, sharp, eyes open, mouth closed and neutral: the face everything else is drawn on.
size_t choose_reference(const std::vector<Candidate>& all) {
  std::vector<float> openings, widths, eyes, sharpness;
  for (const Candidate& c : all) {
    openings.push_back(c.opening), widths.push_back(c.width), eyes.push_back(c.eyes), sharpness.push_back(c.sharpness);
  }
  double closed = quantile(openings, 0.2), width = median(widths), open_eyes = median(eyes);
  double sharp = std::max(1.0, median(sharpness));
  size_t best = 0;
  double best_cost = 1e18;
  for (size_t i = 0; i < all.size(); ++i) {
    const Candidate& c = all[i];
    double cost = (std::abs(c.pose.yaw_deg) + std::abs(c.pose.pitch_deg)) / 10 + std::abs(c.pose.roll_deg) / 5 +
                  std::abs(c.width - width) / 0.05 + std::max(0.0, c.opening - closed) / 0.01 +
                  std::max(0.0, open_eyes - c.eyes) / (0.1 * open_eyes + 1e-6) - 0.5 * std::min(2.0, c.sharpness / sharp);
    if (cost < best_cost) best_cost = cost, best = i;
  }
  return best;
}

std::array<float, 40> mouth_descriptor(const Landmarks& p) {
  cv::Point2f centre = face::centroid(p, 48, 68);
  std::array<float, 40> d{};
  for (int i = 0; i < 20; ++i) {
    float weight = i >= 12 ? 1.5f : 1.0f;  // inner lips: they decide what shows of teeth and tongue
    d[2 * i] = weight * (p[48 + i].x - centre.x), d[2 * i + 1] = weight * (p[48 + i].y - centre.y);
  }
  return d;
}

// Two mouths this close (canonical pixels, RMS over the 20 lip points: 1% of the IOD) look the same.
constexpr float kSameShape_px = 0.75f;

// Mouth crops covering the person's shapes: the sharpest of each (opening x width) bin first,
// then the shapes farthest from all chosen so far.
std::vector<size_t> choose_mouths(const std::vector<Candidate>& all, const std::vector<size_t>& usable, int max_crops) {
  std::vector<size_t> pool;
  size_t stride = std::max<size_t>(1, usable.size() / 30000);  // farthest-point cost stays bounded
  for (size_t k = 0; k < usable.size(); k += stride) pool.push_back(usable[k]);
  if (pool.empty() || max_crops <= 0) return {};
  float open_lo = 1e9f, open_hi = -1e9f, width_lo = 1e9f, width_hi = -1e9f;
  for (size_t i : pool) {
    open_lo = std::min(open_lo, all[i].opening), open_hi = std::max(open_hi, all[i].opening);
    width_lo = std::min(width_lo, all[i].width), width_hi = std::max(width_hi, all[i].width);
  }
  constexpr int kOpenBins = 10, kWidthBins = 5;
  std::map<int, size_t> bins;
  for (size_t i : pool) {
    int ob = std::min(kOpenBins - 1, static_cast<int>(kOpenBins * (all[i].opening - open_lo) / (open_hi - open_lo + 1e-6f)));
    int wb = std::min(kWidthBins - 1, static_cast<int>(kWidthBins * (all[i].width - width_lo) / (width_hi - width_lo + 1e-6f)));
    auto [it, fresh] = bins.emplace(ob * kWidthBins + wb, i);
    if (!fresh && all[i].sharpness > all[it->second].sharpness) it->second = i;
  }
  std::vector<size_t> chosen;
  for (const auto& [bin, i] : bins) chosen.push_back(i);
  if (static_cast<int>(chosen.size()) > max_crops) chosen.resize(static_cast<size_t>(max_crops));

  std::vector<std::array<float, 40>> descriptors(pool.size());
  for (size_t k = 0; k < pool.size(); ++k) descriptors[k] = mouth_descriptor(all[pool[k]].canonical);
  std::vector<float> nearest(pool.size(), 1e30f);
  auto update = [&](const std::array<float, 40>& d) {
    for (size_t k = 0; k < pool.size(); ++k) {
      float sum = 0;
      for (int j = 0; j < 40; ++j) sum += (descriptors[k][j] - d[j]) * (descriptors[k][j] - d[j]);
      nearest[k] = std::min(nearest[k], sum);
    }
  };
  for (size_t i : chosen) update(mouth_descriptor(all[i].canonical));
  while (static_cast<int>(chosen.size()) < max_crops) {
    size_t far = static_cast<size_t>(std::max_element(nearest.begin(), nearest.end()) - nearest.begin());
    // Stop when every shape left is within kSameShape_px (RMS over the lips) of a kept one.
    if (nearest[far] < 20 * kSameShape_px * kSameShape_px) break;
    chosen.push_back(pool[far]);
    update(descriptors[far]);
  }
  return chosen;
}

// Eye crops from open to closed: the sharpest, most frontal frame of each eye-opening bin.
std::vector<size_t> choose_eyes(const std::vector<Candidate>& all, const std::vector<size_t>& usable) {
  float lo = 1e9f, hi = -1e9f;
  for (size_t i : usable) lo = std::min(lo, all[i].eyes), hi = std::max(hi, all[i].eyes);
  constexpr int kBins = 10;
  std::map<int, size_t> bins;
  auto quality = [&](size_t i) {
    return all[i].sharpness / 100.0 - (std::abs(all[i].pose.yaw_deg) + std::abs(all[i].pose.pitch_deg)) / 5.0;
  };
  for (size_t i : usable) {
    int b = std::min(kBins - 1, static_cast<int>(kBins * (all[i].eyes - lo) / (hi - lo + 1e-6f)));
    auto [it, fresh] = bins.emplace(b, i);
    if (!fresh && quality(i) > quality(it->second)) it->second = i;
  }
  std::vector<size_t> chosen;
  for (const auto& [bin, i] : bins) chosen.push_back(i);
  return chosen;
}

// ---------------------------------------------------------------------------------------------
// Regions, masks and colour

std::vector<cv::Point2f> mouth_polygon(const Landmarks& p) {
  std::vector<cv::Point2f> polygon;
  for (int i = 3; i <= 13; ++i) polygon.push_back(p[i]);
  // Along the top, a third of the way from the nose's base to the upper lip: the nostrils stay.
  const int pairs[5][2] = {{35, 54}, {34, 53}, {33, 51}, {32, 49}, {31, 48}};
  for (const auto& pair : pairs) polygon.push_back(p[pair[0]] + 0.35f * (p[pair[1]] - p[pair[0]]));
  return polygon;
}

std::vector<cv::Point2f> eye_polygon(const Landmarks& p, int first, float iod_px) {
  cv::Point2f centre = face::centroid(p, first, first + 6);
  float half_width = 0.8f * static_cast<float>(cv::norm(p[first] - p[first + 3]));
  float half_height = 0.27f * iod_px;
  std::vector<cv::Point2f> polygon;
  for (int k = 0; k < 24; ++k) {
    double angle = 2 * CV_PI * k / 24;
    polygon.emplace_back(centre.x + half_width * static_cast<float>(std::cos(angle)),
                         centre.y + half_height * static_cast<float>(std::sin(angle)));
  }
  return polygon;
}

std::vector<cv::Point2f> shifted(std::vector<cv::Point2f> points, cv::Point2f by) {
  for (cv::Point2f& p : points) p -= by;
  return points;
}

// The part's blending mask for a crop (in the crop's pixels).
cv::Mat part_alpha(bool mouth, const Landmarks& p, cv::Rect rect, float iod_px) {
  cv::Point2f corner(static_cast<float>(rect.x), static_cast<float>(rect.y));
  double feather = 0.14 * iod_px;
  if (mouth) return feathered_mask(rect.size(), shifted(mouth_polygon(p), corner), feather);
  cv::Mat left = feathered_mask(rect.size(), shifted(eye_polygon(p, 36, iod_px), corner), feather);
  cv::Mat right = feathered_mask(rect.size(), shifted(eye_polygon(p, 42, iod_px), corner), feather);
  return cv::max(left, right);
}

// Skin around the part (its blending region without the lips or the eyes): where colours are
// compared between a crop and the reference.
cv::Mat skin_mask(bool mouth, const Landmarks& p, cv::Size size, cv::Point2f corner, float iod_px) {
  cv::Mat mask = cv::Mat::zeros(size, CV_8U);
  auto fill = [&](const std::vector<cv::Point2f>& polygon, int value) {
    std::vector<cv::Point> v;
    for (const cv::Point2f& q : polygon) v.emplace_back(cvRound(q.x - corner.x), cvRound(q.y - corner.y));
    cv::fillPoly(mask, std::vector<std::vector<cv::Point>>{v}, cv::Scalar(value));
  };
  int margin = std::max(1, static_cast<int>(0.08 * iod_px));
  cv::Mat feature = cv::Mat::zeros(size, CV_8U);
  auto fill_feature = [&](int first, int end) {
    std::vector<cv::Point> v;
    for (int i = first; i < end; ++i) v.emplace_back(cvRound(p[i].x - corner.x), cvRound(p[i].y - corner.y));
    std::vector<cv::Point> hull;
    cv::convexHull(v, hull);
    cv::fillConvexPoly(feature, hull, cv::Scalar(255));
  };
  if (mouth) {
    fill(mouth_polygon(p), 255);
    fill_feature(48, 60);
  } else {
    fill(eye_polygon(p, 36, iod_px), 255), fill(eye_polygon(p, 42, iod_px), 255);
    fill_feature(36, 42), fill_feature(42, 48), fill_feature(17, 27);
  }
  cv::dilate(feature, feature, cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(2 * margin + 1, 2 * margin + 1)));
  mask.setTo(0, feature);
  return mask;
}

// Scales the crop's colour channels so that its skin matches the reference's around the same part.
void match_colour(bool mouth, Crop& crop, cv::Rect rect, const PhotorealModel& model) {
  cv::Point2f corner(static_cast<float>(rect.x), static_cast<float>(rect.y));
  cv::Mat crop_skin = skin_mask(mouth, crop.points, rect.size(), corner, model.iod_px);
  cv::Mat ref_skin = skin_mask(mouth, model.reference_points, rect.size(), corner, model.iod_px);
  if (cv::countNonZero(crop_skin) < 50 || cv::countNonZero(ref_skin) < 50) return;
  cv::Scalar crop_mean = cv::mean(crop.image, crop_skin);
  cv::Scalar ref_mean = cv::mean(model.reference(rect), ref_skin);
  cv::Scalar gain;
  for (int c = 0; c < 3; ++c) gain[c] = std::clamp(ref_mean[c] / std::max(1.0, crop_mean[c]), 0.7, 1.4);
  cv::multiply(crop.image, gain, crop.image);
}

cv::Rect clip(cv::Rect r, int size) { return r & cv::Rect(0, 0, size, size); }

cv::Rect mouth_rect(const Landmarks& p, float iod_px, int size) {
  float x0 = std::min(p[2].x, p[3].x) - 0.15f * iod_px, x1 = std::max(p[14].x, p[13].x) + 0.15f * iod_px;
  float y0 = p[29].y, y1 = p[8].y + 0.45f * iod_px;
  return clip(cv::Rect(cv::Point(cvFloor(x0), cvFloor(y0)), cv::Point(cvCeil(x1), cvCeil(y1))), size);
}

cv::Rect eye_rect(const Landmarks& p, float iod_px, int size) {
  float y0 = 1e9f, y1 = -1e9f;
  for (int i = 17; i < 27; ++i) y0 = std::min(y0, p[i].y);
  for (int i = 36; i < 48; ++i) y1 = std::max(y1, p[i].y);
  float x0 = std::min(p[0].x, p[17].x) - 0.1f * iod_px, x1 = std::max(p[16].x, p[26].x) + 0.1f * iod_px;
  return clip(cv::Rect(cv::Point(cvFloor(x0), cvFloor(y0 - 0.2f * iod_px)), cv::Point(cvCeil(x1), cvCeil(y1 + 0.45f * iod_px))),
              size);
}

// ---------------------------------------------------------------------------------------------
// Files: models/render/

std::filesystem::path model_dir(const std::filesystem::path& avatar) { return workspace::model_dir(avatar, "render"); }

nlohmann::json points_json(const Landmarks& p) {
  nlohmann::json a = nlohmann::json::array();
  for (const cv::Point2f& q : p) a.push_back(std::round(q.x * 100) / 100), a.push_back(std::round(q.y * 100) / 100);
  return a;
}

Landmarks points_from(const nlohmann::json& a) {
  if (!a.is_array() || a.size() != 2 * face::kLandmarkCount) throw std::runtime_error("landmarks: not 136 numbers");
  Landmarks p;
  for (int i = 0; i < face::kLandmarkCount; ++i) p[i] = {a[2 * i].get<float>(), a[2 * i + 1].get<float>()};
  return p;
}

constexpr int kAtlasColumns = 16;

void write_png(const std::filesystem::path& path, const cv::Mat& image) {
  std::vector<uchar> png;
  cv::imencode(".png", image, png, {cv::IMWRITE_PNG_COMPRESSION, 3});
  write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(png.data()), png.size()));
}

nlohmann::json write_part(const std::filesystem::path& dir, const std::string& name, const Part& part) {
  nlohmann::json crops = nlohmann::json::array();
  if (!part.crops.empty()) {
    int rows = (static_cast<int>(part.crops.size()) + kAtlasColumns - 1) / kAtlasColumns;
    int columns = std::min<int>(kAtlasColumns, static_cast<int>(part.crops.size()));
    cv::Mat atlas = cv::Mat::zeros(rows * part.rect.height, columns * part.rect.width, CV_8UC3);
    for (size_t k = 0; k < part.crops.size(); ++k) {
      const Crop& c = part.crops[k];
      int col = static_cast<int>(k) % kAtlasColumns, row = static_cast<int>(k) / kAtlasColumns;
      c.image.copyTo(atlas(cv::Rect(col * part.rect.width, row * part.rect.height, part.rect.width, part.rect.height)));
      crops.push_back({{"source_id", c.source_id}, {"frame", c.frame}, {"time_s", std::round(c.time_s * 1e4) / 1e4},
                       {"opening", std::round(c.opening * 1e4) / 1e4}, {"width", std::round(c.width * 1e4) / 1e4},
                       {"landmarks", points_json(c.points)}});
    }
    std::vector<uchar> jpg;
    cv::imencode(".jpg", atlas, jpg, {cv::IMWRITE_JPEG_QUALITY, 95});
    write_file_atomic(dir / (name + ".jpg"), std::string_view(reinterpret_cast<const char*>(jpg.data()), jpg.size()));
  }
  return {{"atlas", part.crops.empty() ? "" : name + ".jpg"},
          {"rect", {part.rect.x, part.rect.y, part.rect.width, part.rect.height}},
          {"columns", kAtlasColumns},
          {"crops", crops}};
}

void read_part(const std::filesystem::path& dir, const nlohmann::json& j, Part& part) {
  const auto& r = j.at("rect");
  part.rect = cv::Rect(r.at(0).get<int>(), r.at(1).get<int>(), r.at(2).get<int>(), r.at(3).get<int>());
  const auto& crops = j.at("crops");
  if (crops.empty()) return;
  cv::Mat atlas = cv::imread((dir / j.at("atlas").get<std::string>()).string(), cv::IMREAD_COLOR);
  int columns = j.at("columns").get<int>();
  for (size_t k = 0; k < crops.size(); ++k) {
    const auto& c = crops[k];
    Crop crop;
    crop.source_id = c.at("source_id"), crop.frame = c.at("frame"), crop.time_s = c.at("time_s");
    crop.opening = c.at("opening"), crop.width = c.at("width");
    crop.points = points_from(c.at("landmarks"));
    cv::Rect cell(static_cast<int>(k) % columns * part.rect.width, static_cast<int>(k) / columns * part.rect.height,
                  part.rect.width, part.rect.height);
    if (atlas.empty() || (cell & cv::Rect(0, 0, atlas.cols, atlas.rows)) != cell) {
      throw std::runtime_error("atlas image missing or too small");
    }
    crop.image = atlas(cell).clone();
    part.crops.push_back(std::move(crop));
  }
}

void save_model(const std::filesystem::path& avatar, const PhotorealModel& m) {
  const std::filesystem::path dir = model_dir(avatar);
  std::filesystem::create_directories(dir);
  std::filesystem::remove(dir / "model.json");  // the model is incomplete until its JSON is back
  write_png(dir / "reference.png", m.reference);
  nlohmann::json j = {
      {"format", "dself-render-model"},
      {"version", 1},
      {"engine", "photoreal"},
      {"model_version", kModelVersion},
      {"input_hash", m.input_hash},
      {"options", options_json(m.options)},
      {"reference",
       {{"file", "reference.png"},
        {"source_id", m.reference_source},
        {"frame", m.reference_frame},
        {"time_s", m.reference_time_s},
        {"to_canonical", {m.reference_to_canonical.a, m.reference_to_canonical.b, m.reference_to_canonical.tx,
                          m.reference_to_canonical.ty}},
        {"origin", {m.origin.x, m.origin.y}},
        {"scale", m.scale},
        {"landmarks", points_json(m.reference_points)}}},
      {"mouth", write_part(dir, "mouths", m.mouth)},
      {"eyes", write_part(dir, "eyes", m.eyes)},
      {"sources", m.source_count},
      {"usable_frames", m.usable_frames}};
  write_file_atomic(dir / "model.json", j.dump(1));
}

// The saved model when it was built from the same inputs; null otherwise.
std::shared_ptr<PhotorealModel> read_saved_model(const std::filesystem::path& avatar, const std::string& hash,
                                                 const PhotorealOptions& options) {
  const std::filesystem::path dir = model_dir(avatar);
  if (!std::filesystem::exists(dir / "model.json")) return nullptr;
  try {
    nlohmann::json j = nlohmann::json::parse(read_file(dir / "model.json"));
    if (j.value("format", "") != "dself-render-model" || j.value("input_hash", "") != hash) return nullptr;
    auto m = std::make_shared<PhotorealModel>();
    m->options = options;
    m->input_hash = hash;
    const auto& r = j.at("reference");
    m->reference_source = r.at("source_id"), m->reference_frame = r.at("frame"), m->reference_time_s = r.at("time_s");
    const auto& s = r.at("to_canonical");
    m->reference_to_canonical = {s.at(0).get<float>(), s.at(1).get<float>(), s.at(2).get<float>(), s.at(3).get<float>()};
    m->origin = {r.at("origin").at(0).get<double>(), r.at("origin").at(1).get<double>()};
    m->scale = r.at("scale");
    m->reference_points = points_from(r.at("landmarks"));
    m->reference = cv::imread((dir / "reference.png").string(), cv::IMREAD_COLOR);
    if (m->reference.rows != options.size || m->reference.cols != options.size) return nullptr;
    read_part(dir, j.at("mouth"), m->mouth);
    read_part(dir, j.at("eyes"), m->eyes);
    m->source_count = j.at("sources"), m->usable_frames = j.at("usable_frames");
    return m;
  } catch (const std::exception& e) {
    spdlog::warn("render model in {} is unreadable ({}): building it again", dir.string(), e.what());
    return nullptr;
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------

std::shared_ptr<PhotorealModel> build_photoreal_model(const std::filesystem::path& avatar,
                                                       const PhotorealOptions& options) {
  if (options.size < 64 || options.size > 4096 || options.size % 2 != 0) {
    throw InputError(fmt::format("render size {} px: must be even, from 64 to 4096", options.size));
  }
  std::vector<SourceInput> sources = prepared_sources(avatar);
  auto model = std::make_shared<PhotorealModel>();
  model->options = options;
  model->input_hash = input_hash(sources, options);
  model->source_count = static_cast<int>(sources.size());

  std::vector<Candidate> all;
  std::vector<cv::Size> frame_sizes;
  constexpr uint32_t kUnusable = face::kSmall | face::kNotFrontal | face::kBlurry;
  for (size_t s = 0; s < sources.size(); ++s) {
    face::FaceTrack track = face::read_landmarks(sources[s].landmarks);
    frame_sizes.emplace_back(track.width, track.height);
    for (size_t i = 0; i < track.frames.size(); ++i) {
      const face::TrackedFrame& f = track.frames[i];
      if (!(f.flags & face::kFaceFound) || (f.flags & kUnusable)) continue;
      if (excluded(options, sources[s].id, f.time_s)) continue;
      Candidate c;
      c.source = static_cast<int>(s), c.frame = static_cast<int64_t>(i), c.time_s = f.time_s;
      c.canonical = canonical_points(f);
      c.opening = mouth_opening(c.canonical), c.width = mouth_width(c.canonical), c.eyes = eye_opening(c.canonical);
      c.sharpness = f.sharpness, c.pose = f.pose, c.to_canonical = f.to_canonical;
      all.push_back(c);
    }
  }
  model->usable_frames = static_cast<int64_t>(all.size());
  constexpr int kMinUsable = 25;
  if (static_cast<int>(all.size()) < kMinUsable) {
    throw InputError(fmt::format(
        "avatar {}: only {} usable face frames (face found, large, frontal and sharp; at least {} needed) to "
        "render the person from: ingest more video of them facing the camera and run `dself prepare`",
        avatar.string(), all.size(), kMinUsable));
  }

  // The reference and the output crop around its head, at about the source's own resolution.
  const Candidate& ref = all[choose_reference(all)];
  model->reference_source = sources[static_cast<size_t>(ref.source)].id;
  model->reference_frame = ref.frame;
  model->reference_time_s = ref.time_s;
  model->reference_to_canonical = ref.to_canonical;
  {
    cv::Matx23d to_frame = invert(to_matrix(ref.to_canonical));
    Landmarks p;
    for (int i = 0; i < face::kLandmarkCount; ++i) p[i] = apply(to_frame, ref.canonical[i]);
    double iod_src = face::inter_ocular_distance(p);
    cv::Point2f eyes = 0.5f * (face::centroid(p, 36, 42) + face::centroid(p, 42, 48));
    cv::Point2f centre = 0.5f * (eyes + face::centroid(p, 48, 68));
    cv::Size frame = frame_sizes[static_cast<size_t>(ref.source)];
    double side = std::max<double>(options.size, 4.0 * iod_src);
    side = std::min<double>(side, std::min(frame.width, frame.height));
    double x0 = std::clamp<double>(centre.x - side / 2, 0, std::max(0.0, frame.width - side));
    double y0 = std::clamp<double>(centre.y - side / 2, 0, std::max(0.0, frame.height - side));
    model->origin = {x0, y0};
    model->scale = options.size / side;
  }
  const cv::Matx23d canon_to_out = canonical_to_output(*model);
  for (int i = 0; i < face::kLandmarkCount; ++i) model->reference_points[i] = apply(canon_to_out, ref.canonical[i]);
  model->iod_px = static_cast<float>(face::inter_ocular_distance(model->reference_points));
  model->reference_eye_opening = eye_opening(model->reference_points);
  model->mouth.rect = mouth_rect(model->reference_points, model->iod_px, options.size);
  model->eyes.rect = eye_rect(model->reference_points, model->iod_px, options.size);

  // Which frames to cut: strictly frontal ones, so a similarity puts them in place.
  std::vector<size_t> frontal;
  for (size_t i = 0; i < all.size(); ++i) {
    if (std::abs(all[i].pose.yaw_deg) <= 15 && std::abs(all[i].pose.pitch_deg) <= 15) frontal.push_back(i);
  }
  if (frontal.size() < 10) {
    frontal.resize(all.size());
    std::iota(frontal.begin(), frontal.end(), size_t{0});
  }
  std::vector<size_t> mouth_picks = choose_mouths(all, frontal, options.max_crops);
  std::vector<size_t> eye_picks = choose_eyes(all, frontal);

  // One pass over each video, cutting the chosen frames as they stream by.
  std::map<std::pair<int, int64_t>, std::vector<std::pair<int, size_t>>> wanted;  // (source, frame) -> (what, pick)
  wanted[{ref.source, ref.frame}].push_back({0, 0});
  for (size_t k = 0; k < mouth_picks.size(); ++k) wanted[{all[mouth_picks[k]].source, all[mouth_picks[k]].frame}].push_back({1, k});
  for (size_t k = 0; k < eye_picks.size(); ++k) wanted[{all[eye_picks[k]].source, all[eye_picks[k]].frame}].push_back({2, k});
  model->mouth.crops.resize(mouth_picks.size());
  model->eyes.crops.resize(eye_picks.size());
  for (size_t s = 0; s < sources.size(); ++s) {
    auto first = wanted.lower_bound({static_cast<int>(s), 0});
    if (first == wanted.end() || first->first.first != static_cast<int>(s)) continue;
    int64_t last = std::prev(wanted.lower_bound({static_cast<int>(s) + 1, 0}))->first.second;
    media::VideoReader reader(sources[s].video);
    media::VideoFrame frame;
    while (reader.read(frame) && frame.index <= last) {
      auto it = wanted.find({static_cast<int>(s), frame.index});
      if (it == wanted.end()) continue;
      for (const auto& [what, k] : it->second) {
        if (what == 0) {
          model->reference = crop_to_output(*model, frame.bgr);
          continue;
        }
        const Candidate& c = all[what == 1 ? mouth_picks[k] : eye_picks[k]];
        Part& part = what == 1 ? model->mouth : model->eyes;
        Crop& crop = part.crops[k];
        crop.source_id = sources[s].id, crop.frame = c.frame, crop.time_s = c.time_s;
        for (int i = 0; i < face::kLandmarkCount; ++i) crop.points[i] = apply(canon_to_out, c.canonical[i]);
        crop.opening = what == 1 ? c.opening : c.eyes;
        crop.width = what == 1 ? c.width : 0;
        cv::Matx23d to_crop = compose(canon_to_out, to_matrix(c.to_canonical));
        to_crop(0, 2) -= part.rect.x, to_crop(1, 2) -= part.rect.y;
        crop.image = warp_frame(frame.bgr, to_crop, part.rect.size());
      }
    }
  }
  if (model->reference.empty()) {
    throw InputError(fmt::format("{}: frame {} of the reference could not be read: run `dself prepare` again",
                                 sources[static_cast<size_t>(ref.source)].video.string(), ref.frame));
  }
  for (Part* part : {&model->mouth, &model->eyes}) {
    std::erase_if(part->crops, [](const Crop& c) { return c.image.empty(); });  // a video shorter than its track
    for (Crop& crop : part->crops) match_colour(part == &model->mouth, crop, part->rect, *model);
  }
  std::sort(model->eyes.crops.begin(), model->eyes.crops.end(),
            [](const Crop& a, const Crop& b) { return a.opening > b.opening; });
  return model;
}

void finish_model(PhotorealModel& m) {
  m.iod_px = static_cast<float>(face::inter_ocular_distance(m.reference_points));
  m.reference_eye_opening = eye_opening(m.reference_points);
  const Landmarks& r = m.reference_points;

  // The mouth crops' warp: jaw, base of the nose and lips, triangulated on the crops' mean shape
  // (half open, so the lips' inside has triangles of its own).
  m.mouth.indices.clear();
  for (int i = 2; i <= 14; ++i) m.mouth.indices.push_back(i);
  for (int i = 30; i <= 35; ++i) m.mouth.indices.push_back(i);
  for (int i = 48; i <= 67; ++i) m.mouth.indices.push_back(i);
  std::vector<cv::Point2f> mean(m.mouth.indices.size(), cv::Point2f(0, 0));
  for (size_t k = 0; k < m.mouth.indices.size(); ++k) {
    for (const Crop& c : m.mouth.crops) mean[k] += c.points[m.mouth.indices[k]];
    mean[k] = m.mouth.crops.empty() ? r[m.mouth.indices[k]] : mean[k] * (1.0f / static_cast<float>(m.mouth.crops.size()));
  }
  m.mouth.triangles = delaunay(mean);

  m.eyes.indices = {0, 1, 2, 14, 15, 16, 27, 28, 29};
  for (int i = 17; i <= 26; ++i) m.eyes.indices.push_back(i);
  for (int i = 36; i <= 47; ++i) m.eyes.indices.push_back(i);
  std::vector<cv::Point2f> eye_points;
  for (int i : m.eyes.indices) eye_points.push_back(r[i]);
  m.eyes.triangles = delaunay(eye_points);

  // The reference's lower face follows the target: jaw, base of the nose and outer lips move;
  // the eye corners, the bridge of the nose and a ring around the face hold still.
  m.jaw_indices.clear();
  for (int i = 0; i <= 16; ++i) m.jaw_indices.push_back(i);
  for (int i = 31; i <= 35; ++i) m.jaw_indices.push_back(i);
  for (int i = 48; i <= 59; ++i) m.jaw_indices.push_back(i);
  m.jaw_anchors.clear();
  for (int i : {36, 39, 42, 45, 27, 28, 29, 30}) m.jaw_anchors.push_back(r[i]);
  cv::Point2f centre = face::centroid(r, 0, face::kLandmarkCount);
  for (int i = 0; i <= 26; ++i) {
    cv::Point2f p = centre + 1.45f * (r[i] - centre);
    m.jaw_anchors.emplace_back(std::clamp(p.x, 0.0f, static_cast<float>(m.options.size - 1)),
                               std::clamp(p.y, 0.0f, static_cast<float>(m.options.size - 1)));
  }
  std::vector<cv::Point2f> jaw_points;
  for (int i : m.jaw_indices) jaw_points.push_back(r[i]);
  jaw_points.insert(jaw_points.end(), m.jaw_anchors.begin(), m.jaw_anchors.end());
  m.jaw_triangles = delaunay(jaw_points);

  for (Part* part : {&m.mouth, &m.eyes}) {
    for (Crop& crop : part->crops) {
      if (crop.image.channels() == 4) continue;
      cv::Mat alpha = part_alpha(part == &m.mouth, crop.points, part->rect, m.iod_px);
      cv::Mat bgra;
      std::vector<cv::Mat> channels;
      cv::split(crop.image, channels);
      channels.push_back(alpha);
      cv::merge(channels, bgra);
      crop.image = bgra;
    }
  }
}

std::shared_ptr<const PhotorealModel> load_photoreal_model(const std::filesystem::path& avatar,
                                                           const PhotorealOptions& options) {
  std::vector<SourceInput> sources = prepared_sources(avatar);
  std::string hash = input_hash(sources, options);
  std::shared_ptr<PhotorealModel> model = read_saved_model(avatar, hash, options);
  if (!model) {
    spdlog::info("building the render model (reference frame and crop library) in {}", model_dir(avatar).string());
    model = build_photoreal_model(avatar, options);
    save_model(avatar, *model);
  }
  finish_model(*model);
  return model;
}

}  // namespace dself::render
