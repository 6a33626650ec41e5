// Tiny random chat checkpoints in the Hugging Face layout (config.json, model.safetensors,
// tokenizer.json, tokenizer_config.json with ChatML), for the tests that load one (test_llm_engine,
// test_persona_train). No real weights exist here: random ones wire things up.
#pragma once

#include <cstdint>
#include <filesystem>

namespace dself::test {

// A SmolLM-shaped model (llama, hidden 32, 2 layers, 4 heads over 2 key/value heads, tied
// embeddings) with the small byte-level BPE of tests/data/hf/bpe/llama3 plus ChatML's
// <|im_start|> and <|im_end|> (the stop token). `context_length`: its KV cache when made;
// `embedding_scale`: the token embeddings' std over 0.02 (10 gives logits of a real model's range,
// which a 32-wide model with tiny tied embeddings can barely move, whatever it learns).
std::filesystem::path write_tiny_chat_model(const std::filesystem::path& dir, int64_t context_length = 4096,
                                            double embedding_scale = 1.0);

}  // namespace dself::test
