#include "learner/optimizer.h"

#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/safetensors.h"
#include "common/thread_limit.h"

namespace r1kit {
namespace {

constexpr const char* kStateFormat = "r1kit-adamw-1";
constexpr const char* kTensorsFile = "optimizer.safetensors";
constexpr const char* kJsonFile = "optimizer.json";

torch::optim::AdamWOptions& group_options(torch::optim::OptimizerParamGroup& group) {
  return static_cast<torch::optim::AdamWOptions&>(group.options());
}

std::string state_key(size_t group, size_t index, const char* what) {
  return std::to_string(group) + "." + std::to_string(index) + "." + what;
}

}  // namespace

void OptimizerConfig::visit(ConfigVisitor& v) {
  v.field("learning_rate", learning_rate, {.min = 0.0});
  v.field("weight_decay", weight_decay, {.min = 0.0});
  v.field("adam_beta1", adam_beta1, {.min = 0.0, .max = 1.0});
  v.field("adam_beta2", adam_beta2, {.min = 0.0, .max = 1.0});
  v.field("adam_epsilon", adam_epsilon, {.min = 0.0});
  v.field("lr_scheduler_type", lr_scheduler_type, {.choices = lr_scheduler_types()});
  v.field("warmup_steps", warmup_steps, {.min = 0.0});
  v.field("warmup_ratio", warmup_ratio, {.min = 0.0, .max = 1.0});
  v.field("max_grad_norm", max_grad_norm, {.min = 0.0});
  v.field("max_consecutive_nonfinite", max_consecutive_nonfinite, {.min = 0.0});
  if (adam_beta1 >= 1.0) v.fail("adam_beta1", "must be < 1");
  if (adam_beta2 >= 1.0) v.fail("adam_beta2", "must be < 1");
}

Optimizer::Optimizer(std::vector<at::Tensor> decay_parameters,
                     std::vector<at::Tensor> no_decay_parameters, OptimizerConfig config,
                     int64_t total_steps)
    : config_(std::move(config)),
      schedule_(config_.lr_scheduler_type,
                resolve_warmup_steps(config_.warmup_steps, config_.warmup_ratio, total_steps),
                total_steps) {
  auto options = torch::optim::AdamWOptions(config_.learning_rate)
                     .betas({config_.adam_beta1, config_.adam_beta2})
                     .eps(config_.adam_epsilon)
                     .weight_decay(config_.weight_decay);
  auto no_decay_options = options;
  no_decay_options.weight_decay(0.0);
  groups_ = {std::move(decay_parameters), std::move(no_decay_parameters)};

  // AdamW is about ten elementwise ops per parameter. For a small model on CPU
  // each op is too small to split over cores, so the parameters are dealt
  // into one shard per thread (largest first, onto the lightest shard), and
  // the shards step side by side, each op on one thread. Elementwise ops give
  // the same numbers however the work is split (the 0.8M demo policy on 2
  // cores: 11 ms per step with every op on both cores, 4.4 ms on one thread).
  int64_t parameter_count = 0;
  std::vector<at::Tensor> all;
  for (const auto& group : groups_) {
    for (const auto& parameter : group) {
      parameter_count += parameter.numel();
      all.push_back(parameter);
    }
  }
  const bool on_cpu = all.empty() || all.front().device().is_cpu();
  const size_t shards = on_cpu && parameter_count <= kShardedParameters
                            ? static_cast<size_t>(std::clamp<int64_t>(at::get_num_threads(), 1, 8))
                            : 1;
  std::sort(all.begin(), all.end(),
            [](const at::Tensor& a, const at::Tensor& b) { return a.numel() > b.numel(); });
  std::vector<int64_t> load(shards, 0);
  std::unordered_map<c10::TensorImpl*, size_t> dealt;
  for (const auto& parameter : all) {
    const size_t lightest =
        static_cast<size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    load[lightest] += parameter.numel();
    dealt[parameter.unsafeGetTensorImpl()] = lightest;
  }
  for (size_t shard = 0; shard < shards; ++shard) {
    std::vector<torch::optim::OptimizerParamGroup> shard_groups;
    for (size_t g = 0; g < groups_.size(); ++g) {
      std::vector<at::Tensor> members;
      for (const auto& parameter : groups_[g]) {
        if (dealt.at(parameter.unsafeGetTensorImpl()) != shard) continue;
        members.push_back(parameter);
        shard_of_[parameter.unsafeGetTensorImpl()] =
            shards_.size();  // this shard's index once added
      }
      if (members.empty()) continue;
      shard_groups.emplace_back(std::move(members), std::make_unique<torch::optim::AdamWOptions>(
                                                        g == 0 ? options : no_decay_options));
    }
    // A shard with no parameters (more threads than parameters) is not added.
    if (!shard_groups.empty())
      shards_.push_back(std::make_unique<torch::optim::AdamW>(shard_groups, options));
  }
}

torch::optim::AdamW& Optimizer::shard_of(const at::Tensor& parameter) const {
  return *shards_.at(shard_of_.at(parameter.unsafeGetTensorImpl()));
}

double Optimizer::next_learning_rate() const {
  return config_.learning_rate * schedule_.multiplier(step_count_);
}

OptimizerStepStats Optimizer::step() {
  at::NoGradGuard no_grad;
  OptimizerStepStats stats;
  stats.learning_rate = next_learning_rate();
  ++step_count_;

  // The global norm as torch.nn.utils.clip_grad_norm_ takes it: the norm of the
  // per-parameter norms.
  std::vector<at::Tensor> grads;
  std::vector<at::Tensor> norms;
  for (auto& group : groups_) {
    for (auto& parameter : group) {
      if (!parameter.grad().defined()) continue;
      grads.push_back(parameter.mutable_grad());
      norms.push_back(at::linalg_vector_norm(parameter.grad(), 2).to(at::kFloat));
    }
  }
  stats.grad_norm =
      norms.empty() ? 0.0 : at::linalg_vector_norm(at::stack(norms), 2).item<double>();

  if (!std::isfinite(stats.grad_norm)) {
    stats.skipped = true;
    zero_grad();
    ++consecutive_skips_;
    ++skipped_total_;
    if (config_.max_consecutive_nonfinite > 0 &&
        consecutive_skips_ >= config_.max_consecutive_nonfinite) {
      throw Error("optimizer: the gradient norm was not finite (" +
                      std::to_string(stats.grad_norm) + ") for " +
                      std::to_string(consecutive_skips_) + " steps in a row (step " +
                      std::to_string(step_count_) + "); stopping (max_consecutive_nonfinite = " +
                      std::to_string(config_.max_consecutive_nonfinite) + ")",
                  ErrorKind::kRuntime);
    }
    return stats;
  }
  consecutive_skips_ = 0;

  if (config_.max_grad_norm > 0.0) {
    const double coefficient = config_.max_grad_norm / (stats.grad_norm + 1e-6);  // torch's epsilon
    if (coefficient < 1.0) {
      for (auto& grad : grads) grad.mul_(coefficient);
    }
  }
  for (auto& shard : shards_)
    for (auto& group : shard->param_groups()) group_options(group).lr(stats.learning_rate);
  if (shards_.size() == 1) {
    shards_.front()->step();
    return stats;
  }
  // One thread per shard, each op on that thread alone; shard 0 on the caller's.
  auto step_shard = [this](size_t shard) {
    ThreadLimit one_thread(1);
    shards_[shard]->step();
  };
  std::vector<std::future<void>> others;
  for (size_t shard = 1; shard < shards_.size(); ++shard)
    others.push_back(std::async(std::launch::async, step_shard, shard));
  step_shard(0);
  for (auto& other : others) other.get();
  return stats;
}

void Optimizer::zero_grad() {
  for (auto& shard : shards_) shard->zero_grad(/*set_to_none=*/true);
}

void Optimizer::save(const std::filesystem::path& folder) const {
  std::error_code error;
  std::filesystem::create_directories(folder, error);
  if (error)
    throw_io_error(folder.string() + ": cannot create the optimizer folder: " + error.message());

  std::map<std::string, at::Tensor> tensors;
  nlohmann::json groups = nlohmann::json::array();
  for (size_t g = 0; g < groups_.size(); ++g) {
    nlohmann::json params = nlohmann::json::array();
    for (size_t i = 0; i < groups_[g].size(); ++i) {
      const at::Tensor& parameter = groups_[g][i];
      nlohmann::json entry = {{"shape", parameter.sizes().vec()}, {"step", 0}};
      const auto& states = shard_of(parameter).state();
      auto found = states.find(parameter.unsafeGetTensorImpl());
      if (found != states.end()) {
        const auto& state = static_cast<const torch::optim::AdamWParamState&>(*found->second);
        entry["step"] = state.step();
        tensors[state_key(g, i, "exp_avg")] = state.exp_avg();
        tensors[state_key(g, i, "exp_avg_sq")] = state.exp_avg_sq();
      }
      params.push_back(entry);
    }
    groups.push_back({{"params", params}});
  }
  nlohmann::json json = {{"format", kStateFormat},
                         {"step_count", step_count_},
                         {"consecutive_skips", consecutive_skips_},
                         {"skipped_total", skipped_total_},
                         {"lr_scheduler_type", schedule_.type()},
                         {"warmup_steps", schedule_.warmup_steps()},
                         {"total_steps", schedule_.total_steps()},
                         {"groups", groups}};
  write_safetensors(folder / kTensorsFile, tensors, {{"format", kStateFormat}});
  std::ofstream out(folder / kJsonFile);
  out << json.dump(2) << "\n";
  out.close();
  if (!out) throw_io_error((folder / kJsonFile).string() + ": cannot write the optimizer state");
}

void Optimizer::load(const std::filesystem::path& folder) {
  const std::filesystem::path json_path = folder / kJsonFile;
  const std::filesystem::path tensors_path = folder / kTensorsFile;
  if (!std::filesystem::exists(json_path) || !std::filesystem::exists(tensors_path)) {
    throw_io_error(folder.string() + ": no optimizer state (expected " + kJsonFile + " and " +
                   kTensorsFile + ")");
  }
  nlohmann::json json = read_json_file(json_path.string());
  auto fail = [&](const std::string& message) {
    throw_data_error(json_path.string() + ": " + message);
  };
  if (json.value("format", "") != kStateFormat)
    fail(std::string("not an r1kit optimizer state (format ") + kStateFormat + ")");
  SafetensorsContents contents = read_safetensors(tensors_path);

  try {
    const nlohmann::json& groups = json.at("groups");
    if (groups.size() != groups_.size()) {
      fail("has " + std::to_string(groups.size()) + " parameter groups, the optimizer " +
           std::to_string(groups_.size()));
    }
    // Check everything before touching the state, so a bad folder changes nothing.
    std::vector<std::pair<at::Tensor, std::unique_ptr<torch::optim::AdamWParamState>>> states;
    for (size_t g = 0; g < groups_.size(); ++g) {
      const nlohmann::json& params = groups[g].at("params");
      if (params.size() != groups_[g].size()) {
        fail("group " + std::to_string(g) + " has " + std::to_string(params.size()) +
             " parameters, the optimizer " + std::to_string(groups_[g].size()));
      }
      for (size_t i = 0; i < params.size(); ++i) {
        const at::Tensor& parameter = groups_[g][i];
        if (params[i].at("shape").get<std::vector<int64_t>>() != parameter.sizes().vec()) {
          fail("parameter " + std::to_string(g) + "." + std::to_string(i) + " has shape " +
               params[i].at("shape").dump() + " in the state but " + c10::str(parameter.sizes()) +
               " in the model");
        }
        const int64_t step = params[i].at("step").get<int64_t>();
        if (step == 0) continue;  // never updated: no state, as in a fresh optimiser
        auto exp_avg = contents.tensors.find(state_key(g, i, "exp_avg"));
        auto exp_avg_sq = contents.tensors.find(state_key(g, i, "exp_avg_sq"));
        if (exp_avg == contents.tensors.end() || exp_avg_sq == contents.tensors.end()) {
          fail("the moments of parameter " + std::to_string(g) + "." + std::to_string(i) +
               " are missing from " + tensors_path.string());
        }
        auto state = std::make_unique<torch::optim::AdamWParamState>();
        state->step(step);
        // Copies off the file mapping onto the parameter's device.
        state->exp_avg(
            exp_avg->second.to(parameter.device(), parameter.scalar_type(), false, /*copy=*/true));
        state->exp_avg_sq(exp_avg_sq->second.to(parameter.device(), parameter.scalar_type(), false,
                                                /*copy=*/true));
        states.emplace_back(parameter, std::move(state));
      }
    }
    const int64_t step_count = json.at("step_count").get<int64_t>();
    const int64_t consecutive_skips = json.at("consecutive_skips").get<int64_t>();
    const int64_t skipped_total = json.value("skipped_total", int64_t{0});  // a state without it: 0
    for (auto& shard : shards_) shard->state().clear();
    for (auto& [parameter, state] : states)
      shard_of(parameter).state()[parameter.unsafeGetTensorImpl()] = std::move(state);
    step_count_ = step_count;
    consecutive_skips_ = consecutive_skips;
    skipped_total_ = skipped_total;
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("malformed optimizer state: ") + e.what());
  }
}

}  // namespace r1kit
