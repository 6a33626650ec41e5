// The acoustic model: FastSpeech 2's variance adaptor between a convolutional phone encoder and a
// convolutional frame decoder that emits `reduction` frames per step.
// ref: Ren et al. 2021 (FastSpeech 2), §2.2-2.3: length regulator, variance predictors
// ref: Łańcucki 2021 (FastPitch), §2.1: phone-averaged pitch predicted, then embedded by a conv
#include "voice/detail/acoustic_model.h"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace dself::voice {

namespace F = torch::nn::functional;

FrameIndex frame_index(const torch::Tensor& durations, int64_t frame_count) {
  const auto d = durations.to(torch::kCPU).contiguous();
  const int64_t batch = d.size(0), phone_count = d.size(1);
  auto phone_of_frame = torch::full({batch, frame_count}, phone_count, torch::kInt64);
  auto position = torch::zeros({batch, frame_count, 2});
  auto da = d.accessor<int64_t, 2>();
  auto pa = phone_of_frame.accessor<int64_t, 2>();
  auto qa = position.accessor<float, 3>();
  for (int64_t b = 0; b < batch; ++b) {
    int64_t t = 0;
    for (int64_t n = 0; n < phone_count && t < frame_count; ++n) {
      const int64_t len = da[b][n];
      // Where the frame is inside its phone and how long the phone is: what a frame-rate decoder
      // cannot see from the repeated phone vector alone.
      // ref: Wu, Watts & King, "Merlin: An Open Source Neural Network Speech Synthesis System", SSW 2016
      const float log_len = std::log1p(float(len));
      for (int64_t k = 0; k < len && t < frame_count; ++k, ++t) {
        pa[b][t] = n;
        qa[b][t][0] = (float(k) + 0.5f) / float(len);
        qa[b][t][1] = log_len;
      }
    }
  }
  return {phone_of_frame.to(durations.device()), position.to(durations.device())};
}

ConvBlockImpl::ConvBlockImpl(int64_t channels, int64_t kernel_size, double p) {
  conv = register_module("conv", torch::nn::Conv1d(torch::nn::Conv1dOptions(channels, channels, kernel_size)
                                                       .padding(kernel_size / 2)));
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({channels})));
  dropout = register_module("dropout", torch::nn::Dropout(p));
}

torch::Tensor ConvBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& mask) {
  auto y = conv(x.transpose(1, 2)).transpose(1, 2);
  y = dropout(norm(torch::relu(y)));
  return (x + y) * mask;
}

VariancePredictorImpl::VariancePredictorImpl(int64_t in_channels, int64_t channels, double p) {
  conv1 = register_module("conv1", torch::nn::Conv1d(torch::nn::Conv1dOptions(in_channels, channels, 3).padding(1)));
  conv2 = register_module("conv2", torch::nn::Conv1d(torch::nn::Conv1dOptions(channels, channels, 3).padding(1)));
  norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({channels})));
  norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({channels})));
  dropout = register_module("dropout", torch::nn::Dropout(p));
  out = register_module("out", torch::nn::Linear(channels, 1));
}

torch::Tensor VariancePredictorImpl::forward(const torch::Tensor& x, const torch::Tensor& mask) {
  auto y = dropout(norm1(torch::relu(conv1(x.transpose(1, 2)).transpose(1, 2))));
  y = dropout(norm2(torch::relu(conv2(y.transpose(1, 2)).transpose(1, 2))));
  return (out(y) * mask).squeeze(-1);
}

AcousticModelImpl::AcousticModelImpl(const AcousticModelOptions& o) : options_(o) {
  phone_embedding = register_module("phone_embedding", torch::nn::Embedding(o.phone_count, o.dim));
  context_embeddings = register_module("context_embeddings", torch::nn::ModuleList());
  for (int64_t size : kContextSizes) {
    // Zero at the start: a context value the data never shows (punctuation, when captions have
    // none) stays zero and adds nothing at synthesis, instead of a random vector.
    torch::nn::Embedding table(size, o.dim);
    torch::NoGradGuard no_grad;
    table->weight.zero_();
    context_embeddings->push_back(table);
  }
  encoder = register_module("encoder", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.encoder_layers; ++i) encoder->push_back(ConvBlock(o.dim, o.kernel_size, o.dropout));
  duration_predictor = register_module("duration_predictor", VariancePredictor(o.dim, o.predictor_dim, o.dropout));
  pitch_predictor = register_module("pitch_predictor", VariancePredictor(o.dim, o.predictor_dim, o.dropout));
  energy_predictor = register_module("energy_predictor", VariancePredictor(o.dim, o.predictor_dim, o.dropout));
  // ref: FastPitch §2.1: "the pitch is projected to match the dimensionality of the hidden
  // representation ... using a 1-D convolution" (kernel 3).
  pitch_embedding = register_module("pitch_embedding", torch::nn::Conv1d(torch::nn::Conv1dOptions(1, o.dim, 3).padding(1)));
  energy_embedding =
      register_module("energy_embedding", torch::nn::Conv1d(torch::nn::Conv1dOptions(1, o.dim, 3).padding(1)));
  position_embedding = register_module("position_embedding", torch::nn::Linear(2, o.dim));
  decoder = register_module("decoder", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.decoder_layers; ++i) decoder->push_back(ConvBlock(o.dim, o.kernel_size, o.dropout));
  output = register_module("output", torch::nn::Linear(o.dim, o.reduction * kFrameDims));
}

torch::Tensor AcousticModelImpl::encode(const torch::Tensor& phones, const torch::Tensor& context) {
  const auto mask = phones.ne(0).unsqueeze(-1).to(torch::kFloat);
  auto x = phone_embedding(phones);
  for (int64_t c = 0; c < kContextColumnCount; ++c)
    x = x + context_embeddings[c]->as<torch::nn::Embedding>()->forward(context.select(2, c));
  x = x * mask;
  for (const auto& block : *encoder) x = block->as<ConvBlock>()->forward(x, mask);
  return x;
}

torch::Tensor AcousticModelImpl::decode(const torch::Tensor& hidden, const torch::Tensor& pitch,
                                        const torch::Tensor& energy, const FrameIndex& index,
                                        const torch::Tensor& phone_mask) {
  const int64_t batch = hidden.size(0), channels = hidden.size(2);
  const int64_t frame_count = index.phone_of_frame.size(1), r = options_.reduction;
  auto h = hidden + pitch_embedding(pitch.unsqueeze(1)).transpose(1, 2) +
           energy_embedding(energy.unsqueeze(1)).transpose(1, 2);
  h = torch::cat({h * phone_mask, torch::zeros({batch, 1, channels}, h.options())}, 1);
  // The length regulator (FastSpeech 2 §2.2): each phone's vector repeated over its frames.
  auto x = torch::gather(h, 1, index.phone_of_frame.unsqueeze(-1).expand({batch, frame_count, channels}));
  const auto frame_mask = index.phone_of_frame.lt(hidden.size(1)).to(torch::kFloat);
  x = (x + position_embedding(index.position)) * frame_mask.unsqueeze(-1);
  // `reduction` frames per decoder step: the decoder runs at 200/r steps a second, its output
  // layer unfolds each step into r frames (as Tacotron's reduction factor, Wang et al. 2017).
  x = x.view({batch, frame_count / r, r, channels}).mean(2);
  const auto step_mask = std::get<0>(frame_mask.view({batch, frame_count / r, r}).max(2)).unsqueeze(-1);
  for (const auto& block : *decoder) x = block->as<ConvBlock>()->forward(x, step_mask);
  return output(x).view({batch, frame_count, kFrameDims});
}

AcousticOutput AcousticModelImpl::forward(const AcousticBatch& batch) {
  const auto mask = batch.phones.ne(0).unsqueeze(-1).to(torch::kFloat);
  const auto hidden = encode(batch.phones, batch.context);
  AcousticOutput out;
  out.log_durations = duration_predictor(hidden, mask);
  out.pitch = pitch_predictor(hidden, mask);
  out.energy = energy_predictor(hidden, mask);
  out.frames = decode(hidden, batch.phone_pitch, batch.phone_energy, frame_index(batch.durations, batch.frames.size(1)),
                      mask);
  return out;
}

std::pair<torch::Tensor, torch::Tensor> AcousticModelImpl::infer(const torch::Tensor& phones,
                                                                 const torch::Tensor& context, double pace) {
  const auto mask = phones.ne(0).unsqueeze(-1).to(torch::kFloat);
  const auto hidden = encode(phones, context);
  auto durations = torch::round((torch::exp(duration_predictor(hidden, mask)) - 1) * pace).clamp_min(0).to(torch::kInt64);
  // Every spoken phone gets at least one frame; only a pause may vanish.
  durations = torch::where(phones.eq(kSilencePhone), durations, durations.clamp_min(1));
  const auto pitch = pitch_predictor(hidden, mask);
  const auto energy = energy_predictor(hidden, mask);
  const int64_t total = durations.sum().item<int64_t>();
  const int64_t r = options_.reduction;
  const int64_t frame_count = std::max<int64_t>(r, (total + r - 1) / r * r);
  auto frames = decode(hidden, pitch, energy, frame_index(durations, frame_count), mask);
  return {durations[0], frames[0].slice(0, 0, total)};
}

AcousticLoss acoustic_loss(const AcousticOutput& out, const AcousticBatch& batch) {
  // ref: FastSpeech 2 §3.1: L1 on the frame targets (mel there, vocoder features here), MSE on
  // the variance predictors; durations in the log domain (FastSpeech §3.3).
  const auto mask = batch.frame_mask.unsqueeze(-1);
  const auto frame_count = batch.frame_mask.sum().clamp_min(1);
  auto l1 = [&](int64_t from, int64_t n) {
    return ((out.frames.narrow(2, from, n) - batch.frames.narrow(2, from, n)).abs() * mask).sum() / (frame_count * n);
  };
  AcousticLoss loss;
  loss.mcep = l1(0, kMcepDims);
  loss.lf0 = l1(kLf0Index, 1);
  loss.bap = l1(kBapIndex, kBapDims);
  loss.voicing = F::binary_cross_entropy_with_logits(
      out.frames.select(2, kVoicingIndex), batch.frames.select(2, kVoicingIndex),
      F::BinaryCrossEntropyWithLogitsFuncOptions().weight(batch.frame_mask).reduction(torch::kSum)) / frame_count;
  const auto phone_mask = batch.phones.ne(0).to(torch::kFloat);
  const auto phone_count = phone_mask.sum().clamp_min(1);
  auto mse = [&](const torch::Tensor& predicted, const torch::Tensor& target) {
    return ((predicted - target).pow(2) * phone_mask).sum() / phone_count;
  };
  loss.duration = mse(out.log_durations, torch::log1p(batch.durations.to(torch::kFloat)));
  loss.pitch = mse(out.pitch, batch.phone_pitch);
  loss.energy = mse(out.energy, batch.phone_energy);
  loss.total = loss.mcep + loss.lf0 + loss.voicing + loss.bap + loss.duration + loss.pitch + loss.energy;
  return loss;
}

}  // namespace dself::voice
