// `r1kit export --merge --adapter DIR --output DIR [--base DIR]`: a PEFT LoRA adapter
// folder (r1kit's final/ or checkpoint model/ of a LoRA run, or one PEFT
// wrote) merged into its base model, W + scale * B A, written as a plain
// Hugging Face folder that transformers, vLLM and `r1kit train` load.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>

#include "apps/subcommand.h"
#include "common/config.h"
#include "common/error.h"
#include "policy/checkpoint.h"
#include "policy/lora.h"
#include "policy/peft_adapter.h"

namespace r1kit::apps {
namespace {

namespace fs = std::filesystem;

struct ExportArguments {
  bool merge = false;
  std::string adapter;
  std::string base;  // "" = the adapter's base_model_name_or_path
  std::string output;
  std::string dtype = "auto";
};

std::string base_of(const ExportArguments& args) {
  if (!args.base.empty()) return args.base;
  const fs::path config_file = fs::path(args.adapter) / kAdapterConfigFile;
  const nlohmann::json config = read_json_file(config_file.string());
  const nlohmann::json base = config.value("base_model_name_or_path", nlohmann::json());
  if (!base.is_string() || !fs::exists(fs::path(base.get<std::string>()) / "config.json")) {
    throw_usage_error(config_file.string() + ": base_model_name_or_path " + base.dump() +
                      " is not a model folder here; give --base");
  }
  return base.get<std::string>();
}

int run_export(const ExportArguments& args) {
  if (!args.merge)
    throw_usage_error("export: give --merge (the only export there is: adapter into base)");
  if (!is_peft_adapter_folder(args.adapter))
    throw_usage_error("--adapter: " + args.adapter + " has no " + kAdapterConfigFile);
  const std::string base = base_of(args);
  // Merged in float32, saved in the base's dtype unless --dtype says otherwise.
  Transformer model = load_pretrained(base, at::kCPU, at::kFloat);
  const std::string saved_dtype = args.dtype == "auto" ? model->config().torch_dtype : args.dtype;
  LoraConfig lora;
  lora.path = args.adapter;
  attach_lora(*model, lora, /*seed=*/0, "--adapter " + args.adapter);
  merge_lora(*model);
  if (saved_dtype == "bfloat16") model->to(at::kBFloat16);
  SaveOptions options;
  for (const fs::path& folder : {fs::path(args.adapter), fs::path(base)}) {
    if (fs::exists(folder / "tokenizer.json")) {
      options.tokenizer_source = folder;
      break;
    }
  }
  save_pretrained(model, args.output, options);
  std::cout << args.output << "\n";
  return 0;
}

Action setup(CLI::App& app) {
  auto args = std::make_shared<ExportArguments>();
  app.add_flag("--merge", args->merge, "merge the adapter into its base (required)");
  app.add_option("--adapter", args->adapter,
                 "PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors)")
      ->required();
  app.add_option("--base", args->base,
                 "base model folder (default: the adapter's base_model_name_or_path)");
  app.add_option("--output,-o", args->output, "folder for the merged Hugging Face model")
      ->required();
  app.add_option("--dtype", args->dtype,
                 "dtype of the saved weights: auto (the base's), float32 "
                 "or bfloat16")
      ->check(CLI::IsMember({"auto", "float32", "bfloat16"}))
      ->capture_default_str();
  app.footer(
      "Merges W + scale * B A into every adapted weight (scale = lora_alpha / r, or / sqrt(r) "
      "with use_rslora) and copies modules_to_save; the tokenizer comes from the adapter "
      "folder, else the base.");
  return [args] { return run_export(*args); };
}

}  // namespace

REGISTER_SUBCOMMAND("export", "merge a LoRA adapter into its base model as a Hugging Face folder",
                    setup);

}  // namespace r1kit::apps
