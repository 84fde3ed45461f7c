// `math_answer`: 1 when the completion's final answer equals the task's
// reference, else 0. Extraction (rewards/answer_extraction.h) then a strict,
// asymmetric comparison (rewards/math_equivalence.h), after Hugging Face's
// Math-Verify. Stateless after construction; thread-safe.
#include "common/config.h"
#include "common/error.h"
#include "rewards/answer_extraction.h"
#include "rewards/math_equivalence.h"
#include "rewards/reward.h"

namespace r1kit {
namespace {

struct MathAnswerOptions {
  // Where to look for the answer, tried in this priority; any subset.
  std::vector<std::string> extract = {"boxed", "answer_tag", "hashes", "answer_is"};
  int64_t tail_chars = 4096;       // only the completion's last characters are searched; 0 = all
  double tolerance = 1e-6;         // see MathCompareOptions::tolerance
  int64_t max_answer_chars = 256;  // a longer extracted answer is wrong
  double correct = 1.0;            // score of a correct answer
  double wrong = 0.0;              // score of a wrong answer
  double no_answer = 0.0;          // score when no answer can be found

  void visit(ConfigVisitor& v) {
    v.field("extract", extract, {.choices = {"boxed", "answer_tag", "hashes", "answer_is"}});
    v.field("tail_chars", tail_chars, {.min = 0.0});
    v.field("tolerance", tolerance, {.min = 0.0});
    v.field("max_answer_chars", max_answer_chars, {.min = 1.0});
    v.field("correct", correct);
    v.field("wrong", wrong);
    v.field("no_answer", no_answer);
  }
};

bool has(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

class MathAnswerReward : public RewardFn {
 public:
  MathAnswerReward(const nlohmann::json& options, const std::string& source)
      : options_(read_config<MathAnswerOptions>(options, source)) {
    extraction_ = {.boxed = has(options_.extract, "boxed"),
                   .answer_tag = has(options_.extract, "answer_tag"),
                   .hashes = has(options_.extract, "hashes"),
                   .answer_is = has(options_.extract, "answer_is"),
                   .tail_chars = static_cast<size_t>(options_.tail_chars)};
    compare_ = {.tolerance = options_.tolerance,
                .max_answer_chars = static_cast<size_t>(options_.max_answer_chars)};
  }

  RewardResult score(const Sample& sample) const override {
    if (sample.reference.empty()) return {};  // nothing to check against: not applicable
    std::optional<ExtractedAnswer> answer = extract_final_answer(sample.completion, extraction_);
    if (!answer)
      return {.value = options_.no_answer, .components = {{"has_answer", 0.0}}, .info = {}};
    bool correct = math_answers_equal(answer->text, sample.reference, compare_);
    return {.value = correct ? options_.correct : options_.wrong,
            .components = {{"has_answer", 1.0}},
            .info = {{"extracted", answer->text}, {"method", answer->method}}};
  }

 private:
  MathAnswerOptions options_;
  AnswerExtraction extraction_;
  MathCompareOptions compare_;
};

}  // namespace

REGISTER_REWARD("math_answer", MathAnswerReward);

}  // namespace r1kit
