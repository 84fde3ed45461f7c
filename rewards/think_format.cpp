// `think_format`: 1 when the completion follows the DeepSeek-R1 template
// "<think> reasoning </think> <answer> answer </answer>" (DeepSeek-AI 2025,
// R1-Zero's format reward): each tag exactly once, in order, only whitespace
// around them. Stateless after construction; thread-safe.
#include "common/config.h"
#include "rewards/answer_extraction.h"
#include "rewards/reward.h"

namespace r1kit {
namespace {

struct ThinkFormatOptions {
  // The prompt already opened "<think>" (a prefilled template): the completion
  // starts inside the reasoning and must not open it again.
  bool think_in_prompt = false;
  // false: "<think>...</think>" then any non-empty answer text also passes.
  bool require_answer_tag = true;

  void visit(ConfigVisitor& v) {
    v.field("think_in_prompt", think_in_prompt);
    v.field("require_answer_tag", require_answer_tag);
  }
};

size_t count(std::string_view text, std::string_view needle) {
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string_view::npos;
       pos = text.find(needle, pos + 1))
    ++n;
  return n;
}

class ThinkFormatReward : public RewardFn {
 public:
  ThinkFormatReward(const nlohmann::json& options, const std::string& source)
      : options_(read_config<ThinkFormatOptions>(options, source)) {}

  RewardResult score(const Sample& sample) const override {
    return {.value = follows(sample.completion) ? 1.0 : 0.0};
  }

 private:
  bool follows(std::string_view text) const {
    text = trim(text);
    if (count(text, "<think>") != (options_.think_in_prompt ? 0u : 1u) ||
        count(text, "</think>") != 1)
      return false;
    if (!options_.think_in_prompt) {
      if (!text.starts_with("<think>")) return false;
      text.remove_prefix(7);
    }
    size_t close = text.find("</think>");
    if (trim(text.substr(0, close)).empty()) return false;  // no reasoning
    std::string_view after = trim(text.substr(close + 8));
    if (!options_.require_answer_tag) return !after.empty() && count(after, "<answer>") <= 1;
    if (count(after, "<answer>") != 1 || count(after, "</answer>") != 1) return false;
    if (!after.starts_with("<answer>") || !after.ends_with("</answer>")) return false;
    return !trim(after.substr(8, after.size() - 8 - 9)).empty();
  }

  ThinkFormatOptions options_;
};

}  // namespace

REGISTER_REWARD("think_format", ThinkFormatReward);

}  // namespace r1kit
