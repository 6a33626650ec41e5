#include "sample/detail/monologue.h"

#include <fmt/format.h>

#include "core/error.h"

namespace dself::sample {

namespace {

std::string_view trim(std::string_view s) {
  size_t begin = s.find_first_not_of(" \t\r");
  if (begin == std::string_view::npos) return {};
  size_t end = s.find_last_not_of(" \t\r");
  return s.substr(begin, end - begin + 1);
}

struct Block {
  std::string name;
  std::vector<std::string> sentences;
};

Topic to_topic(Block block) {
  Topic topic;
  topic.name = std::move(block.name);
  std::vector<std::string>& s = block.sentences;
  if (s.size() >= 3) {
    topic.greeting = s.front();
    topic.sign_off = s.back();
    topic.body.assign(s.begin() + 1, s.end() - 1);
  } else {
    topic.body = std::move(s);
  }
  return topic;
}

}  // namespace

std::vector<Topic> parse_monologue(std::string_view text) {
  constexpr std::string_view kTopicPrefix = "# topic:";
  std::vector<Block> blocks;
  int line_number = 0;
  while (!text.empty()) {
    size_t newline = text.find('\n');
    std::string_view line = trim(text.substr(0, newline));
    text = newline == std::string_view::npos ? std::string_view{} : text.substr(newline + 1);
    ++line_number;
    if (line.starts_with(kTopicPrefix)) {
      blocks.push_back(Block{std::string(trim(line.substr(kTopicPrefix.size()))), {}});
    } else if (line.empty() || line.starts_with('#')) {
      continue;
    } else if (blocks.empty()) {
      throw InputError(fmt::format("monologue line {}: a sentence before the first '# topic:' line", line_number));
    } else {
      blocks.back().sentences.emplace_back(line);
    }
  }
  std::vector<Topic> topics;
  for (Block& block : blocks) {
    if (!block.sentences.empty()) topics.push_back(to_topic(std::move(block)));
  }
  if (topics.empty()) throw InputError("the monologue has no topic with sentences");
  return topics;
}

}  // namespace dself::sample
