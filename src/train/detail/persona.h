// The persona model: a LoRA adapter of a chat checkpoint fine-tuned on the person's transcripts
// (docs/PERSONA.md, "Fine-tuning"). The data (persona_data.cpp) and the loop (persona_train.cpp).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/progress.h"
#include "llm/llm.h"
#include "persona/persona.h"

namespace dself::train {

// A training conversation: a question a visitor might ask and the person's own words.
struct PersonaConversation {
  std::string question;
  std::string reply;       // one or two consecutive sentences of one source
  std::string key_phrase;  // what the question asks about
};

struct PersonaData {
  std::vector<PersonaConversation> train;
  std::vector<std::string> held_out;  // the person's sentences never in a training reply
};

// Every tenth sentence of the memory (in its order) is held out; the others, in runs of
// consecutive kept sentences of one source, make replies of up to two sentences, each asked for
// by a question on its key phrase: the reply's distinctive phrase of the persona card when it
// has one, else its rarest content word over the person's sentences; the question's wording
// turns through four templates ("What can you tell me about X?", ...).
PersonaData persona_data(const persona::Memory& memory);

struct PersonaTrainOptions {
  std::filesystem::path avatar;
  std::filesystem::path base;  // the base checkpoint directory
  llm::LoraConfig lora;
  int steps = 0;                   // 0: two passes over the conversations, at most kMaxDefaultSteps
  double learning_rate = 1e-3;     // AdamW, after a linear warm-up over the first 5% of steps
  int max_tokens = 256;            // longest training conversation, tokens
  double time_budget_s = 0;        // this run; 0: none
  double checkpoint_every_s = 60;  // seconds between checkpoints while training
  int threads = 2;
  uint64_t seed = 1;
  ProgressSink progress;
  StopRequested should_stop;
};

struct PersonaTrainResult {
  bool complete = false;  // false: stopped (checkpointed)
  int steps_done = 0;
  int step_count = 0;
  double perplexity_before = 0;  // held-out sentences, base model
  double perplexity_after = 0;   // with the adapter
  double tokens_per_s = 0;       // training tokens (forward + backward) per second, this run
  int conversations = 0;
  int held_out_sentences = 0;
};

// What the adapter depends on: the person's sentences, the base checkpoint and the options
// that change the result (not threads or the budget). The catalog's input hash.
std::string persona_input_hash(const persona::Memory& memory, const PersonaTrainOptions& options);

// Trains (or resumes) the adapter into <avatar>/models/persona/: the PEFT adapter, metrics.json,
// held_out.txt; checkpoint/ while unfinished. Throws InputError for a bad base or options, or too
// few sentences.
PersonaTrainResult train_persona_adapter(const PersonaTrainOptions& options);

}  // namespace dself::train
