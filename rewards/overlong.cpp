// `overlong`: DAPO's soft overlong punishment (Yu et al. 2025, "DAPO", eq. 13):
// 0 up to max_completion_length - len tokens, then a linear ramp down to
// -penalty_factor at max_completion_length, and -penalty_factor beyond it.
// verl names the knobs overlong_buffer.len and .penalty_factor. Thread-safe.
#include "common/config.h"
#include "common/error.h"
#include "rewards/reward.h"

namespace r1kit {
namespace {

struct OverlongOptions {
  int64_t max_completion_length =
      0;            // tokens; the generation limit (TRL's max_completion_length); required
  int64_t len = 0;  // tokens of the soft buffer before the limit; required, <= the limit
  double penalty_factor = 1.0;  // the penalty at and past the limit

  void visit(ConfigVisitor& v) {
    v.field("max_completion_length", max_completion_length, {.min = 1.0, .required = true});
    v.field("len", len, {.min = 1.0, .required = true});
    v.field("penalty_factor", penalty_factor, {.min = 0.0});
    if (len > max_completion_length) v.fail("len", "must be <= max_completion_length");
  }
};

class OverlongReward : public RewardFn {
 public:
  OverlongReward(const nlohmann::json& options, const std::string& source)
      : options_(read_config<OverlongOptions>(options, source)) {}

  RewardResult score(const Sample& sample) const override {
    int64_t length = completion_length(sample);
    int64_t soft_start = options_.max_completion_length - options_.len;
    double value = 0.0;
    if (length > options_.max_completion_length) {
      value = -options_.penalty_factor;
    } else if (length > soft_start) {
      value = -options_.penalty_factor * static_cast<double>(length - soft_start) /
              static_cast<double>(options_.len);
    }
    return {.value = value, .components = {}, .info = {{"length", length}}};
  }

 private:
  // Token count: the ids when given, else metadata.completion_length.
  static int64_t completion_length(const Sample& sample) {
    if (!sample.completion_ids.empty() || sample.completion.empty()) {
      return static_cast<int64_t>(sample.completion_ids.size());
    }
    if (sample.metadata.is_object() && sample.metadata.contains("completion_length") &&
        sample.metadata["completion_length"].is_number_integer()) {
      return sample.metadata["completion_length"].get<int64_t>();
    }
    throw_data_error(
        "overlong: the sample has no completion_ids and no metadata.completion_length");
  }

  OverlongOptions options_;
};

}  // namespace

REGISTER_REWARD("overlong", OverlongReward);

}  // namespace r1kit
