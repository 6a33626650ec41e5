// Whisper's speed on the CPU at the real tiny.en and base.en shapes (random weights: the speed of
// a network does not depend on its values): the encoder on one 30 s window, and the decoder's
// time per token with the key/value cache, on 1 and 2 threads. Prints a table (docs/BENCHMARKS.md).
// Usage: bench_whisper [--tokens N] [--repeats R] [--threads T (default: 1, then 2)]
//        bench_whisper --write-checkpoint DIR: a small random Whisper (d_model 64, 30 s windows)
//        with a Whisper-style tokenizer, for timing and memory of `dself transcribe` on long audio.
//        bench_whisper --train [--threads T] [--repeats R]: the cost of a fine-tuning step (docs/STT.md,
//        "Fine-tuning Whisper"): a decoder step (forward, backward, AdamW) on 30 tokens against the
//        encoder's pass on one 30 s window, with and without gradients, and the parameters of each.
// A BLAS with threads of its own (OpenBLAS) also reads OPENBLAS_NUM_THREADS: set it to T.
#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/fs.h"
#include "hf/checkpoint.h"
#include "whisper/detail/model.h"

using namespace dself::whisper;

namespace {

WhisperConfig shape(int d, int layers, int heads) {
  nlohmann::json json = {{"model_type", "whisper"},
                         {"num_mel_bins", 80},
                         {"d_model", d},
                         {"encoder_layers", layers},
                         {"encoder_attention_heads", heads},
                         {"decoder_layers", layers},
                         {"decoder_attention_heads", heads},
                         {"encoder_ffn_dim", 4 * d},
                         {"decoder_ffn_dim", 4 * d},
                         {"vocab_size", 51864},
                         {"max_source_positions", 1500},
                         {"max_target_positions", 448}};
  return WhisperConfig::from_json(json, "bench");
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The tests' small BPE (tests/data/hf/bpe), Whisper's special tokens after it in Whisper's order,
// and the timestamps <|0.00|> … <|30.00|>; random weights (seed 0).
void write_checkpoint(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  const fs::path bpe = DSELF_BPE_DIR;
  fs::create_directories(dir);
  fs::copy_file(bpe / "vocab.json", dir / "vocab.json", fs::copy_options::overwrite_existing);
  fs::copy_file(bpe / "merges.txt", dir / "merges.txt", fs::copy_options::overwrite_existing);
  int id = 491;
  nlohmann::json added = nlohmann::json::object();
  for (const char* name : {"<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|de|>", "<|translate|>",
                           "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"})
    added[name] = id++;
  for (int i = 0; i <= 1500; ++i) added[fmt::format("<|{:.2f}|>", i * 0.02)] = id++;
  dself::write_file_atomic(dir / "added_tokens.json", added.dump());
  dself::write_file_atomic(dir / "generation_config.json", R"({"is_multilingual": false})");
  auto config = shape(64, 2, 4).json;
  config["vocab_size"] = id;
  torch::manual_seed(0);
  Whisper model(WhisperConfig::from_json(config, "bench"));
  dself::hf::write_checkpoint(dir, config, whisper_tensors(model));
}

int64_t parameter_count(torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

// One fine-tuning step as whisper::fine_tune takes it (teacher forcing, cross-entropy, AdamW on
// the decoder) against what the encoder costs per clip: a pass without gradients (done once per
// clip when frozen) and a pass with its backward (every step when trained).
void bench_train(int threads, int repeats) {
  torch::set_num_threads(threads);
  fmt::print("{:<8} {:>7} {:>12} {:>12} {:>14} {:>16} {:>12} {:>12}\n", "model", "threads", "encoder 30s",
             "encoder+bwd", "decoder step", "(30 tokens)", "enc params", "dec params");
  struct Named {
    const char* name;
    WhisperConfig config;
  };
  for (const auto& [name, config] : {Named{"tiny.en", shape(384, 4, 6)}, Named{"base.en", shape(512, 6, 8)}}) {
    torch::manual_seed(0);
    Whisper model(config);
    const auto mel = torch::randn({1, 80, 3000});
    torch::Tensor features;
    double encoder_s = 1e9, encoder_train_s = 1e9, step_s = 1e9;
    for (int r = 0; r < repeats; ++r) {
      auto t = std::chrono::steady_clock::now();
      {
        torch::NoGradGuard no_grad;
        features = model->encoder->forward(mel);
      }
      encoder_s = std::min(encoder_s, seconds_since(t));
      t = std::chrono::steady_clock::now();
      model->encoder->zero_grad();
      model->encoder->forward(mel).sum().backward();
      encoder_train_s = std::min(encoder_train_s, seconds_since(t));
    }
    for (auto& p : model->encoder->parameters()) p.set_requires_grad(false);
    torch::optim::AdamW optimizer(model->decoder->parameters(), torch::optim::AdamWOptions(1e-5));
    const auto tokens = torch::randint(0, 50000, {1, 30}, torch::kLong);
    const auto target = torch::randint(0, 50000, {30}, torch::kLong);
    for (int r = 0; r < repeats + 1; ++r) {  // the first builds AdamW's state
      const auto t = std::chrono::steady_clock::now();
      auto cache = model->decoder->start(features);
      const auto loss = torch::nn::functional::cross_entropy(model->decoder->forward(tokens, cache)[0], target);
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      if (r > 0) step_s = std::min(step_s, seconds_since(t));
    }
    fmt::print("{:<8} {:>7} {:>10.0f}ms {:>10.0f}ms {:>12.0f}ms {:>16} {:>11.1f}M {:>11.1f}M\n", name, threads,
               1000 * encoder_s, 1000 * encoder_train_s, 1000 * step_s, "", parameter_count(*model->encoder) / 1e6,
               parameter_count(*model->decoder) / 1e6);
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && !std::strcmp(argv[1], "--write-checkpoint")) {
    write_checkpoint(argv[2]);
    return 0;
  }
  int n_tokens = 64, repeats = 2;
  std::vector<int> thread_counts{1, 2};
  bool train = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--train")) {
      train = true;
      continue;
    }
    if (i + 1 >= argc) break;
    if (!std::strcmp(argv[i], "--tokens")) n_tokens = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--repeats")) repeats = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--threads")) thread_counts = {std::atoi(argv[i + 1])};
    ++i;
  }
  if (train) {
    for (int threads : thread_counts) bench_train(threads, repeats);
    return 0;
  }
  torch::NoGradGuard no_grad;
  fmt::print("{:<8} {:>7} {:>14} {:>12} {:>16} {:>20}\n", "model", "threads", "encoder 30 s", "decoder", "x real time",
             "(3 tokens/s of audio)");
  struct Named {
    const char* name;
    WhisperConfig config;
  };
  for (const auto& [name, config] : {Named{"tiny.en", shape(384, 4, 6)}, Named{"base.en", shape(512, 6, 8)}}) {
    torch::manual_seed(0);
    Whisper model(config);
    model->eval();
    const auto mel = torch::randn({1, 80, 3000});
    for (int threads : thread_counts) {
      torch::set_num_threads(threads);
      model->encoder->forward(mel);  // warm up
      double encoder_s = 1e9, per_token_s = 1e9;
      for (int r = 0; r < repeats; ++r) {
        auto t = std::chrono::steady_clock::now();
        const auto audio = model->encoder->forward(mel);
        encoder_s = std::min(encoder_s, seconds_since(t));
        auto cache = model->decoder->start(audio);
        model->decoder->forward(torch::tensor({int64_t(50257), int64_t(50362)}).view({1, 2}), cache);
        t = std::chrono::steady_clock::now();
        int64_t token = 440;
        for (int i = 0; i < n_tokens; ++i)
          token = model->decoder->forward(torch::tensor({token}).view({1, 1}), cache)[0][0].argmax().item<int64_t>();
        per_token_s = std::min(per_token_s, seconds_since(t) / n_tokens);
      }
      // A 30 s window of ordinary speech: one encoder pass and about 90 tokens (3 per second).
      const double window_s = encoder_s + 90 * per_token_s;
      fmt::print("{:<8} {:>7} {:>12.0f}ms {:>9.1f}ms/t {:>15.1f}x\n", name, threads, 1000 * encoder_s,
                 1000 * per_token_s, 30.0 / window_s);
      std::fflush(stdout);
    }
  }
}
