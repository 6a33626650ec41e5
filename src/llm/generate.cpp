// The generation loop: prefill what the cache lacks, then one token at a time.
#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"
#include "llm/llm.h"

#include <torch/types.h>

namespace dself::llm {

Generation generate(const Model& model, KvCache& cache, const std::vector<int64_t>& prompt,
                    const std::vector<int64_t>& stop_tokens, const GenerateParams& params,
                    const std::function<bool(int64_t)>& on_token) {
  torch::NoGradGuard no_grad;
  if (prompt.empty()) throw InputError("an empty prompt");
  Generation g;
  g.prompt_tokens = int64_t(prompt.size());
  // Keep the cache's common prefix with the prompt; at least one prompt token is computed anew,
  // for the logits of the next one.
  size_t common = 0;
  while (common < cache.tokens.size() && common < prompt.size() && cache.tokens[common] == prompt[common]) ++common;
  common = std::min(common, prompt.size() - 1);
  cache.length = int64_t(common);
  cache.tokens.resize(common);
  g.reused_tokens = int64_t(common);

  std::mt19937_64 rng(params.sampling.seed);
  auto logits = model.forward(std::vector<int64_t>(prompt.begin() + int64_t(common), prompt.end()), &cache);
  for (int i = 0; i < params.max_new_tokens; ++i) {
    const int64_t token = sample_token(logits[0], cache.tokens, params.sampling, rng);
    if (std::find(stop_tokens.begin(), stop_tokens.end(), token) != stop_tokens.end()) {
      g.stop_reason = "stop_token";
      return g;
    }
    g.tokens.push_back(token);
    if (on_token && !on_token(token)) {
      g.stop_reason = "callback";
      return g;
    }
    if (cache.length >= cache.capacity) {
      g.stop_reason = "context";
      return g;
    }
    logits = model.forward({token}, &cache);
  }
  g.stop_reason = "max_tokens";
  return g;
}

}  // namespace dself::llm

namespace dself::llm {

TextScore score_tokens(const Model& model, const std::vector<int64_t>& tokens) {
  torch::NoGradGuard no_grad;
  if (tokens.size() < 2) throw InputError("a text of fewer than 2 tokens has nothing to score");
  if (int64_t(tokens.size()) > model.context_length()) {
    throw InputError(fmt::format("a text of {} tokens is longer than the context length ({} tokens)", tokens.size(),
                                 model.context_length()));
  }
  auto logits = model.forward(tokens, nullptr, /*all_positions=*/true);
  auto log_probs = torch::log_softmax(logits.to(torch::kDouble), -1);
  TextScore score;
  for (size_t i = 0; i + 1 < tokens.size(); ++i) {
    score.log_probability += log_probs[int64_t(i)][tokens[i + 1]].item<double>();
  }
  score.token_count = int64_t(tokens.size()) - 1;
  return score;
}

}  // namespace dself::llm
