// Choosing the next token from the model's logits.
// ref: HF generation's logits processors, applied in this order: RepetitionPenaltyLogitsProcessor
// (CTRL, Keskar et al. 2019 §4.1), TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper
// (Holtzman et al. 2019: the smallest set of most likely tokens whose probability reaches p,
// always at least one), then a draw from the softmax.
#include <fmt/format.h>

#include <set>

#include "core/error.h"
#include "llm/llm.h"

#include <torch/types.h>

namespace dself::llm {

namespace {

void check_params(const SamplingParams& p) {
  if (!(p.temperature >= 0)) throw InputError(fmt::format("temperature must be 0 or more, not {}", p.temperature));
  if (p.top_k < 0) throw InputError(fmt::format("top-k must be 0 (off) or more, not {}", p.top_k));
  if (!(p.top_p > 0 && p.top_p <= 1)) throw InputError(fmt::format("top-p must be in (0, 1], not {}", p.top_p));
  if (!(p.repetition_penalty > 0)) {
    throw InputError(fmt::format("repetition penalty must be positive, not {}", p.repetition_penalty));
  }
}

torch::Tensor penalised(const torch::Tensor& logits, const std::vector<int64_t>& context, double penalty) {
  auto out = logits.detach().to(torch::kFloat).reshape({-1}).clone();
  if (penalty == 1.0 || context.empty()) return out;
  const int64_t vocab = out.size(0);
  auto* v = out.data_ptr<float>();
  for (int64_t t : std::set<int64_t>(context.begin(), context.end())) {
    if (t < 0 || t >= vocab) continue;
    v[t] = v[t] > 0 ? float(v[t] / penalty) : float(v[t] * penalty);
  }
  return out;
}

}  // namespace

torch::Tensor sampling_distribution(const torch::Tensor& logits, const std::vector<int64_t>& context,
                                    const SamplingParams& params) {
  check_params(params);
  auto scores = penalised(logits, context, params.repetition_penalty);
  const int64_t vocab = scores.size(0);
  if (params.temperature == 0) {
    auto probs = torch::zeros({vocab});
    probs[scores.argmax().item<int64_t>()] = 1.0f;
    return probs;
  }
  scores = scores / params.temperature;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  if (params.top_k > 0 && params.top_k < vocab) {
    auto kth = std::get<0>(scores.topk(params.top_k)).min();
    scores = scores.masked_fill(scores < kth, neg_inf);
  }
  if (params.top_p < 1) {
    auto [sorted, order] = scores.sort(/*dim=*/0, /*descending=*/true);
    auto cumulative = torch::softmax(sorted, 0).cumsum(0);
    // Drop a token when the tokens before it already reach top_p; the first always stays.
    auto remove = (cumulative - torch::softmax(sorted, 0)) >= params.top_p;
    auto removed = torch::zeros({vocab}, torch::kBool).scatter(0, order, remove);
    scores = scores.masked_fill(removed, neg_inf);
  }
  return torch::softmax(scores, 0);
}

int64_t sample_token(const torch::Tensor& logits, const std::vector<int64_t>& context, const SamplingParams& params,
                     std::mt19937_64& rng) {
  auto probs = sampling_distribution(logits, context, params).contiguous();
  const float* p = probs.data_ptr<float>();
  const int64_t vocab = probs.size(0);
  // One uniform draw from our own generator (not torch's global one): the same seed gives the
  // same tokens whatever else runs in the process.
  const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  double sum = 0;
  int64_t last = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    if (p[i] <= 0) continue;
    last = i;
    sum += p[i];
    if (u < sum) return i;
  }
  return last;
}

}  // namespace dself::llm
