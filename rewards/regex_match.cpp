// `regex_match`: scores a completion by an ECMAScript regular expression, for
// format checks and shaping rewards without writing code. Modes: "search"
// (1 when the pattern occurs), "full" (1 when the whole completion matches)
// and "count" (occurrences per completion byte, in [0, 1] for one-character
// patterns). Stateless after construction; thread-safe.
#include <regex>

#include "common/config.h"
#include "common/error.h"
#include "rewards/reward.h"

namespace r1kit {
namespace {

struct RegexMatchOptions {
  std::string pattern;          // ECMAScript syntax; required
  std::string mode = "search";  // search | full | count

  void visit(ConfigVisitor& v) {
    v.field("pattern", pattern, {.required = true});
    v.field("mode", mode, {.choices = {"search", "full", "count"}});
  }
};

class RegexMatchReward : public RewardFn {
 public:
  RegexMatchReward(const nlohmann::json& options, const std::string& source)
      : options_(read_config<RegexMatchOptions>(options, source)) {
    try {
      regex_ = std::regex(options_.pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      throw_config_error(source + ": pattern: invalid regular expression \"" + options_.pattern +
                         "\": " + e.what());
    }
  }

  RewardResult score(const Sample& sample) const override {
    const std::string& text = sample.completion;
    if (options_.mode == "full") return {.value = std::regex_match(text, regex_) ? 1.0 : 0.0};
    if (options_.mode == "search") return {.value = std::regex_search(text, regex_) ? 1.0 : 0.0};
    auto begin = std::sregex_iterator(text.begin(), text.end(), regex_);
    double count = static_cast<double>(std::distance(begin, std::sregex_iterator()));
    return {.value = text.empty() ? 0.0 : count / static_cast<double>(text.size())};
  }

 private:
  RegexMatchOptions options_;
  std::regex regex_;
};

}  // namespace

REGISTER_REWARD("regex_match", RegexMatchReward);

}  // namespace r1kit
