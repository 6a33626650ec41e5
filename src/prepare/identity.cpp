#include "prepare/identity.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <opencv2/imgcodecs.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/workspace.h"
#include "face/face_track.h"
#include "face/identity.h"
#include "transcript/transcript.h"

namespace dself::prepare {
namespace {

constexpr int kMouthWindow = 6;             // frames each side over which the mouth's motion is measured
constexpr double kMovingMouthStd = 0.02;    // std of the opening (in IODs) of a mouth that is talking

struct Interval {
  double start_s, end_s;
};

std::vector<Interval> word_times(const std::filesystem::path& avatar, int64_t source) {
  std::vector<Interval> times;
  std::filesystem::path path = workspace::transcript_path(avatar, source);
  if (!std::filesystem::exists(path)) return times;
  transcript::Transcript t = transcript::transcript_from_json(nlohmann::json::parse(read_file(path)));
  for (const auto& w : t.words) times.push_back({w.start_s, w.end_s});
  std::sort(times.begin(), times.end(), [](const Interval& a, const Interval& b) { return a.start_s < b.start_s; });
  return times;
}

bool in_speech(const std::vector<Interval>& words, double t) {
  auto it = std::upper_bound(words.begin(), words.end(), t, [](double x, const Interval& w) { return x < w.start_s; });
  // The word starting last before t, and the one before it (words can overlap slightly).
  for (int back = 0; back < 2 && it != words.begin(); ++back) {
    --it;
    if (t < it->end_s) return true;
  }
  return false;
}

// Frames where the track's mouth moves while someone speaks: the track's person talking on screen.
int64_t speaking_frames(const face::Track& track, const std::vector<Interval>& words) {
  std::vector<double> opening;
  for (const auto& f : track.frames) {
    double iod = std::max(1.0f, f.iod_px);
    opening.push_back(cv::norm(f.points[62] - f.points[66]) / iod);
  }
  int64_t count = 0;
  auto n = static_cast<int64_t>(opening.size());
  for (int64_t i = 0; i < n; ++i) {
    if (!in_speech(words, track.frames[i].time_s)) continue;
    int64_t a = std::max<int64_t>(0, i - kMouthWindow), b = std::min(n, i + kMouthWindow + 1);
    double mean = 0, square = 0;
    for (int64_t k = a; k < b; ++k) mean += opening[k], square += opening[k] * opening[k];
    mean /= static_cast<double>(b - a);
    double variance = square / static_cast<double>(b - a) - mean * mean;
    if (std::sqrt(std::max(0.0, variance)) > kMovingMouthStd) ++count;
  }
  return count;
}

struct Identity {
  int group = 0;
  double screen_s = 0;
  double speaking_s = 0;
  std::vector<std::pair<int64_t, int>> tracks;  // (source, track)
  std::map<int64_t, double> screen_by_source;
  cv::Mat thumbnail;
  size_t thumbnail_frames = 0;  // the thumbnail comes from the identity's longest track
};

}  // namespace

PersonChoice choose_person(const std::filesystem::path& avatar, const std::vector<int64_t>& sources,
                           int requested_person) {
  std::vector<face::TrackAppearance> appearances;
  struct Ref {
    int64_t source;
    int track;
    double screen_s, speaking_s;
    const face::Track* data;
  };
  std::vector<Ref> refs;
  std::map<int64_t, face::FaceTrack> loaded;
  for (int64_t source : sources) {
    std::filesystem::path dir = workspace::face_dir(avatar, source);
    if (!std::filesystem::exists(dir / "tracks.json")) continue;
    face::FaceTrack& tracks = loaded[source] = face::read_tracks(dir);
    std::vector<Interval> words = word_times(avatar, source);
    double fps = tracks.fps > 0 ? tracks.fps : 25;
    for (size_t t = 0; t < tracks.tracks.size(); ++t) {
      const face::Track& track = tracks.tracks[t];
      appearances.push_back({track.descriptor, source, track.first_frame, track.end_frame(),
                             static_cast<int64_t>(track.frames.size())});
      refs.push_back({source, static_cast<int>(t), static_cast<double>(track.frames.size()) / fps,
                      static_cast<double>(speaking_frames(track, words)) / fps, &track});
    }
  }
  std::vector<int> groups = face::cluster_identities(appearances);
  std::map<int, Identity> by_group;
  for (size_t i = 0; i < refs.size(); ++i) {
    if (groups[i] < 0) continue;
    Identity& identity = by_group[groups[i]];
    identity.group = groups[i];
    identity.screen_s += refs[i].screen_s;
    identity.speaking_s += refs[i].speaking_s;
    identity.screen_by_source[refs[i].source] += refs[i].screen_s;
    identity.tracks.push_back({refs[i].source, refs[i].track});
    if (refs[i].data->frames.size() > identity.thumbnail_frames && !refs[i].data->thumbnail.empty()) {
      identity.thumbnail = refs[i].data->thumbnail;
      identity.thumbnail_frames = refs[i].data->frames.size();
    }
  }
  std::vector<Identity> identities;
  for (auto& [group, identity] : by_group) identities.push_back(std::move(identity));
  std::sort(identities.begin(), identities.end(), [](const Identity& a, const Identity& b) {
    return a.speaking_s != b.speaking_s ? a.speaking_s > b.speaking_s : a.screen_s > b.screen_s;
  });

  PersonChoice choice;
  nlohmann::json list = nlohmann::json::array();
  std::filesystem::path thumbnails = workspace::faces_root(avatar) / "identities";
  std::filesystem::create_directories(thumbnails);
  for (size_t i = 0; i < identities.size(); ++i) {
    const Identity& identity = identities[i];
    std::string file = fmt::format("identities/{}.png", i + 1);
    if (!identity.thumbnail.empty()) {
      std::vector<uchar> png;
      cv::imencode(".png", identity.thumbnail, png);
      write_file_atomic(workspace::faces_root(avatar) / file,
                        std::string_view(reinterpret_cast<const char*>(png.data()), png.size()));
    }
    nlohmann::json per_source = nlohmann::json::object();
    for (const auto& [source, seconds] : identity.screen_by_source) per_source[std::to_string(source)] = seconds;
    list.push_back({{"number", i + 1},
                    {"screen_s", identity.screen_s},
                    {"speaking_s", identity.speaking_s},
                    {"tracks", identity.tracks.size()},
                    {"screen_s_by_source", per_source},
                    {"thumbnail", identity.thumbnail.empty() ? "" : file}});
  }
  auto describe = [&] {
    std::string text;
    for (const auto& identity : list) {
      text += fmt::format("\n  --person {}: on screen {:.1f} s, speaking on screen {:.1f} s",
                          identity["number"].get<int>(), identity["screen_s"].get<double>(),
                          identity["speaking_s"].get<double>());
    }
    return text;
  };
  bool dominant = identities.size() == 1 ||
                  (identities.size() > 1 && (identities[0].speaking_s > 0
                                                 ? identities[0].speaking_s >= kDominance * identities[1].speaking_s
                                                 : identities[0].screen_s >= kDominance * identities[1].screen_s));
  std::string chosen_by = "speaks most on screen";
  if (requested_person > 0) {
    chosen_by = "--person";
  } else if (!dominant) {
    chosen_by = "undecided";
  }
  choice.person = requested_person > 0 ? requested_person : (identities.empty() ? 0 : 1);
  choice.identities = {{"format", "dself-identities"},
                       {"version", 1},
                       {"person", chosen_by == "undecided" ? 0 : choice.person},
                       {"chosen_by", chosen_by},
                       {"identities", list}};
  write_file_atomic(workspace::faces_root(avatar) / "identities.json", choice.identities.dump(1));
  if (identities.empty()) {
    throw InputError("no face was found in any source: the avatar needs videos where the person's face is visible");
  }
  if (requested_person > static_cast<int>(identities.size()) || requested_person < 0) {
    throw InputError(fmt::format("--person {}: there {} {} identit{} (1 to {}):{}", requested_person,
                                 identities.size() == 1 ? "is" : "are", identities.size(),
                                 identities.size() == 1 ? "y" : "ies", identities.size(), describe()));
  }
  if (requested_person == 0 && !dominant) {
    throw InputError(fmt::format("{} people appear and no one of them dominates (the first speaks on screen less than "
                                 "{}x as long as the next): choose the person with `dself prepare --person N`:{}",
                                 identities.size(), kDominance, describe()));
  }
  for (const auto& [source, track] : identities[choice.person - 1].tracks) choice.tracks[source].push_back(track);
  for (auto& [source, tracks] : choice.tracks) std::sort(tracks.begin(), tracks.end());
  return choice;
}

}  // namespace dself::prepare
