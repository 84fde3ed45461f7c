// `exact_match` and `numeric_match`: the completion's final answer (or the
// whole completion) against the reference, as text or as a number. Stateless
// after construction; thread-safe.
#include <cmath>
#include <cstdlib>

#include "common/config.h"
#include "common/error.h"
#include "rewards/answer_extraction.h"
#include "rewards/reward.h"

namespace r1kit {
namespace {

struct MatchOptions {
  bool extract_answer = true;  // compare the extracted final answer; false = the whole completion
  bool case_sensitive = true;  // exact_match only
  double tolerance = 1e-6;     // numeric_match: absolute tolerance
  double relative_tolerance = 0.0;  // numeric_match: also accept |p - r| <= this * |r|; 0 = off

  void visit(ConfigVisitor& v) {
    v.field("extract_answer", extract_answer);
    v.field("case_sensitive", case_sensitive);
    v.field("tolerance", tolerance, {.min = 0.0});
    v.field("relative_tolerance", relative_tolerance, {.min = 0.0});
  }
};

// The text to compare and whether one was found.
std::optional<std::string> answer_text(const Sample& sample, bool extract) {
  if (!extract) return std::string(trim(sample.completion));
  std::optional<ExtractedAnswer> answer = extract_final_answer(sample.completion);
  if (!answer) return std::nullopt;
  return std::move(answer->text);
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "1,234.5", "$12", "50%", "-3" -> number; nullopt for anything else.
std::optional<double> parse_number(std::string_view text) {
  std::string clean;
  for (char c : trim(text)) {
    if (c == ',' || c == '$' || c == '%' || c == ' ') continue;
    clean += c;
  }
  while (!clean.empty() && clean.back() == '.') clean.pop_back();
  if (clean.empty()) return std::nullopt;
  char* end = nullptr;
  double value = std::strtod(clean.c_str(), &end);
  if (end != clean.c_str() + clean.size() || !std::isfinite(value)) return std::nullopt;
  return value;
}

class ExactMatchReward : public RewardFn {
 public:
  ExactMatchReward(const nlohmann::json& options, const std::string& source)
      : options_(read_config<MatchOptions>(options, source)) {}

  RewardResult score(const Sample& sample) const override {
    if (sample.reference.empty()) return {};
    std::optional<std::string> text = answer_text(sample, options_.extract_answer);
    if (!text) return {.value = 0.0, .components = {}, .info = {{"extracted", nullptr}}};
    std::string reference(trim(sample.reference));
    bool equal = options_.case_sensitive ? *text == reference : lower(*text) == lower(reference);
    return {.value = equal ? 1.0 : 0.0, .components = {}, .info = {{"extracted", *text}}};
  }

 private:
  MatchOptions options_;
};

class NumericMatchReward : public RewardFn {
 public:
  NumericMatchReward(const nlohmann::json& options, const std::string& source)
      : options_(read_config<MatchOptions>(options, source)) {}

  RewardResult score(const Sample& sample) const override {
    if (sample.reference.empty()) return {};
    std::optional<double> reference = parse_number(sample.reference);
    if (!reference)
      throw_data_error("numeric_match: reference \"" + sample.reference + "\" is not a number");
    std::optional<std::string> text = answer_text(sample, options_.extract_answer);
    std::optional<double> value = text ? parse_number(*text) : std::nullopt;
    if (!value) return {.value = 0.0, .components = {}, .info = {{"extracted", text ? *text : ""}}};
    double diff = std::fabs(*value - *reference);
    bool equal =
        diff <= options_.tolerance || diff <= options_.relative_tolerance * std::fabs(*reference);
    return {.value = equal ? 1.0 : 0.0, .components = {}, .info = {{"extracted", *text}}};
  }

 private:
  MatchOptions options_;
};

}  // namespace

REGISTER_REWARD("exact_match", ExactMatchReward);
REGISTER_REWARD("numeric_match", NumericMatchReward);

}  // namespace r1kit
