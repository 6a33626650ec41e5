// How the sample person moves: mouth and jaw driven by the phones (viseme targets blended with
// coarticulation), blinks, and small head motion, as commanded landmarks per frame.
#pragma once

#include <cstdint>
#include <opencv2/core.hpp>
#include <vector>

#include "sample/detail/portrait.h"
#include "sample/detail/speech.h"

namespace dself::sample {

// The face's articulation at one moment, each in [0, 1] unless said otherwise.
struct Articulation {
  double open = 0;    // jaw and lips apart (1: a wide "aa")
  double spread = 0;  // -1 rounded ("uw", "w") .. 1 spread ("iy")
  double tuck = 0;    // lower lip up to the upper teeth ("f", "v")
  double blink = 0;   // eyelids closed
};

// The rest landmarks moved by an articulation. Displacements are in units of the
// inter-ocular distance, along the face's own axes (eye line and its normal).
Landmarks articulate(const Landmarks& rest, double inter_ocular_px, const Articulation& articulation);

// Canvas -> frame: the head turned by roll_deg, scaled and shifted about the rest face's
// centre, then the frame cut out of the canvas.
cv::Matx23f head_transform(const Portrait& portrait, double roll_deg, double scale, cv::Point2f shift_px);

// Landmarks moved by an affine transform.
Landmarks transform(const cv::Matx23f& m, const Landmarks& points);

// One frame's commanded pose.
struct Pose {
  Landmarks face;       // canvas pixels, before the head moves
  cv::Matx23f head;     // canvas -> frame: the head's motion, then the cut to the frame
  Landmarks landmarks;  // face through head: the commanded landmarks in frame pixels
  Articulation articulation;
};

struct Blink {
  double start_s = 0;
  double end_s = 0;
};

class Motion {
 public:
  // phones: the video's whole timeline (see SpokenVideo::phones).
  Motion(const Portrait& portrait, const std::vector<Phone>& phones, double duration_s, uint64_t seed, int video_index);
  Pose at_frame(int64_t frame) const;
  const std::vector<Blink>& blinks() const { return blinks_; }

 private:
  Articulation speech_at(double t) const;
  double blink_at(double t) const;
  cv::Matx23f head_at(double t) const;

  struct Wave {  // one sinusoid of the head's motion
    double frequency_hz, phase, amplitude;
  };
  const Portrait& portrait_;
  const std::vector<Phone>& phones_;
  std::vector<Blink> blinks_;
  std::vector<Wave> roll_deg_, shift_x_px_, shift_y_px_, scale_;
};

}  // namespace dself::sample
