// The viseme motion learned from the prepared sample person: mouth shapes per viseme, silence,
// smoothness across sentences, head motion that carries on, and the distance to the truth.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/catalog.h"
#include "core/error.h"
#include "core/fs.h"
#include "motion/motion.h"
#include "support.h"

namespace dself::motion {
namespace {

const std::shared_ptr<const VisemeModel>& model() {
  static const auto learned = learn_viseme_model(test::prepared_avatar_dir());
  return learned;
}

double opening(const Landmarks& p) { return cv::norm(p[62] - p[66]); }
double eye_opening(const Landmarks& p) { return cv::norm(p[37] - p[41]) + cv::norm(p[43] - p[47]); }

// Largest distance any mouth or jaw point moved between two frames.
double mouth_jaw_step(const Landmarks& a, const Landmarks& b) {
  double step = 0;
  for (int i = 0; i < 17; ++i) step = std::max(step, cv::norm(a[i] - b[i]));
  for (int i = 48; i < 68; ++i) step = std::max(step, cv::norm(a[i] - b[i]));
  return step;
}

double mouth_jaw_distance(const Landmarks& a, const Landmarks& b) {
  double sum = 0;
  for (int i = 0; i < 17; ++i) sum += cv::norm(a[i] - b[i]);
  for (int i = 48; i < 68; ++i) sum += cv::norm(a[i] - b[i]);
  return sum / 37;
}

std::vector<speech::TimedPhone> phones(std::initializer_list<std::pair<const char*, double>> list, double start_s = 0) {
  std::vector<speech::TimedPhone> out;
  double t = start_s;
  for (const auto& [phone, length] : list) {
    out.push_back({phone, t, t + length});
    t += length;
  }
  return out;
}

TEST(Motion, VisemeClassesFollowTheTable) {
  EXPECT_EQ(viseme_class("m"), "pbm");
  EXPECT_EQ(viseme_class("aa1"), "aa");
  EXPECT_EQ(viseme_class("pau"), "sil");
  EXPECT_EQ(viseme_class("uw"), "wuw");
  EXPECT_EQ(viseme_class("f"), "fv");
}

TEST(Motion, OpenVowelsOpenWiderThanBilabials) {
  const VisemeModel& m = *model();
  double rest = opening(rest_face(m));
  double aa = opening(viseme_face(m, "aa"));
  double pbm = opening(viseme_face(m, "pbm"));
  double iod = 0.3 * 256;
  std::printf("mouth opening / IOD: rest %.3f, pbm %.3f, aa %.3f\n", rest / iod, pbm / iod, aa / iod);
  EXPECT_GT(aa - pbm, 0.08 * iod) << "the learned aa is hardly more open than m";
  EXPECT_LT(pbm, rest + 0.03 * iod) << "the learned m/b/p does not close the lips";

  // Played back: the middle of "aa" is open, the middle of "m" closed.
  auto motion = make_viseme_motion(model());
  auto poses = motion->animate(phones({{"sil", 0.3}, {"m", 0.12}, {"aa", 0.2}, {"m", 0.12}, {"aa", 0.2}, {"sil", 0.3}}),
                               {}, 1.24, 25);
  ASSERT_EQ(poses.size(), 31u);
  double m_open = opening(poses[9].points);    // 0.36 s: inside the first m
  double aa_open = opening(poses[13].points);  // 0.52 s: inside the first aa
  EXPECT_GT(aa_open, m_open + 0.06 * iod);
  EXPECT_LT(m_open, rest + 0.03 * iod);
}

TEST(Motion, SilenceReturnsToTheRestMouth) {
  auto motion = make_viseme_motion(model());
  auto poses = motion->animate(phones({{"hh", 0.1}, {"aa", 0.4}, {"sil", 1.5}}), {}, 2.0, 25);
  const Landmarks& rest = rest_face(*model());
  EXPECT_GT(mouth_jaw_distance(poses[8].points, rest), 1.0) << "speech should move the mouth";
  EXPECT_LT(mouth_jaw_distance(poses.back().points, rest), 0.1) << "a second of silence should close it";
  for (const FacePose& pose : motion->idle(50, 25)) EXPECT_LT(mouth_jaw_distance(pose.points, rest), 0.1);
}

TEST(Motion, NoPoppingAcrossSentences) {
  VisemeOptions options;
  auto motion = make_viseme_motion(model(), options);
  double max_step = options.max_speed_iod_per_s * 0.3 * 256 / 25 + 1e-3;
  // A sentence cut off mid-vowel, then one that starts on a closed "m"; very short phones.
  std::vector<FacePose> all;
  for (const auto& sentence : {phones({{"sil", 0.2}, {"aa", 0.5}}), phones({{"m", 0.02}, {"aa", 0.02}, {"p", 0.3}}),
                               phones({{"ao", 0.3}, {"sil", 0.2}})}) {
    auto poses = motion->animate(sentence, {}, sentence.back().end_s, 25);
    all.insert(all.end(), poses.begin(), poses.end());
  }
  double largest = 0;
  for (size_t k = 1; k < all.size(); ++k) largest = std::max(largest, mouth_jaw_step(all[k - 1].points, all[k].points));
  std::printf("largest mouth/jaw step between frames: %.2f px (limit %.2f)\n", largest, max_step);
  EXPECT_LE(largest, max_step);
}

TEST(Motion, HeadAndBlinksCarryOnAcrossCalls) {
  auto motion = make_viseme_motion(model());
  auto first = motion->idle(250, 25);
  auto second = motion->animate(phones({{"sil", 0.2}, {"aa", 0.4}, {"sil", 0.4}}), {}, 1.0, 25);
  // The head moved during those ten seconds, as the person's does...
  float lo = 1e9, hi = -1e9;
  double largest_step = 0;
  for (size_t k = 0; k < first.size(); ++k) {
    lo = std::min(lo, first[k].head.shift_x), hi = std::max(hi, first[k].head.shift_x);
    if (k > 0) largest_step = std::max<double>(largest_step, std::hypot(first[k].head.shift_x - first[k - 1].head.shift_x,
                                                                first[k].head.shift_y - first[k - 1].head.shift_y));
  }
  EXPECT_GT(hi - lo, 0.05f) << "the head stays still";
  // ...and the next call goes on from where the last one stopped.
  const HeadMotion& a = first.back().head;
  const HeadMotion& b = second.front().head;
  double step = std::hypot(a.shift_x - b.shift_x, a.shift_y - b.shift_y);
  EXPECT_LE(step, std::max(3 * largest_step, 0.2)) << "the head jumps between calls";
  EXPECT_LT(std::abs(a.roll_deg - b.roll_deg), 0.5f);

  // The eyes blink now and then, and are open most of the time.
  double open = eye_opening(rest_face(*model()));
  int shut = 0;
  for (const FacePose& pose : first) shut += eye_opening(pose.points) < 0.6 * open ? 1 : 0;
  EXPECT_GT(shut, 0) << "no blink in ten seconds";
  EXPECT_LT(shut, 50);

  // reset() starts the same stream again.
  motion->reset();
  EXPECT_EQ(motion->idle(1, 25).front().head.shift_x, first.front().head.shift_x);
}

TEST(Motion, BeatsTheRestFaceOnAHeldOutSentence) {
  // The small sample avatar has no held-out utterance: hold out source 1's (a copy is changed).
  test::TempDir dir;
  std::filesystem::path avatar = test::copy_avatar(dir.path());
  std::filesystem::path utterances = avatar / "speech" / "1" / "utterances.json";
  nlohmann::json dataset = nlohmann::json::parse(read_file(utterances));
  ASSERT_FALSE(dataset["utterances"].empty());
  dataset["utterances"][0]["split"] = "held_out";
  write_file_atomic(utterances, dataset.dump());

  nlohmann::json result = evaluate_motion(avatar, test::sample_dir());
  std::printf("%s\n", result.dump(1).c_str());
  const auto& truth = result.at("truth");
  EXPECT_EQ(truth.at("sources").get<int>(), 2);
  EXPECT_GT(truth.at("frames").get<int>(), 100);
  EXPECT_LT(truth.at("lmd_iod_pct").get<double>(), 8.0);
  EXPECT_LT(truth.at("lmd_iod_pct").get<double>(), truth.at("rest_lmd_iod_pct").get<double>());
  EXPECT_GT(truth.at("opening_correlation").get<double>(), 0.5);
  const auto& tracked = result.at("tracked");
  EXPECT_LT(tracked.at("lmd_iod_pct").get<double>(), tracked.at("rest_lmd_iod_pct").get<double>());
  EXPECT_GT(tracked.at("opening_correlation").get<double>(), 0.5);
}

TEST(Motion, RefusesAnUnpreparedAvatar) {
  test::TempDir dir;
  auto expect_prepare_hint = [](const std::function<void()>& call) {
    try {
      call();
      ADD_FAILURE() << "no error";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("dself prepare"), std::string::npos) << e.what();
    }
  };
  expect_prepare_hint([&] { learn_viseme_model(dir / "missing"); });
  Catalog{dir.path()};  // an avatar, with a speech dataset but no face track
  std::filesystem::create_directories(dir / "speech" / "1");
  write_file_atomic(dir / "speech" / "1" / "utterances.json", R"({"format": "dself-speech", "version": 1, "utterances": []})");
  expect_prepare_hint([&] { learn_viseme_model(dir.path()); });  // no face track
  // The prepared sample avatar is too small to have a held-out utterance.
  expect_prepare_hint([&] { evaluate_motion(test::prepared_avatar_dir()); });
  EXPECT_THROW(viseme_face(*model(), "nope"), InputError);
}

}  // namespace
}  // namespace dself::motion
