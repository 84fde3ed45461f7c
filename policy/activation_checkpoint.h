// Activation checkpointing (Chen et al. 2016, "Training Deep Nets with
// Sublinear Memory Cost"; torch.utils.checkpoint): a block's forward runs
// without keeping its intermediate activations, and its backward runs the
// block again to get them. Gradients equal those of the plain forward. Any
// thread; the block must compute the same thing twice (no state it changes).
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <vector>

namespace r1kit {

// A block of the network: input (..., H) -> output (..., H). It may read
// tensors it captured (masks, rotary tables) but only `parameters` and the
// input receive gradients.
using CheckpointedBlock = std::function<at::Tensor(const at::Tensor&)>;

// block(input), keeping only `input` for the backward. Outside grad mode, or
// when neither the input nor any parameter needs a gradient, it is simply
// block(input). The default CPU generator's state is restored for the
// recomputation, so dropout draws the same mask twice.
at::Tensor checkpointed(const CheckpointedBlock& block, const at::Tensor& input,
                        const std::vector<at::Tensor>& parameters);

}  // namespace r1kit
