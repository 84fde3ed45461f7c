#include "rollout/logits_processor.h"

#include <algorithm>

#include "common/error.h"

namespace r1kit {

Registry<LogitsProcessorFactory>& logits_processor_registry() {
  static Registry<LogitsProcessorFactory> registry("logits processor");
  return registry;
}

const std::vector<std::string>& default_logits_processor_order() {
  static const std::vector<std::string> order = {"repetition_penalty",
                                                 "banned_token_ids",
                                                 "mask_padded_vocab",
                                                 "temperature",
                                                 "top_k",
                                                 "top_p",
                                                 "min_p"};
  return order;
}

std::string logits_processor_order_problem(const SamplingParams& params) {
  const std::vector<std::string>& order = params.logits_processors;
  if (order.empty()) return "";
  const Registry<LogitsProcessorFactory>& registry = logits_processor_registry();
  for (size_t i = 0; i < order.size(); ++i) {
    if (!registry.contains(order[i])) {
      try {
        registry.get(order[i]);
      } catch (const Error& e) {
        return e.what();
      }
    }
    if (std::find(order.begin(), order.begin() + i, order[i]) != order.begin() + i)
      return "\"" + order[i] + "\" is listed twice";
  }
  if (std::find(order.begin(), order.end(), "temperature") == order.end())
    return "must list \"temperature\": the logprobs and the learner divide the logits by it";
  for (const auto& name : default_logits_processor_order()) {
    if (std::find(order.begin(), order.end(), name) != order.end()) continue;
    if (registry.get(name)(params)) return name + " is set but the list leaves it out";
  }
  return "";
}

LogitsProcessorChain::LogitsProcessorChain(const SamplingParams& params) {
  const std::vector<std::string>& order = params.logits_processors.empty()
                                              ? default_logits_processor_order()
                                              : params.logits_processors;
  for (const auto& name : order) {
    std::shared_ptr<const LogitsProcessor> processor =
        logits_processor_registry().get(name, "sampling: logits_processors")(params);
    if (!processor) continue;
    names_.push_back(name);
    processors_.push_back(std::move(processor));
  }
}

at::Tensor LogitsProcessorChain::apply(const at::Tensor& logits, const LogitsContext& context,
                                       size_t first) const {
  at::Tensor processed = logits;
  for (size_t i = first; i < processors_.size(); ++i)
    processed = processors_[i]->apply(processed, context);
  return processed;
}

}  // namespace r1kit
