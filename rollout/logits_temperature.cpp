// temperature: logits / T, flattening (T > 1) or sharpening (T < 1) the
// distribution (Ackley, Hinton and Sejnowski 1985, "A Learning Algorithm for
// Boltzmann Machines"). Off at T = 0: greedy takes the argmax of the logits.
#include <memory>

#include "rollout/logits_processor.h"

namespace r1kit {
namespace {

class TemperatureProcessor : public LogitsProcessor {
 public:
  explicit TemperatureProcessor(double temperature) : temperature_(temperature) {}

  at::Tensor apply(const at::Tensor& logits, const LogitsContext&) const override {
    return logits / temperature_;
  }

 private:
  double temperature_;
};

std::shared_ptr<const LogitsProcessor> make_temperature(const SamplingParams& params) {
  if (params.temperature == 0.0) return nullptr;
  return std::make_shared<TemperatureProcessor>(params.temperature);
}

}  // namespace

R1KIT_REGISTER(logits_processor_registry(), "temperature", make_temperature);

}  // namespace r1kit
