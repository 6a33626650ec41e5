// The local chat model's speed at the real shapes of SmolLM2-135M and Qwen2.5-0.5B, with random
// weights (no checkpoint is downloaded): prefill of a 1,000-token prompt, decode tokens/s, and the
// process's memory after short and long conversations (the cache is allocated once, so it should
// not grow); then LoRA training tokens/s at the SmolLM2-135M shape (forward, backward and AdamW on
// 256-token conversations, the base frozen). Usage: bench_llm [THREADS=2] [DECODE_TOKENS=64]
// [LORA_STEPS=3] (DECODE_TOKENS 0: LoRA training only). Prints tables; asserts nothing.
#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>

#include "llm/detail/model_impl.h"
#include "llm/llm.h"

using namespace dself;
using Clock = std::chrono::steady_clock;

namespace {

long rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      long v = 0;
      in >> v;
      return v;
    }
    in.ignore(1 << 12, '\n');
  }
  return 0;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// ref: the checkpoints' config.json (HuggingFaceTB/SmolLM2-135M-Instruct, Qwen/Qwen2.5-0.5B-Instruct).
llm::Config smollm2_135m() {
  llm::Config c;
  c.model_type = "llama";
  c.hidden_size = 576, c.intermediate_size = 1536, c.n_layers = 30, c.n_heads = 9, c.n_kv_heads = 3, c.head_dim = 64;
  c.rms_norm_eps = 1e-5, c.rope_theta = 100000, c.max_position_embeddings = 8192, c.vocab_size = 49152;
  c.tie_word_embeddings = true;
  return c;
}
llm::Config qwen25_05b() {
  llm::Config c;
  c.model_type = "qwen2";
  c.hidden_size = 896, c.intermediate_size = 4864, c.n_layers = 24, c.n_heads = 14, c.n_kv_heads = 2, c.head_dim = 64;
  c.rms_norm_eps = 1e-6, c.rope_theta = 1000000, c.max_position_embeddings = 32768, c.vocab_size = 151936;
  c.tie_word_embeddings = true, c.attention_bias = true;
  return c;
}

// One product with gradients at a SmolLM2-135M MLP shape (256 tokens × 576 → 1536, the weight
// frozen): forward and backward through torch::matmul (Debian's reference BLAS) against
// llm::matmul_nt (oneDNN both ways), the change that makes LoRA training usable on a CPU.
void bench_product_with_gradients() {
  auto w = torch::randn({1536, 576}) * 0.02;
  auto x = torch::randn({256, 576}, torch::requires_grad());
  auto time = [&](const std::function<torch::Tensor()>& product) {
    product().sum().backward();  // warm up
    const auto t0 = Clock::now();
    const int n = 5;
    for (int i = 0; i < n; ++i) product().sum().backward();
    return seconds_since(t0) / n;
  };
  const double torch_s = time([&] { return torch::matmul(x, w.t()); });
  const double dself_s = time([&] { return llm::matmul_nt(x, w); });
  const double flop = 2.0 * 2 * 256 * 576 * 1536;  // forward and the input's gradient
  std::printf("\nproduct with gradients, 256x576 by 1536x576 (forward + input gradient)\n%-20s %10s %10s\n", "",
              "ms", "GFLOPS");
  std::printf("%-20s %10.1f %10.1f\n%-20s %10.1f %10.1f\n", "torch::matmul", 1e3 * torch_s, flop / torch_s / 1e9,
              "llm::matmul_nt", 1e3 * dself_s, flop / dself_s / 1e9);
}

// LoRA training steps on one 256-token conversation (the last 200 tokens predicted): tokens/s.
void bench_lora(const llm::Config& config, int steps) {
  auto model = llm::random_model(config, 1, 512);
  llm::TrainingExample example;
  for (int i = 0; i < 256; ++i) {
    example.tokens.push_back(int64_t((i * 7919 + 13) % config.vocab_size));
    example.predicted.push_back(i >= 56 ? 1 : 0);
  }
  std::printf("\nLoRA training, SmolLM2-135M shape, %zu-token conversations\n%-36s %10s %10s %10s\n",
              example.tokens.size(), "targets (r 8, alpha 16)", "lora_M", "step_s", "tokens/s");
  for (const auto& targets : {std::vector<std::string>{"q_proj", "v_proj"}, llm::lora_target_modules()}) {
    llm::LoraConfig lora;
    lora.target_modules = targets;
    auto adapter = llm::new_adapter(model, lora, 1);
    int64_t parameters = 0;
    for (auto& [name, t] : adapter.tensors) t.set_requires_grad(true), parameters += t.numel();
    llm::apply_adapter(model, adapter);
    llm::AdamW adam;
    auto gen = at::detail::createCPUGenerator(1);
    auto step = [&] {
      auto loss = llm::training_loss(model, example, lora.dropout, &gen);
      loss.backward();
      adam.update(adapter.tensors, 1e-4);
    };
    step();  // warm up
    const auto t0 = Clock::now();
    for (int i = 0; i < steps; ++i) step();
    const double step_s = seconds_since(t0) / steps;
    std::printf("%-36s %10.2f %10.2f %10.0f\n", fmt::format("{}", fmt::join(targets, ",")).c_str(), parameters / 1e6,
                step_s, double(example.tokens.size()) / step_s);
    llm::remove_adapter(model);
  }
}

void bench_inference(int threads, int decode_tokens) {
  torch::NoGradGuard no_grad;
  std::printf("threads %d\n%-16s %8s %10s %10s %11s %12s %12s\n", threads, "shape", "params_M", "prefill_s",
              "prefill_t/s", "decode_t/s", "rss_300_MiB", "rss_900_MiB");
  for (const auto& [name, config] : {std::pair{"SmolLM2-135M", smollm2_135m()}, std::pair{"Qwen2.5-0.5B", qwen25_05b()}}) {
    const int64_t context = 2048;
    auto model = llm::random_model(config, 1, context);
    std::fprintf(stderr, "%s: weights made\n", name);
    llm::KvCache cache(model);
    std::vector<int64_t> prompt(1000);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int64_t((i * 7919) % size_t(config.vocab_size));
    model.forward({1}, &cache);  // warm up
    cache.clear();

    auto t0 = Clock::now();
    auto logits = model.forward(prompt, &cache);
    const double prefill_s = seconds_since(t0);
    std::fprintf(stderr, "%s: prefill %.3f s\n", name, prefill_s);

    llm::SamplingParams sampling;
    std::mt19937_64 rng(1);
    t0 = Clock::now();
    for (int i = 0; i < decode_tokens; ++i) {
      const int64_t token = llm::sample_token(logits[0], cache.tokens, sampling, rng);
      logits = model.forward({token}, &cache);
    }
    const double decode_s = seconds_since(t0);

    // A short conversation against a long one, in the same cache: memory must not follow length.
    cache.clear();
    model.forward(std::vector<int64_t>(prompt.begin(), prompt.begin() + 300), &cache);
    const long short_rss = rss_kib();
    for (int turn = 0; turn < 3; ++turn) {
      model.forward(std::vector<int64_t>(prompt.begin(), prompt.begin() + 200), &cache);
    }
    const long long_rss = rss_kib();
    std::printf("%-16s %8.1f %10.3f %10.0f %11.1f %12.0f %12.0f\n", name, config.parameter_count() / 1e6, prefill_s,
                1000 / prefill_s, decode_tokens / decode_s, short_rss / 1024.0, long_rss / 1024.0);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const int decode_tokens = argc > 2 ? std::atoi(argv[2]) : 64;
  const int lora_steps = argc > 3 ? std::atoi(argv[3]) : 3;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  torch::set_num_threads(threads);
  if (decode_tokens > 0) bench_inference(threads, decode_tokens);
  if (lora_steps > 0) {
    bench_product_with_gradients();
    bench_lora(smollm2_135m(), lora_steps);
  }
  return 0;
}
