#include "policy/lora.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include "common/error.h"
#include "policy/peft_adapter.h"

namespace r1kit {
namespace {

// Nesting depth of LoraDisabled on this thread; adapters are on at 0.
thread_local int adapters_disabled = 0;

const char kStateName[] = "peft";

LoraDownImpl* adapter_of(const torch::nn::LinearImpl& linear) {
  for (const auto& child : linear.named_children()) {
    if (child.key() == "lora_A") return child.value()->as<LoraDownImpl>();
  }
  return nullptr;
}

torch::nn::LinearImpl* up_of(const torch::nn::LinearImpl& linear) {
  for (const auto& child : linear.named_children()) {
    if (child.key() == "lora_B") return child.value()->as<torch::nn::LinearImpl>();
  }
  return nullptr;
}

// The adapter's output for x (..., in) -> (..., out), scale included.
at::Tensor adapter_delta(LoraDownImpl& down, torch::nn::LinearImpl& up, const at::Tensor& x) {
  at::Tensor input = x;
  if (down.dropout > 0.0 && down.is_training() && at::GradMode::is_enabled())
    input = at::dropout(x, down.dropout, /*train=*/true);
  return at::linear(at::linear(input, down.weight), up.weight) * down.scale;
}

std::string last_part(const std::string& path) {
  const size_t dot = path.rfind('.');
  return dot == std::string::npos ? path : path.substr(dot + 1);
}

// PEFT's check_target_module_exists for a list entry: the whole path, or its last parts.
bool matches_name(const std::string& path, const std::string& name) {
  return path == name || path.ends_with("." + name);
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

// Every Linear of the model (outside adapters) by module path, in model order.
std::vector<std::pair<std::string, torch::nn::LinearImpl*>> linear_layers(TransformerImpl& model) {
  std::vector<std::pair<std::string, torch::nn::LinearImpl*>> out;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    const std::string& path = item.key();
    if (path.find(".lora_") != std::string::npos) continue;
    if (auto* linear = item.value()->as<torch::nn::LinearImpl>()) out.emplace_back(path, linear);
  }
  return out;
}

std::vector<std::string> distinct_last_parts(
    const std::vector<std::pair<std::string, torch::nn::LinearImpl*>>& layers) {
  std::vector<std::string> names;
  for (const auto& [path, linear] : layers) {
    const std::string name = last_part(path);
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  return names;
}

at::Tensor merged_weight(const torch::nn::LinearImpl& linear) {
  LoraDownImpl* down = adapter_of(linear);
  if (down == nullptr) return linear.weight;
  at::NoGradGuard no_grad;
  const at::Tensor& weight = linear.weight;  // (out, in)
  const at::Tensor delta =
      at::mm(up_of(linear)->weight.to(at::kFloat), down->weight.to(at::kFloat));  // (out, in)
  return (weight.to(at::kFloat) + down->scale * delta).to(weight.scalar_type());
}

}  // namespace

double LoraConfig::scale() const {
  return use_rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / static_cast<double>(r);
}

void LoraConfig::visit(ConfigVisitor& v) {
  v.field("r", r, {.min = 0.0});
  v.field("alpha", alpha, {.min = 0.0, .min_exclusive = true});
  v.field("dropout", dropout, {.min = 0.0, .max = 1.0});
  v.field("target_modules", target_modules);
  const bool list_of_names =
      target_modules.is_array() &&
      std::all_of(target_modules.begin(), target_modules.end(),
                  [](const nlohmann::json& item) { return item.is_string(); });
  if (!list_of_names && !target_modules.is_string()) {
    v.fail("target_modules",
           "expected a list of module names or a string (\"all-linear\" or a regular "
           "expression), got " +
               target_modules.dump());
  }
  v.field("modules_to_save", modules_to_save);
  v.field("use_rslora", use_rslora);
  v.field("path", path);
}

LoraDownImpl::LoraDownImpl(int64_t in_features, int64_t rank, double scale_value,
                           double dropout_value)
    : scale(scale_value), dropout(dropout_value) {
  weight = register_parameter("weight", at::zeros({rank, in_features}));
}

LoraStateImpl* lora_state(TransformerImpl& model) {
  for (const auto& child : model.named_children()) {
    if (child.key() == kStateName) return child.value()->as<LoraStateImpl>();
  }
  return nullptr;
}

void attach_lora(TransformerImpl& model, LoraConfig config, uint64_t seed, const std::string& key,
                 const std::string& base_model) {
  TORCH_CHECK(!has_lora(model), "attach_lora: the model already has adapters");
  if (!config.path.empty()) config = with_adapter_config(config, config.path);
  if (config.r <= 0) throw_config_error(key + ".r: LoRA needs a rank r > 0");
  // Errors name the key, or the adapter_config.json the value came from.
  const std::string prefix =
      config.path.empty()
          ? key + "."
          : (std::filesystem::path(config.path) / kAdapterConfigFile).string() + ": ";
  const auto layers = linear_layers(model);
  const std::string known = "its linear layers: " + join(distinct_last_parts(layers));

  // Which layers get adapters.
  std::vector<bool> adapt(layers.size(), false);
  const nlohmann::json& targets = config.target_modules;
  if (targets.is_string() && targets.get<std::string>() == "all-linear") {
    for (size_t i = 0; i < layers.size(); ++i) adapt[i] = last_part(layers[i].first) != "lm_head";
  } else if (targets.is_string()) {
    std::regex pattern;
    try {
      pattern = std::regex(targets.get<std::string>());
    } catch (const std::regex_error& error) {
      throw_config_error(prefix + "target_modules: \"" + targets.get<std::string>() +
                         "\" is not a regular expression: " + error.what());
    }
    for (size_t i = 0; i < layers.size(); ++i)
      adapt[i] = std::regex_match(layers[i].first, pattern);
    if (std::find(adapt.begin(), adapt.end(), true) == adapt.end()) {
      throw_config_error(prefix + "target_modules: \"" + targets.get<std::string>() +
                         "\" matches no module of the model (" + known + ")");
    }
  } else {
    for (const auto& item : targets) {
      const std::string name = item.get<std::string>();
      bool found = false;
      for (size_t i = 0; i < layers.size(); ++i) {
        if (!matches_name(layers[i].first, name)) continue;
        adapt[i] = found = true;
      }
      if (!found) {
        throw_config_error(prefix + "target_modules: \"" + name +
                           "\" matches no module of the model (" + known + ")");
      }
    }
  }
  for (size_t i = 0; i < layers.size(); ++i) {
    if (adapt[i] && last_part(layers[i].first) == "lm_head") {
      throw_config_error(prefix +
                         "target_modules: an adapter on lm_head is not supported; list it in "
                         "modules_to_save to train it in full");
    }
  }

  // Which modules train in full.
  std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> saved;
  const auto modules = model.named_modules("", /*include_self=*/false);
  for (const auto& name : config.modules_to_save) {
    bool found = false;
    for (const auto& item : modules) {
      if (!matches_name(item.key(), name) || item.key().find(".lora_") != std::string::npos)
        continue;
      saved.emplace_back(item.key(), item.value());
      found = true;
    }
    if (!found) {
      std::string hint;
      if (name == "lm_head" && model.config().tie_word_embeddings)
        hint = "; this model ties lm_head to embed_tokens: name embed_tokens";
      throw_config_error(prefix + "modules_to_save: \"" + name +
                         "\" matches no module of the model (its modules: embed_tokens, " +
                         join(distinct_last_parts(layers)) + ", norm, ...)" + hint);
    }
  }
  for (const auto& [path, module] : saved) {
    for (size_t i = 0; i < layers.size(); ++i) {
      if (adapt[i] && (layers[i].first == path || layers[i].first.starts_with(path + "."))) {
        throw_config_error(prefix + "modules_to_save: " + path + " also holds " + layers[i].first +
                           " of target_modules");
      }
    }
  }

  for (auto& parameter : model.parameters()) parameter.set_requires_grad(false);
  for (const auto& [path, module] : saved) {
    for (auto& parameter : module->parameters()) parameter.set_requires_grad(true);
  }

  auto state = LoraState();
  state->config = config;
  state->base_model = base_model;
  for (const auto& [path, module] : saved) state->saved.push_back(path);
  at::Generator generator = at::detail::createCPUGenerator(seed);
  const double scale = config.scale();
  for (size_t i = 0; i < layers.size(); ++i) {
    if (!adapt[i]) continue;
    auto& [path, linear] = layers[i];
    const at::Tensor& weight = linear->weight;  // (out, in)
    const int64_t out_features = weight.size(0), in_features = weight.size(1);
    auto down = LoraDown(in_features, config.r, scale, config.dropout);
    // kaiming_uniform_(a = sqrt(5)) on (r, in): bound = 1 / sqrt(in), as PEFT's init.
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
    {
      at::NoGradGuard no_grad;
      down->weight.uniform_(-bound, bound, generator);
    }
    auto up = torch::nn::Linear(torch::nn::LinearOptions(config.r, out_features).bias(false));
    {
      at::NoGradGuard no_grad;
      up->weight.zero_();
    }
    down->to(weight.device(), weight.scalar_type());
    up->to(weight.device(), weight.scalar_type());
    linear->register_module("lora_A", down);
    linear->register_module("lora_B", up);
    state->adapted.push_back(path);
    const std::string name = last_part(path);
    if (std::find(state->target_names.begin(), state->target_names.end(), name) ==
        state->target_names.end())
      state->target_names.push_back(name);
  }
  std::sort(state->target_names.begin(), state->target_names.end());
  model.register_module(kStateName, state);
  if (!config.path.empty()) load_peft_adapter_into(model, config.path);
}

at::Tensor lora_project(torch::nn::Linear& linear, const at::Tensor& x) {
  at::Tensor y = linear(x);
  if (adapters_disabled > 0) return y;
  LoraDownImpl* down = adapter_of(*linear);
  if (down == nullptr) return y;
  return y + adapter_delta(*down, *up_of(*linear), x);
}

at::Tensor lora_fused_delta(std::initializer_list<torch::nn::Linear*> linears,
                            const at::Tensor& x) {
  if (adapters_disabled > 0) return {};
  std::vector<at::Tensor> parts;
  bool any = false;
  for (torch::nn::Linear* linear : linears) {
    LoraDownImpl* down = adapter_of(**linear);
    if (down == nullptr) {
      std::vector<int64_t> shape = x.sizes().vec();
      shape.back() = (*linear)->weight.size(0);
      parts.push_back(at::zeros(shape, x.options()));
      continue;
    }
    parts.push_back(adapter_delta(*down, *up_of(**linear), x));
    any = true;
  }
  if (!any) return {};
  return at::cat(parts, -1);
}

at::Tensor lora_merged_weight(const torch::nn::Linear& linear) { return merged_weight(*linear); }

std::vector<std::pair<std::string, at::Tensor>> merged_parameters(TransformerImpl& model) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  std::map<std::string, torch::nn::LinearImpl*> adapted;
  for (const auto& [path, linear] : linear_layers(model)) {
    if (adapter_of(*linear) != nullptr) adapted.emplace(path + ".weight", linear);
  }
  for (const auto& item : model.named_parameters()) {
    const std::string& name = item.key();
    if (name.find(".lora_") != std::string::npos) continue;
    auto found = adapted.find(name);
    if (found == adapted.end()) {
      out.emplace_back(name, item.value());
      continue;
    }
    out.emplace_back(name, merged_weight(*found->second));
  }
  return out;
}

void merge_lora(TransformerImpl& model) {
  if (!has_lora(model)) return;
  at::NoGradGuard no_grad;
  for (const auto& [path, linear] : linear_layers(model)) {
    if (adapter_of(*linear) == nullptr) continue;
    linear->weight.copy_(merged_weight(*linear));
    linear->unregister_module("lora_A");
    linear->unregister_module("lora_B");
  }
  model.unregister_module(kStateName);
}

LoraDisabled::LoraDisabled() { ++adapters_disabled; }

LoraDisabled::~LoraDisabled() { --adapters_disabled; }

}  // namespace r1kit
