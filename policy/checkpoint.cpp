#include "policy/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>

#include "common/config.h"
#include "common/error.h"
#include "common/logging.h"
#include "common/run_dir.h"
#include "common/safetensors.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using TensorMap = std::map<std::string, at::Tensor>;

// The tensors of a folder's weight files and the file each came from.
struct FolderWeights {
  TensorMap tensors;
  std::map<std::string, fs::path> files;
};

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

ModelConfig read_model_config(const fs::path& folder) {
  const fs::path config_path = folder / "config.json";
  if (!fs::exists(config_path))
    throw_io_error(folder.string() + ": no config.json (not a model folder?)");
  ModelConfig config =
      ModelConfig::from_hf_json(read_json_file(config_path.string()), config_path.string());
  const fs::path generation_path = folder / "generation_config.json";
  if (fs::exists(generation_path))
    config.generation_config = read_json_file(generation_path.string());
  return config;
}

// Every tensor of the folder's weight files (memory-mapped), by name.
FolderWeights read_weights(const fs::path& folder) {
  FolderWeights weights;
  TensorMap& tensors = weights.tensors;
  auto add_file = [&](const fs::path& path) {
    for (auto& [name, tensor] : read_safetensors(path).tensors) {
      if (!tensors.emplace(name, tensor).second) {
        throw_data_error(path.string() + ": tensor '" + name + "' is also in another shard");
      }
      weights.files.emplace(name, path);
    }
  };
  if (fs::exists(folder / kSingleFile)) {
    add_file(folder / kSingleFile);
    return weights;
  }
  const fs::path index_path = folder / kIndexFile;
  if (!fs::exists(index_path)) {
    throw_io_error(folder.string() + ": neither " + kSingleFile + " nor " + kIndexFile +
                   " is present");
  }
  const json index = read_json_file(index_path.string());
  if (!index.contains("weight_map") || !index["weight_map"].is_object()) {
    throw_data_error(index_path.string() + ": weight_map: missing or not an object");
  }
  std::set<std::string> shards;
  for (const auto& [name, file] : index["weight_map"].items()) {
    if (!file.is_string())
      throw_data_error(index_path.string() + ": weight_map." + name + ": expected a file name");
    const std::string shard = file.get<std::string>();
    if (shard.find('/') != std::string::npos) {
      throw_data_error(index_path.string() + ": weight_map." + name + ": shard \"" + shard +
                       "\" is not in the folder");
    }
    shards.insert(shard);
  }
  for (const std::string& shard : shards) {
    if (!fs::exists(folder / shard))
      throw_io_error(index_path.string() + ": shard " + shard + " is missing");
    add_file(folder / shard);
  }
  for (const auto& [name, file] : index["weight_map"].items()) {
    if (!tensors.count(name)) {
      throw_data_error(index_path.string() + ": tensor '" + name + "' is not in its shard " +
                       file.get<std::string>());
    }
  }
  return weights;
}

std::string list_names(const std::vector<std::string>& names) {
  std::string out;
  const size_t shown = std::min<size_t>(names.size(), 8);
  for (size_t i = 0; i < shown; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > shown) out += ", ... (" + std::to_string(names.size()) + " in all)";
  return out;
}

// Copies `weights` into `parameters` (name, parameter) after checking that every
// parameter is there with its shape and nothing else is (`ignored` aside);
// throws one error listing every problem, or naming the first tensor with NaN
// or infinite values. Consumed names leave `weights.tensors`.
void copy_parameters(const fs::path& folder,
                     const std::vector<std::pair<std::string, at::Tensor>>& parameters,
                     FolderWeights& weights, const std::set<std::string>& ignored) {
  TensorMap& tensors = weights.tensors;
  std::vector<std::string> missing, misshapen, unexpected;
  for (const auto& [name, parameter] : parameters) {
    auto found = tensors.find(name);
    if (found == tensors.end()) {
      missing.push_back(name);
      continue;
    }
    if (found->second.sizes() != parameter.sizes()) {
      std::ostringstream text;
      text << name << " " << found->second.sizes() << " (model expects " << parameter.sizes()
           << ")";
      misshapen.push_back(text.str());
    }
  }
  for (const auto& [name, tensor] : tensors) {
    const bool used = std::any_of(parameters.begin(), parameters.end(),
                                  [&](const auto& p) { return p.first == name; });
    if (!used && !ignored.count(name)) unexpected.push_back(name);
  }
  if (!missing.empty() || !misshapen.empty() || !unexpected.empty()) {
    std::string message = folder.string() + ": the weights do not match config.json:";
    if (!missing.empty()) message += " missing: " + list_names(missing) + ";";
    if (!misshapen.empty()) message += " wrong shape: " + list_names(misshapen) + ";";
    if (!unexpected.empty()) message += " unexpected: " + list_names(unexpected) + ";";
    message.pop_back();
    throw_data_error(message);
  }
  at::NoGradGuard no_grad;
  for (const auto& [name, parameter] : parameters) {
    copy_finite_weight(parameter, tensors.at(name), weights.files.at(name), name);
    tensors.erase(name);
  }
}

std::vector<std::pair<std::string, at::Tensor>> named(const torch::nn::Module& module) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& item : module.named_parameters()) out.emplace_back(item.key(), item.value());
  return out;
}

bool is_head_tensor(const std::string& name) {
  return name.starts_with("score.") || name.starts_with("v_head.");
}

void copy_tokenizer_files(const fs::path& source, const fs::path& folder) {
  if (!fs::exists(source / "tokenizer.json")) {
    throw_io_error(source.string() + ": no tokenizer.json to copy into " + folder.string());
  }
  for (const char* file : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                           "chat_template.jinja", "vocab.json", "merges.txt"}) {
    if (!fs::exists(source / file)) continue;
    if (fs::exists(folder / file) && fs::equivalent(source / file, folder / file)) continue;
    std::error_code error;
    fs::copy_file(source / file, folder / file, fs::copy_options::overwrite_existing, error);
    if (error)
      throw_io_error((folder / file).string() + ": cannot copy from " + source.string() + ": " +
                     error.message());
  }
}

std::string dtype_config_name(at::ScalarType dtype) {
  switch (dtype) {
    case at::kBFloat16:
      return "bfloat16";
    case at::kHalf:
      return "float16";
    default:
      return "float32";
  }
}

// Copies `count` values from `from` into `to`, each converted by `convert`
// from its bits, and counts the values whose exponent bits are all set: NaN
// and infinity. One pass, split over the intra-op threads.
template <class Bits, class To, class Convert>
int64_t copy_bits_counting_nonfinite(const Bits* from, To* to, int64_t count, Bits exponent,
                                     Convert convert) {
  std::atomic<int64_t> nonfinite{0};
  at::parallel_for(0, count, int64_t{1} << 16, [&](int64_t begin, int64_t end) {
    int64_t local = 0;
    for (int64_t i = begin; i < end; ++i) {
      const Bits bits = from[i];
      to[i] = convert(bits);
      local += (bits & exponent) == exponent;
    }
    nonfinite += local;
  });
  return nonfinite.load();
}

// The copy of copy_finite_weight with the non-finite values counted on the
// way, for contiguous CPU tensors of one floating dtype, or bfloat16 into
// float32 (widening is a shift of the bits, exactly as copy_ does it);
// nullopt for any other pair, which copy_ handles.
std::optional<int64_t> copy_counting_nonfinite(const at::Tensor& parameter,
                                               const at::Tensor& source) {
  if (!parameter.device().is_cpu() || !source.device().is_cpu() || !parameter.is_contiguous() ||
      !source.is_contiguous())
    return std::nullopt;
  const at::ScalarType from = source.scalar_type(), to = parameter.scalar_type();
  const int64_t count = source.numel();
  auto same = [](auto bits) { return bits; };
  if (from == at::kFloat && to == at::kFloat) {
    return copy_bits_counting_nonfinite(static_cast<const uint32_t*>(source.const_data_ptr()),
                                        static_cast<uint32_t*>(parameter.mutable_data_ptr()), count,
                                        uint32_t{0x7f800000}, same);
  }
  if (from == to && (from == at::kBFloat16 || from == at::kHalf)) {
    const uint16_t exponent = from == at::kBFloat16 ? 0x7f80 : 0x7c00;
    return copy_bits_counting_nonfinite(static_cast<const uint16_t*>(source.const_data_ptr()),
                                        static_cast<uint16_t*>(parameter.mutable_data_ptr()), count,
                                        exponent, same);
  }
  if (from == at::kBFloat16 && to == at::kFloat) {
    return copy_bits_counting_nonfinite(
        static_cast<const uint16_t*>(source.const_data_ptr()),
        static_cast<uint32_t*>(parameter.mutable_data_ptr()), count, uint16_t{0x7f80},
        [](uint16_t bits) { return static_cast<uint32_t>(bits) << 16; });
  }
  return std::nullopt;
}

}  // namespace

void copy_finite_weight(const at::Tensor& parameter, const at::Tensor& source, const fs::path& file,
                        const std::string& name) {
  TORCH_CHECK(parameter.sizes() == source.sizes(), name, ": copying ", source.sizes(), " into ",
              parameter.sizes());
  std::optional<int64_t> counted = copy_counting_nonfinite(parameter, source);
  if (!counted) {
    parameter.copy_(source);
    // One read-only pass: the sum of finite values is finite unless it passes
    // the dtype's range, and then the exact count below finds nothing.
    if (!at::isFloatingType(parameter.scalar_type()) || parameter.numel() == 0 ||
        std::isfinite(parameter.sum().item<double>()))
      return;
  } else if (*counted == 0) {
    return;
  }
  const int64_t nan = parameter.isnan().sum().item<int64_t>();
  const int64_t inf = parameter.isinf().sum().item<int64_t>();
  if (nan == 0 && inf == 0) return;
  throw_data_error(file.string() + ": tensor '" + name + "' holds " + std::to_string(nan) +
                   " NaN and " + std::to_string(inf) + " infinite values (of " +
                   std::to_string(parameter.numel()) + "): the weights are broken");
}

Transformer load_pretrained(const fs::path& folder, at::Device device, at::ScalarType dtype) {
  ModelConfig config = read_model_config(folder);
  FolderWeights weights = read_weights(folder);
  Transformer model(config);
  model->to(dtype);
  // A tied model's lm_head.weight, when a writer kept it, is the embedding again.
  std::set<std::string> ignored;
  if (config.tie_word_embeddings) ignored.insert("lm_head.weight");
  copy_parameters(folder, named(*model), weights, ignored);
  model->to(device);
  return model;
}

PretrainedWithHead load_pretrained_with_head(const fs::path& folder, ScalarHeadKind kind,
                                             at::Device device, at::ScalarType dtype) {
  ModelConfig config = read_model_config(folder);
  FolderWeights weights = read_weights(folder);
  const TensorMap& tensors = weights.tensors;
  PretrainedWithHead out;
  out.model = Transformer(config, /*with_lm_head=*/tensors.count("lm_head.weight") > 0);
  out.head = ScalarHead(kind, config.hidden_size);
  out.model->to(dtype);
  out.head->to(dtype);
  const auto head_parameters = named(*out.head);
  const bool has_head = std::any_of(head_parameters.begin(), head_parameters.end(),
                                    [&](const auto& p) { return tensors.count(p.first) > 0; });
  std::set<std::string> ignored;
  if (config.tie_word_embeddings) ignored.insert("lm_head.weight");
  // A head of the other kind (a reward model becoming a value model) is not ours to load.
  for (const auto& [name, tensor] : tensors) {
    const bool ours = std::any_of(head_parameters.begin(), head_parameters.end(),
                                  [&](const auto& p) { return p.first == name; });
    if (is_head_tensor(name) && !ours) ignored.insert(name);
  }
  auto parameters = named(*out.model);
  if (has_head) {
    parameters.insert(parameters.end(), head_parameters.begin(), head_parameters.end());
  } else {
    out.head_is_new = true;
    log_info() << folder.string() << ": no " << scalar_head_kind_name(kind)
               << " head; initialised a new one";
  }
  copy_parameters(folder, parameters, weights, ignored);
  out.model->to(device);
  out.head->to(device);
  return out;
}

void save_pretrained(Transformer& model, const fs::path& folder, const SaveOptions& options) {
  const ModelConfig& config = model->config();
  std::error_code error;
  fs::create_directories(folder, error);
  if (error) throw_io_error(folder.string() + ": cannot create: " + error.message());

  const bool reward = !options.head.is_empty() && options.head->kind() == ScalarHeadKind::kReward;
  std::vector<std::pair<std::string, at::Tensor>> parameters;
  for (auto& [name, tensor] : named(*model)) {
    if (reward && name == "lm_head.weight") continue;  // sequence classifiers have no lm_head
    parameters.emplace_back(name, tensor.detach());
  }
  if (!options.head.is_empty()) {
    for (auto& [name, tensor] : named(*options.head))
      parameters.emplace_back(name, tensor.detach());
  }
  const at::ScalarType dtype = model->model->embed_tokens->weight.scalar_type();

  // Group parameters into shards in module order, as Hugging Face does.
  std::vector<std::vector<size_t>> shards(1);
  int64_t shard_bytes = 0, total_bytes = 0;
  for (size_t i = 0; i < parameters.size(); ++i) {
    const int64_t bytes = parameters[i].second.numel() * parameters[i].second.element_size();
    if (!shards.back().empty() && shard_bytes + bytes > options.max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(i);
    shard_bytes += bytes;
    total_bytes += bytes;
  }
  // Remove weight files of an earlier save so the folder holds exactly one layout.
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    const bool old_shard = name.starts_with("model-") && name.find("-of-") != std::string::npos &&
                           name.ends_with(".safetensors");
    if (old_shard || name == kIndexFile || name == kSingleFile) fs::remove(entry.path());
  }
  const std::map<std::string, std::string> metadata = {{"format", "pt"}};
  if (shards.size() == 1) {
    TensorMap tensors;
    for (size_t i : shards[0]) tensors.emplace(parameters[i]);
    write_safetensors(folder / kSingleFile, tensors, metadata);
  } else {
    json weight_map = json::object();
    for (size_t s = 0; s < shards.size(); ++s) {
      char file[64];
      std::snprintf(file, sizeof(file), "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
      TensorMap tensors;
      for (size_t i : shards[s]) {
        tensors.emplace(parameters[i]);
        weight_map[parameters[i].first] = file;
      }
      write_safetensors(folder / file, tensors, metadata);
    }
    const json index = {{"metadata", {{"total_size", total_bytes}}}, {"weight_map", weight_map}};
    write_file_atomically(folder / kIndexFile, index.dump(2) + "\n");
  }

  ModelConfig saved = config;
  saved.torch_dtype = dtype_config_name(dtype);
  std::string architecture;
  if (reward) architecture = config.hf_architecture("ForSequenceClassification");
  json config_json = saved.to_hf_json(architecture);
  if (reward) {
    config_json["id2label"] = {{"0", "LABEL_0"}};
    config_json["label2id"] = {{"LABEL_0", 0}};
  }
  write_file_atomically(folder / "config.json", config_json.dump(2) + "\n");

  json generation = config.generation_config;
  if (!generation.is_object()) {
    generation = json::object();
    if (config.bos_token_id >= 0) generation["bos_token_id"] = config.bos_token_id;
    if (!config.eos_token_ids.empty()) {
      generation["eos_token_id"] = config.eos_token_ids.size() == 1 ? json(config.eos_token_ids[0])
                                                                    : json(config.eos_token_ids);
    }
    if (config.pad_token_id >= 0) generation["pad_token_id"] = config.pad_token_id;
  }
  write_file_atomically(folder / "generation_config.json", generation.dump(2) + "\n");
  if (!options.tokenizer_source.empty()) copy_tokenizer_files(options.tokenizer_source, folder);
}

Transformer make_random_transformer(const ModelConfig& config, uint64_t seed, double std,
                                    at::Device device, at::ScalarType dtype) {
  Transformer model(config);
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  {
    at::NoGradGuard no_grad;
    for (const auto& item : model->named_parameters()) {
      const std::string& name = item.key();
      at::Tensor parameter = item.value();
      if (name.find("norm.") != std::string::npos) {
        parameter.fill_(1.0);
      } else if (name.ends_with(".bias")) {
        parameter.zero_();
      } else {
        parameter.normal_(0.0, std, generator);
      }
    }
  }
  model->to(device, dtype);
  return model;
}

}  // namespace r1kit
