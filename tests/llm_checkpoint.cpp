#include "llm_checkpoint.h"

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <algorithm>
#include <utility>

#include "core/fs.h"
#include "llm/detail/model_impl.h"
#include "llm/llm.h"

namespace dself::test {

namespace fs = std::filesystem;

namespace {

const char* kChatMl =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou "
    "are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + "
    "message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt "
    "%}{{ '<|im_start|>assistant\\n' }}{% endif %}";

}  // namespace

fs::path write_tiny_chat_model(const fs::path& dir, int64_t context_length, double embedding_scale) {
  auto tokenizer = nlohmann::json::parse(read_file(fs::path(DSELF_TESTS_DIR) / "data/hf/bpe/llama3/tokenizer.json"));
  int64_t next = 0;
  for (const auto& [token, id] : tokenizer["model"]["vocab"].items())
    next = std::max<int64_t>(next, id.get<int64_t>() + 1);
  for (const auto& t : tokenizer["added_tokens"]) next = std::max<int64_t>(next, t["id"].get<int64_t>() + 1);
  const int64_t im_start = next, im_end = next + 1;
  for (auto [content, id] : {std::pair{"<|im_start|>", im_start}, std::pair{"<|im_end|>", im_end}}) {
    tokenizer["added_tokens"].push_back({{"id", id},
                                         {"content", content},
                                         {"single_word", false},
                                         {"lstrip", false},
                                         {"rstrip", false},
                                         {"normalized", false},
                                         {"special", true}});
  }
  llm::Config c;
  c.model_type = "llama";
  c.hidden_size = 32, c.intermediate_size = 64, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 8;
  c.vocab_size = im_end + 1, c.max_position_embeddings = 4096, c.tie_word_embeddings = true;
  c.rms_norm_eps = 1e-5;
  c.eos_token_ids = {im_end};
  auto model = llm::random_model(c, 3, context_length);
  if (embedding_scale != 1.0) {
    torch::NoGradGuard no_grad;
    for (auto& [name, t] : model.named_parameters())
      if (name == "model.embed_tokens.weight") t.mul_(embedding_scale);
  }
  model.save(dir);
  write_file_atomic(dir / "tokenizer.json", tokenizer.dump());
  write_file_atomic(dir / "tokenizer_config.json", nlohmann::json{{"chat_template", kChatMl}}.dump());
  return dir;
}

}  // namespace dself::test
