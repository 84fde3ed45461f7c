#include "learner/run_checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GeneratorImpl.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "common/config.h"
#include "common/error.h"
#include "common/jsonl.h"
#include "common/logging.h"
#include "common/run_dir.h"
#include "policy/checkpoint.h"
#include "policy/peft_adapter.h"

namespace r1kit {

namespace fs = std::filesystem;

namespace {

std::optional<int64_t> step_of(const fs::path& folder) {
  std::string name = folder.filename().string();
  if (!name.starts_with("step-")) return std::nullopt;
  std::string digits = name.substr(5);
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) return std::nullopt;
  return std::stoll(digits);
}

std::vector<std::pair<int64_t, fs::path>> list_checkpoints(const fs::path& run_folder) {
  std::vector<std::pair<int64_t, fs::path>> found;
  fs::path root = run_folder / "checkpoints";
  if (!fs::is_directory(root)) return found;
  for (const auto& entry : fs::directory_iterator(root)) {
    auto step = step_of(entry.path());
    if (step && fs::exists(entry.path() / "trainer_state.json"))
      found.emplace_back(*step, entry.path());
  }
  std::sort(found.begin(), found.end());
  return found;
}

constexpr char kHexDigits[] = "0123456789abcdef";

}  // namespace

fs::path save_run_checkpoint(const fs::path& run_folder, const RunCheckpoint& checkpoint,
                             int64_t keep) {
  int64_t step = checkpoint.state.at("step").get<int64_t>();
  fs::path root = run_folder / "checkpoints";
  fs::path final_folder = root / ("step-" + std::to_string(step));
  fs::path temporary = root / ("step-" + std::to_string(step) + ".tmp");
  std::error_code error;
  fs::remove_all(temporary, error);
  fs::create_directories(temporary, error);
  if (error) throw_io_error(temporary.string() + ": cannot create: " + error.message());

  Transformer policy = checkpoint.policy;
  if (has_lora(*policy))
    save_peft_adapter(*policy, temporary / "model");  // the base stays where model.path says
  else
    save_pretrained(policy, temporary / "model");
  if (checkpoint.tokenizer) checkpoint.tokenizer->save_folder(temporary / "model");
  if (checkpoint.optimizer) checkpoint.optimizer->save(temporary / "optimizer");
  for (const auto& [name, model] : checkpoint.extra_models) {
    Transformer copy = model;
    SaveOptions options;
    if (auto head = checkpoint.extra_heads.find(name); head != checkpoint.extra_heads.end())
      options.head = head->second;
    save_pretrained(copy, temporary / name, options);
  }
  for (const auto& [name, optimizer] : checkpoint.extra_optimizers)
    optimizer->save(temporary / name);
  write_file_atomically(temporary / "trainer_state.json", checkpoint.state.dump(2) + "\n");

  fs::remove_all(final_folder, error);
  fs::rename(temporary, final_folder, error);
  if (error)
    throw_io_error(final_folder.string() +
                   ": cannot rename the checkpoint into place: " + error.message());
  if (keep > 0) {
    auto all = list_checkpoints(run_folder);
    for (size_t i = 0; i + keep < all.size(); ++i) fs::remove_all(all[i].second, error);
  }
  return final_folder;
}

std::optional<fs::path> latest_run_checkpoint(const fs::path& run_folder) {
  auto all = list_checkpoints(run_folder);
  if (all.empty()) return std::nullopt;
  return all.back().second;
}

void load_weights_into(Transformer& model, const fs::path& folder) {
  if (has_lora(*model)) {
    load_peft_adapter_into(*model, folder);
    return;
  }
  Transformer loaded = load_pretrained(folder, model->model->embed_tokens->weight.device(),
                                       model->model->embed_tokens->weight.scalar_type());
  auto target = model->named_parameters();
  auto source = loaded->named_parameters();
  at::NoGradGuard no_grad;
  for (const auto& item : target) {
    const at::Tensor* from = source.find(item.key());
    if (!from) throw_data_error(folder.string() + ": checkpoint lacks " + item.key());
    item.value().copy_(*from);
  }
}

void load_weights_into(Transformer& model, ScalarHead& head, const fs::path& folder) {
  const at::Tensor& reference = model->model->embed_tokens->weight;
  PretrainedWithHead loaded =
      load_pretrained_with_head(folder, head->kind(), reference.device(), reference.scalar_type());
  if (loaded.head_is_new) {
    throw_data_error(folder.string() + ": checkpoint lacks the " +
                     scalar_head_kind_name(head->kind()) + " head");
  }
  auto copy_all = [&](torch::nn::Module& target, torch::nn::Module& source) {
    auto from = source.named_parameters();
    at::NoGradGuard no_grad;
    for (const auto& item : target.named_parameters()) {
      const at::Tensor* tensor = from.find(item.key());
      if (!tensor) throw_data_error(folder.string() + ": checkpoint lacks " + item.key());
      item.value().copy_(*tensor);
    }
  };
  copy_all(*model, *loaded.model);
  copy_all(*head, *loaded.head);
}

std::string save_rng(const std::mt19937_64& rng) {
  std::ostringstream out;
  out << rng;
  return out.str();
}

void restore_rng(std::mt19937_64& rng, const std::string& text) {
  std::istringstream in(text);
  in >> rng;
  if (!in) throw_data_error("trainer_state.json: malformed generator state");
}

std::string save_torch_rng() {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  at::Tensor state = generator.get_state();
  const uint8_t* bytes = state.data_ptr<uint8_t>();
  std::string hex;
  hex.reserve(state.numel() * 2);
  for (int64_t i = 0; i < state.numel(); ++i) {
    hex.push_back(kHexDigits[bytes[i] >> 4]);
    hex.push_back(kHexDigits[bytes[i] & 15]);
  }
  return hex;
}

void restore_torch_rng(const std::string& hex) {
  if (hex.size() % 2 != 0) throw_data_error("trainer_state.json: malformed torch generator state");
  at::Tensor state = at::empty({static_cast<int64_t>(hex.size() / 2)}, at::kByte);
  uint8_t* bytes = state.data_ptr<uint8_t>();
  auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (size_t i = 0; i < hex.size() / 2; ++i)
    bytes[i] = static_cast<uint8_t>(nibble(hex[2 * i]) * 16 + nibble(hex[2 * i + 1]));
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  generator.set_state(state);
}

nlohmann::json read_trainer_state(const fs::path& checkpoint_folder) {
  const fs::path path = checkpoint_folder / "trainer_state.json";
  nlohmann::json state;
  try {
    state = read_json_file(path.string());
  } catch (const Error& error) {
    if (error.kind() != ErrorKind::kConfig) throw;
    throw_data_error(std::string(error.what()) + "; the checkpoint is damaged: delete " +
                     checkpoint_folder.string() + " to resume from the one before");
  }
  if (!state.is_object() || !state.contains("step") || !state["step"].is_number_integer())
    throw_data_error(path.string() + ": expected an object with an integer \"step\"");
  return state;
}

std::string describe_existing_run(const fs::path& run_folder) {
  std::vector<std::string> parts;
  const fs::path metrics = run_folder / "metrics.jsonl";
  std::error_code error;
  if (fs::is_regular_file(metrics) && fs::file_size(metrics, error) > 0) {
    std::ifstream in(metrics);
    const auto lines =
        std::count(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>(), '\n');
    parts.push_back(std::to_string(lines) + " lines of metrics.jsonl");
  }
  const auto checkpoints = list_checkpoints(run_folder);
  if (!checkpoints.empty())
    parts.push_back("checkpoints up to step " + std::to_string(checkpoints.back().first));
  for (const char* name : {"final", "summary.json"}) {
    if (fs::exists(run_folder / name)) parts.push_back(std::string(name));
  }
  std::string text;
  for (const auto& part : parts) text += (text.empty() ? "" : ", ") + part;
  return text;
}

void clear_run_folder(const fs::path& run_folder) {
  if (!fs::is_directory(run_folder)) return;
  for (const auto& entry : fs::directory_iterator(run_folder)) {
    const std::string name = entry.path().filename().string();
    const bool written_by_a_run = name == "config.json" || name == "metrics.jsonl" ||
                                  name == "samples.jsonl" || name == "checkpoints" ||
                                  name == "final" || name == "summary.json" ||
                                  name == "sft.jsonl" || name.starts_with("events.out.tfevents.");
    if (!written_by_a_run) continue;
    std::error_code error;
    fs::remove_all(entry.path(), error);
    if (error)
      throw_io_error(entry.path().string() + ": cannot delete (--overwrite): " + error.message());
  }
}

void truncate_metrics(const fs::path& run_folder, int64_t step) {
  for (const char* name : {"metrics.jsonl", "samples.jsonl"}) {
    fs::path path = run_folder / name;
    if (!fs::exists(path)) continue;
    JsonlReader reader(path);
    std::string kept;
    while (true) {
      std::optional<JsonlLine> line;
      try {
        line = reader.next();
      } catch (const Error&) {
        continue;  // a line torn by a killed run is dropped
      }
      if (!line) break;
      const nlohmann::json& value = line->value;
      if (value.contains("step") && value["step"].is_number_integer() &&
          value["step"].get<int64_t>() > step)
        continue;
      kept += line->text + "\n";
    }
    write_file_atomically(path, kept);
  }
}

std::optional<std::filesystem::path> resume_checkpoint(const std::filesystem::path& run_folder) {
  auto folder = latest_run_checkpoint(run_folder);
  if (!folder) {
    log_warning() << "--resume: no checkpoint in " << run_folder.string()
                  << "; starting from step 0";
  }
  return folder;
}

std::filesystem::path save_final_model(const std::filesystem::path& run_folder, Transformer& model,
                                       const Tokenizer& tokenizer, ScalarHead head) {
  std::filesystem::path folder = run_folder / "final";
  if (has_lora(*model)) {
    save_peft_adapter(*model, folder);
  } else {
    SaveOptions options;
    options.head = head;
    save_pretrained(model, folder, options);
  }
  tokenizer.save_folder(folder);
  return folder;
}

}  // namespace r1kit
