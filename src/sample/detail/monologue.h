// The monologue the sample person speaks: topic blocks of sentences (src/sample/monologue.txt,
// built into the binary).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dself::sample {

// One topic block. Blocks of three or more sentences open with a greeting and close with a
// sign-off; the sentences between them are the body, in the order they are spoken.
struct Topic {
  std::string name;
  std::optional<std::string> greeting;
  std::vector<std::string> body;
  std::optional<std::string> sign_off;
};

// The text of monologue.txt, embedded at build time.
std::string_view monologue_text();

// Parses "# topic: NAME" lines, each followed by one sentence per line; blank lines and other
// '#' lines are ignored. Throws InputError naming the line for a sentence before any topic.
std::vector<Topic> parse_monologue(std::string_view text);

}  // namespace dself::sample
