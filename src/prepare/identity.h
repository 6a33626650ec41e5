// Who is who across the playlist (issue 15): every source's face tracks grouped by identity, and
// the person the avatar is made of chosen among them. Internal to the prepare stage.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <vector>

#include <nlohmann/json.hpp>

namespace dself::prepare {

struct PersonChoice {
  int person = 0;                                 // 1-based identity number
  std::map<int64_t, std::vector<int>> tracks;     // source id -> the person's tracks in its tracks.json
  nlohmann::json identities;                      // what faces/identities.json holds
};

// Reads faces/<id>/tracks.json (and tracks.bin) and transcripts/<id>.json of the sources given,
// groups the tracks by identity and numbers the identities by how long each speaks on screen
// (its face there, its mouth moving, words in the transcript), most first; screen time breaks
// ties. Writes faces/identities.json and faces/identities/<n>.png (a thumbnail each).
// requested_person: 0 chooses identity 1 when it dominates (it speaks on screen at least
// kDominance times as long as the next); otherwise InputError listing the identities and asking
// for --person. A requested number that is no identity's is an InputError too.
PersonChoice choose_person(const std::filesystem::path& avatar, const std::vector<int64_t>& sources,
                           int requested_person);

constexpr double kDominance = 1.5;

}  // namespace dself::prepare
