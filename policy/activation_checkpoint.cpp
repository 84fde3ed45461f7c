#include "policy/activation_checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/ivalue.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include <mutex>
#include <utility>

namespace r1kit {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What the backward needs besides tensors: the block itself and the
// generator state its forward started from.
struct Recomputation : torch::CustomClassHolder {
  CheckpointedBlock block;
  at::Tensor generator_state;
};

at::Tensor cpu_generator_state() {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

// Runs `body` with the default CPU generator at `state`, then puts the
// generator back where it was.
template <typename Body>
auto with_cpu_generator_state(const at::Tensor& state, Body&& body) {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  at::Tensor current;
  {
    std::lock_guard<std::mutex> lock(generator.mutex());
    current = generator.get_state();
    generator.set_state(state);
  }
  auto result = body();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(current);
  return result;
}

class CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
 public:
  // Inputs: the block's input, then its parameters (so their gradients flow
  // through this node to the leaves).
  static variable_list forward(AutogradContext* context,
                               c10::intrusive_ptr<Recomputation> recomputation,
                               const at::Tensor& input, at::TensorList parameters) {
    at::Tensor output;
    {
      at::NoGradGuard no_grad;
      output = recomputation->block(input);
    }
    variable_list saved = {input};
    saved.insert(saved.end(), parameters.begin(), parameters.end());
    context->save_for_backward(saved);
    context->saved_data["recomputation"] = at::IValue::make_capsule(std::move(recomputation));
    return {output};
  }

  // Edge i of this node is saved variable i: the input, then the parameters.
  // The result has one slot per forward argument: the recomputation (none),
  // the input, then the parameters.
  static variable_list backward(AutogradContext* context, variable_list output_gradients) {
    auto recomputation = c10::static_intrusive_pointer_cast<Recomputation>(
        context->saved_data["recomputation"].toCapsule());
    const variable_list saved = context->get_saved_variables();
    const at::Tensor input = saved[0].detach().requires_grad_(context->needs_input_grad(0));
    at::Tensor output = with_cpu_generator_state(recomputation->generator_state, [&] {
      at::AutoGradMode enable(true);
      return recomputation->block(input);
    });
    variable_list wanted;
    std::vector<size_t> slots;
    for (size_t edge = 0; edge < saved.size(); ++edge) {
      if (!context->needs_input_grad(edge)) continue;
      wanted.push_back(edge == 0 ? input : saved[edge]);
      slots.push_back(edge + 1);
    }
    variable_list result(saved.size() + 1);
    if (wanted.empty() || !output.requires_grad()) return result;
    variable_list gradients =
        torch::autograd::grad({output}, wanted, {output_gradients[0]}, /*retain_graph=*/false,
                              /*create_graph=*/false, /*allow_unused=*/true);
    for (size_t k = 0; k < slots.size(); ++k) result[slots[k]] = std::move(gradients[k]);
    return result;
  }
};

}  // namespace

at::Tensor checkpointed(const CheckpointedBlock& block, const at::Tensor& input,
                        const std::vector<at::Tensor>& parameters) {
  bool needs_gradient = input.requires_grad();
  for (const at::Tensor& parameter : parameters) needs_gradient |= parameter.requires_grad();
  if (!at::GradMode::is_enabled() || !needs_gradient) return block(input);
  auto recomputation = c10::make_intrusive<Recomputation>();
  recomputation->block = block;
  recomputation->generator_state = cpu_generator_state();
  // A TensorList (not a vector) so each parameter becomes an input of the node.
  return CheckpointFunction::apply(std::move(recomputation), input, at::TensorList(parameters))[0];
}

}  // namespace r1kit
