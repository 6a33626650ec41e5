// Choosing, while the frames stream past, what the renderer gets: reference frames and mouth
// crops. Both keep a bounded number of images whatever the video's length. Internal to
// dself_face.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include <opencv2/core.hpp>

#include "face/track.h"

namespace dself::face::track::detail {

// The best frame (frontal, sharp, mouth closed, eyes open) in each of reference_count equal
// parts of the video.
class ReferencePicker {
 public:
  ReferencePicker(const TrackOptions& options, int64_t frame_count);
  // `segment`: the tracked run the frame belongs to (see FaceTrack frames' segments).
  void offer(int64_t index, const cv::Mat& bgr, const FrameTrack& frame, int segment);
  // The chosen frames, in time order, of the segments kept.
  std::vector<ReferenceFrame> take(const std::vector<bool>& keep_segment);

 private:
  struct Candidate {
    ReferenceFrame frame;
    double score = 0;
    int segment = 0;
  };
  const TrackOptions& options_;
  int64_t frame_count_;
  std::map<int64_t, Candidate> best_;  // by part of the video
};

// Mouth crops binned by shape (opening and width over the IOD): each bin keeps its sharpest
// crops, so rare shapes (wide open, rounded) are kept as well as the common ones.
class MouthCollector {
 public:
  explicit MouthCollector(const TrackOptions& options);
  void offer(int64_t index, const cv::Mat& bgr, const FrameTrack& frame, int segment);
  // The crops of the segments kept, at most max_mouth_crops (the fullest bins give way first),
  // sorted by opening.
  std::vector<MouthCrop> take(const std::vector<bool>& keep_segment);

 private:
  struct Candidate {
    MouthCrop crop;
    float score = 0;
    int segment = 0;
  };
  const TrackOptions& options_;
  std::map<int, std::vector<Candidate>> bins_;
};

// The mouth-crop transform of a frame: image pixels -> crop pixels.
Similarity mouth_crop_transform(const Similarity& to_canonical, const TrackOptions& options);

}  // namespace dself::face::track::detail
