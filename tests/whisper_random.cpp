#include "whisper_random.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "hf/checkpoint.h"
#include "whisper/detail/model.h"

namespace dself::test {

using namespace dself::whisper;

std::filesystem::path write_random_whisper(const std::filesystem::path& dir, bool multilingual, uint64_t seed) {
  namespace fs = std::filesystem;
  const auto bpe = fs::path(DSELF_TESTS_DIR) / "data/hf/bpe";
  fs::create_directories(dir);
  fs::copy_file(bpe / "vocab.json", dir / "vocab.json", fs::copy_options::overwrite_existing);
  fs::copy_file(bpe / "merges.txt", dir / "merges.txt", fs::copy_options::overwrite_existing);
  int32_t id = 491;
  nlohmann::json added = nlohmann::json::object();
  for (const char* name : {"<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|de|>", "<|translate|>",
                           "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"})
    added[name] = id++;
  for (int i = 0; i <= 100; ++i) added[fmt::format("<|{:.2f}|>", i * 0.02)] = id++;
  dself::write_file_atomic(dir / "added_tokens.json", added.dump());
  dself::write_file_atomic(dir / "generation_config.json", nlohmann::json{{"is_multilingual", multilingual}}.dump());
  const nlohmann::json config = {{"model_type", "whisper"},
                                 {"num_mel_bins", 80},
                                 {"d_model", 32},
                                 {"encoder_layers", 2},
                                 {"encoder_attention_heads", 4},
                                 {"decoder_layers", 2},
                                 {"decoder_attention_heads", 4},
                                 {"encoder_ffn_dim", 128},
                                 {"decoder_ffn_dim", 128},
                                 {"vocab_size", id},
                                 {"max_source_positions", 100},
                                 {"max_target_positions", 64},
                                 {"activation_function", "gelu"}};
  torch::manual_seed(seed);
  Whisper model(WhisperConfig::from_json(config, "test"));
  dself::hf::write_checkpoint(dir, config, whisper_tensors(model));
  return dir;
}

}  // namespace dself::test
