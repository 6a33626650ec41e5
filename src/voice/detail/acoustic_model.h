// The acoustic model of the trained voice (docs/VOICE.md, "Acoustic model"): phones with prosodic
// context -> per-phone duration, pitch and energy -> per 5 ms frame vocoder features.
// Non-autoregressive, FastSpeech 2 / FastPitch style, convolutional throughout.
// ref: Ren et al., "FastSpeech 2: Fast and High-Quality End-to-End Text to Speech", ICLR 2021
// ref: Łańcucki, "FastPitch: Parallel Text-to-Speech with Pitch Prediction", ICASSP 2021
#pragma once

#include <torch/nn.h>

#include <nlohmann/json_fwd.hpp>

#include "voice/detail/model_config.h"

namespace dself::voice {

// Categorical context of each phone (columns of the context tensor); index 0 is padding in all.
enum ContextColumn { kStress, kPositionInWord, kWordInPhrase, kPunctuation, kPhraseInUtterance, kContextColumnCount };
// Number of values each column takes (padding included); voice_data.cpp says what they mean.
constexpr int64_t kContextSizes[kContextColumnCount] = {5, 6, 6, 8, 5};

// Phone vocabulary ids the model itself relies on: 0 pads, 1 is a pause ("sil").
constexpr int64_t kPaddingPhone = 0;
constexpr int64_t kSilencePhone = 1;



// A batch: B utterances padded to N phones and T frames (T a multiple of `reduction`).
struct AcousticBatch {
  torch::Tensor phones;       // [B, N] int64, 0 = padding
  torch::Tensor context;      // [B, N, kContextColumnCount] int64
  torch::Tensor durations;    // [B, N] int64 frames (0 for padding)
  torch::Tensor phone_pitch;  // [B, N] float: normalised mean log-F0 of each phone
  torch::Tensor phone_energy; // [B, N] float: normalised mean c0 of each phone
  torch::Tensor frames;       // [B, T, kFrameDims] float targets (normalised; voicing 0/1)
  torch::Tensor frame_mask;   // [B, T] float, 1 on real frames
};

struct AcousticOutput {
  torch::Tensor log_durations;  // [B, N] predicted log(1 + frames)
  torch::Tensor pitch;          // [B, N] predicted phone pitch (normalised)
  torch::Tensor energy;         // [B, N]
  torch::Tensor frames;         // [B, T, kFrameDims]
};

// The training loss, and its parts for the curve.
struct AcousticLoss {
  torch::Tensor total;
  torch::Tensor mcep, lf0, voicing, bap;  // frame targets (L1 on normalised values; BCE for voicing)
  torch::Tensor duration, pitch, energy;  // phone targets (MSE; durations as log(1 + frames))
};
AcousticLoss acoustic_loss(const AcousticOutput& output, const AcousticBatch& batch);

// Frame -> phone index maps for the length regulator: [B, T] int64, N (one past the last phone:
// a zero row) for padding frames; and the frame's relative position inside its phone plus the
// phone's log duration, [B, T, 2].
struct FrameIndex {
  torch::Tensor phone_of_frame;
  torch::Tensor position;
};
FrameIndex frame_index(const torch::Tensor& durations, int64_t frame_count);

// A residual conv block over a [B, L, C] sequence: conv -> ReLU -> layer norm -> dropout, added
// to its input; padding positions are zeroed so they never leak into real ones.
class ConvBlockImpl : public torch::nn::Module {
 public:
  ConvBlockImpl(int64_t channels, int64_t kernel_size, double dropout);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask);  // mask [B, L, 1]

 private:
  torch::nn::Conv1d conv{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Dropout dropout{nullptr};
};
TORCH_MODULE(ConvBlock);

// FastSpeech 2's variance predictor (§2.3): two conv layers (ReLU, layer norm, dropout), then a
// linear layer to one value per phone.
class VariancePredictorImpl : public torch::nn::Module {
 public:
  VariancePredictorImpl(int64_t in_channels, int64_t channels, double dropout);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask);  // -> [B, L]

 private:
  torch::nn::Conv1d conv1{nullptr}, conv2{nullptr};
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Dropout dropout{nullptr};
  torch::nn::Linear out{nullptr};
};
TORCH_MODULE(VariancePredictor);

class AcousticModelImpl : public torch::nn::Module {
 public:
  explicit AcousticModelImpl(const AcousticModelOptions& options);

  // Teacher-forced pass for training: ground-truth durations, pitch and energy drive the
  // regulator and the embeddings; the predictors are trained beside it (FastSpeech 2 §2.3).
  AcousticOutput forward(const AcousticBatch& batch);

  // Inference for one utterance ([1, N] phones, [1, N, C] context): predicted durations (frames,
  // [N]) and the frames [T, kFrameDims]. `pace` scales durations (1 = as learned).
  std::pair<torch::Tensor, torch::Tensor> infer(const torch::Tensor& phones, const torch::Tensor& context,
                                                double pace = 1.0);

  const AcousticModelOptions& options() const { return options_; }

 private:
  torch::Tensor encode(const torch::Tensor& phones, const torch::Tensor& context);
  torch::Tensor decode(const torch::Tensor& hidden, const torch::Tensor& pitch, const torch::Tensor& energy,
                       const FrameIndex& index, const torch::Tensor& phone_mask);

  AcousticModelOptions options_;
  torch::nn::Embedding phone_embedding{nullptr};
  torch::nn::ModuleList context_embeddings;
  torch::nn::ModuleList encoder;
  VariancePredictor duration_predictor{nullptr};
  VariancePredictor pitch_predictor{nullptr};
  VariancePredictor energy_predictor{nullptr};
  torch::nn::Conv1d pitch_embedding{nullptr};
  torch::nn::Conv1d energy_embedding{nullptr};
  torch::nn::Linear position_embedding{nullptr};
  torch::nn::ModuleList decoder;
  torch::nn::Linear output{nullptr};
};
TORCH_MODULE(AcousticModel);

}  // namespace dself::voice
