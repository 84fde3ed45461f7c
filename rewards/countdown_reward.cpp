// `countdown`: 1 when the <answer> expression uses the task's numbers (each at
// most once) and evaluates exactly to its target (TinyZero's countdown reward);
// reads metadata.numbers and metadata.target from the countdown environment.
// Stateless; thread-safe.
#include "common/countdown_check.h"
#include "common/error.h"
#include "rewards/answer_extraction.h"
#include "rewards/reward.h"

namespace r1kit {
namespace {

class CountdownReward : public RewardFn {
 public:
  RewardResult score(const Sample& sample) const override {
    const nlohmann::json& m = sample.metadata;
    if (!m.is_object() || !m.contains("numbers") || !m.contains("target"))
      return {};  // not a countdown task
    AnswerExtraction tag_only{
        .boxed = false, .answer_tag = true, .hashes = false, .answer_is = false};
    std::optional<ExtractedAnswer> answer = extract_final_answer(sample.completion, tag_only);
    if (!answer) return {.value = 0.0, .components = {}, .info = {{"reason", "no <answer> tag"}}};
    std::string expression = answer->text.substr(0, answer->text.find('='));
    CountdownVerdict verdict = check_countdown(expression, m["numbers"].get<std::vector<int64_t>>(),
                                               m["target"].get<int64_t>());
    return {.value = verdict.correct ? 1.0 : 0.0,
            .components = {},
            .info = {{"reason", verdict.reason}}};
  }
};

}  // namespace

REGISTER_REWARD("countdown", CountdownReward);

}  // namespace r1kit
