#include "policy/peft_adapter.h"

#include <cmath>
#include <map>
#include <sstream>

#include "common/config.h"
#include "common/error.h"
#include "common/run_dir.h"
#include "common/safetensors.h"
#include "policy/checkpoint.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char kKeyPrefix[] = "base_model.model.";

std::string shape_text(at::IntArrayRef sizes) {
  std::ostringstream text;
  text << sizes;
  return text.str();
}

// The tensors an adapter file holds for `model`, by PEFT key: every adapter
// parameter, then every parameter of the modules to save.
std::map<std::string, at::Tensor> adapter_tensors(TransformerImpl& model) {
  LoraStateImpl* state = lora_state(model);
  TORCH_CHECK(state != nullptr, "the model has no LoRA adapters");
  std::map<std::string, at::Tensor> out;
  for (const auto& item : model.named_parameters()) {
    const std::string& name = item.key();
    const bool adapter =
        name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos;
    bool saved = false;
    for (const auto& path : state->saved) saved = saved || name.starts_with(path + ".");
    if (adapter || saved) out.emplace(kKeyPrefix + name, item.value());
  }
  return out;
}

json number_json(double value) {
  if (value == std::floor(value) && std::abs(value) < 1e15) return static_cast<int64_t>(value);
  return value;
}

}  // namespace

bool is_peft_adapter_folder(const fs::path& folder) {
  return fs::exists(folder / kAdapterConfigFile);
}

LoraConfig with_adapter_config(LoraConfig config, const fs::path& folder) {
  const std::string file = (folder / kAdapterConfigFile).string();
  if (!fs::exists(file))
    throw_io_error(file + ": no such file (model.lora.path must be a PEFT adapter folder)");
  const json adapter = read_json_file(file);
  if (!adapter.is_object()) throw_data_error(file + ": expected a JSON object");
  auto fail = [&](const std::string& key, const std::string& message) {
    throw_data_error(file + ": " + key + ": " + message);
  };
  const json peft_type = adapter.value("peft_type", json());
  if (peft_type != "LORA") {
    fail("peft_type", peft_type.dump() + " is not supported; r1kit loads LORA adapters");
  }
  auto number = [&](const char* key, bool required) -> std::optional<double> {
    if (!adapter.contains(key) || adapter[key].is_null()) {
      if (required) fail(key, "missing");
      return std::nullopt;
    }
    if (!adapter[key].is_number()) fail(key, "expected a number, got " + adapter[key].dump());
    return adapter[key].get<double>();
  };
  config.r = static_cast<int64_t>(*number("r", true));
  if (config.r <= 0) fail("r", "must be > 0");
  config.alpha = number("lora_alpha", false).value_or(8.0);
  config.dropout = number("lora_dropout", false).value_or(0.0);
  const json targets = adapter.value("target_modules", json());
  const bool names =
      targets.is_array() && std::all_of(targets.begin(), targets.end(),
                                        [](const json& item) { return item.is_string(); });
  if (!names && !targets.is_string())
    fail("target_modules", "expected a list of names or a string, got " + targets.dump());
  config.target_modules = targets;
  config.modules_to_save.clear();
  const json saved = adapter.value("modules_to_save", json());
  if (saved.is_array()) {
    for (const auto& item : saved) {
      if (!item.is_string()) fail("modules_to_save", "expected names, got " + saved.dump());
      config.modules_to_save.push_back(item.get<std::string>());
    }
  } else if (!saved.is_null()) {
    fail("modules_to_save", "expected a list of names or null, got " + saved.dump());
  }
  config.use_rslora = adapter.value("use_rslora", false) == true;
  // Settings that change the adapter's arithmetic and that r1kit does not implement.
  const std::vector<std::pair<const char*, json>> unsupported = {
      {"fan_in_fan_out", false},   {"use_dora", false},       {"bias", "none"},
      {"lora_bias", false},        {"rank_pattern", {}},      {"alpha_pattern", {}},
      {"layers_to_transform", {}}, {"layer_replication", {}}, {"trainable_token_indices", {}},
      {"target_parameters", {}},   {"exclude_modules", {}}};
  for (const auto& [key, neutral] : unsupported) {
    if (!adapter.contains(key) || adapter[key].is_null()) continue;
    const json& value = adapter[key];
    const bool empty = (value.is_object() || value.is_array()) && value.empty();
    if (value != neutral && !empty)
      fail(key, value.dump() + " is not supported by r1kit (only " + neutral.dump() + ")");
  }
  config.path = folder.string();
  return config;
}

void load_peft_adapter_into(TransformerImpl& model, const fs::path& folder) {
  const fs::path file = folder / kAdapterWeightsFile;
  if (!fs::exists(file)) {
    throw_io_error(file.string() + ": no such file" +
                   (fs::exists(folder / "adapter_model.bin")
                        ? " (adapter_model.bin is not read: save with safe_serialization=True)"
                        : ""));
  }
  SafetensorsContents contents = read_safetensors(file);
  std::map<std::string, at::Tensor> expected = adapter_tensors(model);
  for (const auto& [key, parameter] : expected) {
    auto found = contents.tensors.find(key);
    if (found == contents.tensors.end()) {
      throw_data_error(file.string() + ": missing tensor " + key +
                       " (adapter_config.json says this layer has an adapter)");
    }
    if (found->second.sizes() != parameter.sizes()) {
      throw_data_error(file.string() + ": " + key + " has shape " +
                       shape_text(found->second.sizes()) + " but the model expects " +
                       shape_text(parameter.sizes()) + " (an adapter for another base model?)");
    }
  }
  for (const auto& [key, tensor] : contents.tensors) {
    if (!expected.count(key)) {
      throw_data_error(file.string() + ": unexpected tensor " + key +
                       " (not an adapter or module to save of this model and "
                       "adapter_config.json)");
    }
  }
  at::NoGradGuard no_grad;
  for (auto& [key, parameter] : expected)
    copy_finite_weight(parameter, contents.tensors.at(key), file, key);
}

void save_peft_adapter(TransformerImpl& model, const fs::path& folder) {
  LoraStateImpl* state = lora_state(model);
  TORCH_CHECK(state != nullptr, "save_peft_adapter: the model has no LoRA adapters");
  std::error_code error;
  fs::create_directories(folder, error);
  if (error) throw_io_error(folder.string() + ": cannot create: " + error.message());
  std::map<std::string, at::Tensor> tensors;
  for (auto& [key, tensor] : adapter_tensors(model)) tensors.emplace(key, tensor.detach());
  write_safetensors(folder / kAdapterWeightsFile, tensors, {{"format", "pt"}});

  const LoraConfig& config = state->config;
  const json modules_to_save =
      config.modules_to_save.empty() ? json() : json(config.modules_to_save);
  const json adapter = {
      {"alpha_pattern", json::object()},
      {"auto_mapping", nullptr},
      {"base_model_name_or_path", state->base_model.empty() ? json() : json(state->base_model)},
      {"bias", "none"},
      {"fan_in_fan_out", false},
      {"inference_mode", true},
      {"init_lora_weights", true},
      {"layer_replication", nullptr},
      {"layers_pattern", nullptr},
      {"layers_to_transform", nullptr},
      {"lora_alpha", number_json(config.alpha)},
      {"lora_bias", false},
      {"lora_dropout", config.dropout},
      {"modules_to_save", modules_to_save},
      {"peft_type", "LORA"},
      {"r", config.r},
      {"rank_pattern", json::object()},
      {"revision", nullptr},
      {"target_modules", state->target_names},
      {"task_type", "CAUSAL_LM"},
      {"use_dora", false},
      {"use_rslora", config.use_rslora},
  };
  write_file_atomically(folder / kAdapterConfigFile, adapter.dump(2) + "\n");
}

}  // namespace r1kit
