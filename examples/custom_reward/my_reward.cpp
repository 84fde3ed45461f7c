// `keywords`: the fraction of a task's keywords that the completion mentions,
// a custom C++ reward in one file. The keywords come from the recipe's options
// or, per task, from metadata.keywords. REGISTER_REWARD adds it to r1kit's
// registry when r1kit loads this library (`r1kit reward --plugin LIB.so`).
// Stateless after construction, so score() is thread-safe as required.
#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "common/config.h"
#include "rewards/reward.h"

namespace {

struct KeywordsOptions {
  std::vector<std::string> keywords;  // words to look for; [] = metadata.keywords of each task
  bool case_sensitive = false;        // match "Paris" only as "Paris"

  void visit(r1kit::ConfigVisitor& v) {
    v.field("keywords", keywords);
    v.field("case_sensitive", case_sensitive);
  }
};

class KeywordsReward : public r1kit::RewardFn {
 public:
  // Options are validated like any recipe section: an unknown key or a wrong
  // type is an error that names the recipe file and the key path.
  KeywordsReward(const nlohmann::json& options, const std::string& source)
      : options_(r1kit::read_config<KeywordsOptions>(options, source)) {}

  r1kit::RewardResult score(const r1kit::Sample& sample) const override {
    std::vector<std::string> keywords = options_.keywords;
    if (keywords.empty() && sample.metadata.contains("keywords")) {
      keywords = sample.metadata["keywords"]
                     .get<std::vector<std::string>>();  // throws on a bad type: counted as an error
    }
    if (keywords.empty()) return {};  // nothing to look for: not applicable
    const std::string text = fold(sample.completion);
    int hits = 0;
    for (const std::string& keyword : keywords)
      hits += text.find(fold(keyword)) != std::string::npos;
    return {.value = static_cast<double>(hits) / static_cast<double>(keywords.size()),
            .components = {{"hits", static_cast<double>(hits)}},
            .info = {{"keywords", keywords.size()}}};
  }

 private:
  std::string fold(std::string text) const {
    if (!options_.case_sensitive) {
      std::transform(text.begin(), text.end(), text.begin(),
                     [](unsigned char c) { return std::tolower(c); });
    }
    return text;
  }

  KeywordsOptions options_;
};

}  // namespace

REGISTER_REWARD("keywords", KeywordsReward);
