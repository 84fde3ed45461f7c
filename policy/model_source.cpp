#include "policy/model_source.h"

#include <ATen/Context.h>
#include <ATen/detail/CUDAHooksInterface.h>

#include <cstdlib>
#include <filesystem>

#include "common/error.h"
#include "policy/checkpoint.h"
#include "policy/decoder_layer.h"
#include "policy/model_config.h"
#include "policy/peft_adapter.h"

namespace r1kit {

void ModelSource::visit(ConfigVisitor& v) {
  v.field("path", path);
  v.field("config", config);
  v.field("tokenizer", tokenizer);
  v.field("device", device, {.choices = {"auto", "cpu", "cuda"}});
  v.field("dtype", dtype, {.choices = {"auto", "float32", "bfloat16"}});
  v.section("lora", lora);
  if (!path.empty() && !config.is_null() && !config.empty())
    v.fail("config",
           "a new random model's config.json fields, but model.path also names a folder whose "
           "config.json would be used; give one of the two");
}

int64_t cuda_device_index(const char* local_rank, int64_t device_count) {
  if (local_rank == nullptr || *local_rank == '\0') return 0;
  char* end = nullptr;
  const long value = std::strtol(local_rank, &end, 10);
  if (*end != '\0' || value < 0)
    throw_usage_error("LOCAL_RANK must be a non-negative integer, got \"" +
                      std::string(local_rank) + "\"");
  if (value >= device_count) {
    throw_usage_error("LOCAL_RANK is " + std::to_string(value) + " but this machine has " +
                      std::to_string(device_count) +
                      " CUDA device(s): start at most one rank per GPU");
  }
  return value;
}

at::Device resolve_device(const std::string& name) {
  bool cuda = at::hasCUDA();
  if (name == "cuda" && !cuda)
    throw_config_error("model.device: cuda requested but no CUDA device is available");
  if (name == "cuda" || (name == "auto" && cuda)) {
    disable_cudnn_attention();
    const int64_t index =
        cuda_device_index(std::getenv("LOCAL_RANK"), at::detail::getCUDAHooks().deviceCount());
    return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  return at::kCPU;
}

at::ScalarType resolve_dtype(const std::string& name, at::Device device) {
  if (name == "float32") return at::kFloat;
  if (name == "bfloat16") return at::kBFloat16;
  return device.is_cuda() ? at::kBFloat16 : at::kFloat;
}

void check_model_source(const ModelSource& model, const std::string& source) {
  if (model.path.empty() && model.config.is_null()) {
    throw_config_error(
        source +
        ": model: give model.path (a Hugging Face folder) or model.config (a new model's "
        "config.json fields)");
  }
  if (model.path.empty() && model.tokenizer.empty()) {
    throw_config_error(source +
                       ": model.tokenizer: a model built from model.config needs a tokenizer");
  }
  if (!model.path.empty() && is_peft_adapter_folder(model.path) &&
      !std::filesystem::exists(std::filesystem::path(model.path) / "config.json")) {
    throw_config_error(source + ": model.path: " + model.path +
                       " is a PEFT adapter folder: set model.path to its base model and "
                       "model.lora.path to it, or merge it with `r1kit export --merge`");
  }
  namespace fs = std::filesystem;
  if (!model.path.empty()) {
    const fs::path folder(model.path);
    if (!fs::is_directory(folder))
      throw_io_error(source + ": model.path: " + model.path + " is not a folder");
    if (!fs::exists(folder / "config.json"))
      throw_io_error(source + ": model.path: " + model.path + " has no config.json");
    const nlohmann::json config = read_json_file((folder / "config.json").string());
    model_config_from_hf_json(config, (folder / "config.json").string());
    if (!fs::exists(folder / "model.safetensors") &&
        !fs::exists(folder / "model.safetensors.index.json"))
      throw_io_error(source + ": model.path: " + model.path +
                     " has no model.safetensors nor model.safetensors.index.json");
  }
  const std::string tokenizer = model.tokenizer.empty() ? model.path : model.tokenizer;
  if (!fs::exists(tokenizer))
    throw_io_error(source + ": model.tokenizer: " + tokenizer + " does not exist");
}

LoadedPolicy load_policy(const ModelSource& model, uint64_t seed, const std::string& source) {
  check_model_source(model, source);
  LoadedPolicy loaded;
  loaded.device = resolve_device(model.device);
  loaded.dtype = resolve_dtype(model.dtype, loaded.device);
  std::string tokenizer_path = model.tokenizer.empty() ? model.path : model.tokenizer;
  loaded.tokenizer = load_tokenizer(tokenizer_path);
  if (!model.path.empty()) {
    loaded.model = load_pretrained(model.path, loaded.device, loaded.dtype);
  } else {
    nlohmann::json hf = model.config;
    if (!hf.contains("vocab_size")) hf["vocab_size"] = loaded.tokenizer->vocab_size();
    ModelConfig config = model_config_from_hf_json(hf, source + ": model.config");
    loaded.model = make_random_transformer(config, seed, 0.02, loaded.device, loaded.dtype);
  }
  int64_t vocab = loaded.model->config().vocab_size;
  if (vocab < loaded.tokenizer->vocab_size()) {
    throw_config_error(source + ": model vocab_size " + std::to_string(vocab) +
                       " is smaller than the tokenizer's " +
                       std::to_string(loaded.tokenizer->vocab_size()) + " (" + tokenizer_path +
                       ")");
  }
  if (model.lora.enabled())
    attach_lora(*loaded.model, model.lora, seed, source + ": model.lora", model.path);
  return loaded;
}

}  // namespace r1kit
