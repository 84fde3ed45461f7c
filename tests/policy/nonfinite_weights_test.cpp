// Weights with NaN or infinite values are refused where they are read: a
// model folder (load_pretrained, load_pretrained_with_head) and a PEFT
// adapter, each with an error naming the file, the tensor and the counts.
// The broken folders are copies of the committed fixtures with values replaced.
#include <gtest/gtest.h>

#include <filesystem>
#include <limits>

#include "common/error.h"
#include "common/safetensors.h"
#include "policy/checkpoint.h"
#include "policy/lora.h"
#include "policy/peft_adapter.h"
#include "tests/support/temp_folder.h"
#include "tests/support/tiny_model.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;
using testing::fixture_path;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInfinity = std::numeric_limits<float>::infinity();

// Copies the fixture `name` to `folder`, then sets values of `tensor` in `file`:
// the first `nan` to NaN, the next `inf` to +inf.
fs::path break_fixture(const std::string& name, const fs::path& folder, const std::string& file,
                       const std::string& tensor, int64_t nan, int64_t inf) {
  fs::copy(fixture_path(name), folder, fs::copy_options::recursive);
  std::map<std::string, at::Tensor> tensors;
  for (auto& [key, value] : read_safetensors(folder / file).tensors) tensors[key] = value.clone();
  at::Tensor flat = tensors.at(tensor).view({-1});
  flat.narrow(0, 0, nan).fill_(kNaN);
  flat.narrow(0, nan, inf).fill_(kInfinity);
  write_safetensors(folder / file, tensors, {{"format", "pt"}});
  return folder;
}

// The message of the data error `load` throws; "" (and a failure) when it throws none.
template <class Load>
std::string data_error_of(Load load) {
  try {
    load();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kData) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

void expect_contains(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << "\"" << part << "\" not in: " << text;
}

TEST(NonfiniteWeights, FinalNormWithNaNIsADataErrorNamingFileTensorAndCount) {
  const testing::TempFolder root;
  const fs::path model =
      break_fixture("tiny-llama", root / "model", "model.safetensors", "model.norm.weight", 3, 0);
  const std::string message = data_error_of([&] { load_pretrained(model); });
  expect_contains(message, (model / "model.safetensors").string());
  expect_contains(message, "'model.norm.weight'");
  expect_contains(message, "3 NaN and 0 infinite values (of 64)");
}

TEST(NonfiniteWeights, LayerNormWithInfinityIsRefusedInEveryDtype) {
  const testing::TempFolder root;
  const fs::path model = break_fixture("tiny-qwen2", root / "model", "model.safetensors",
                                       "model.layers.1.input_layernorm.weight", 1, 2);
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    const std::string message = data_error_of([&] { load_pretrained(model, at::kCPU, dtype); });
    expect_contains(message, "'model.layers.1.input_layernorm.weight' holds 1 NaN and 2 infinite");
  }
}

TEST(NonfiniteWeights, ModelWithAHeadIsCheckedToo) {
  const testing::TempFolder root;
  const fs::path model = break_fixture("tiny-llama", root / "model", "model.safetensors",
                                       "model.embed_tokens.weight", 0, 5);
  const std::string message =
      data_error_of([&] { load_pretrained_with_head(model, ScalarHeadKind::kValue); });
  expect_contains(message, "'model.embed_tokens.weight' holds 0 NaN and 5 infinite");
}

TEST(NonfiniteWeights, FiniteWeightsLoadAsBefore) {
  Transformer model = load_pretrained(fixture_path("tiny-llama"));
  const auto stored = read_safetensors(fixture_path("tiny-llama") / "model.safetensors").tensors;
  EXPECT_TRUE(at::equal(model->model->norm->weight, stored.at("model.norm.weight")));
}

TEST(NonfiniteWeights, PeftAdapterWithNaNIsADataErrorNamingItsFile) {
  const testing::TempFolder root;
  const std::string key = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight";
  const fs::path adapter =
      break_fixture("tiny-llama-lora", root / "adapter", "adapter_model.safetensors", key, 2, 0);
  Transformer model = load_pretrained(fixture_path("tiny-llama"));
  LoraConfig config;
  config.path = adapter.string();
  const std::string message =
      data_error_of([&] { attach_lora(*model, config, 0, "test: model.lora"); });
  expect_contains(message, (adapter / "adapter_model.safetensors").string());
  expect_contains(message, "'" + key + "' holds 2 NaN and 0 infinite");
}

TEST(NonfiniteWeights, CopyCountsBothKindsInEveryDtypePair) {
  const at::Tensor broken = at::tensor({1.0f, kNaN, -kInfinity, kInfinity, kNaN, 2.0f});
  for (at::ScalarType from : {at::kFloat, at::kBFloat16, at::kHalf}) {
    for (at::ScalarType to : {at::kFloat, at::kBFloat16, at::kHalf}) {
      at::Tensor parameter = at::zeros({6}, to);
      const std::string message = data_error_of(
          [&] { copy_finite_weight(parameter, broken.to(from), "w.safetensors", "w"); });
      expect_contains(message,
                      "w.safetensors: tensor 'w' holds 2 NaN and 2 infinite values (of 6)");
    }
  }
}

TEST(NonfiniteWeights, CopyOfFiniteValuesEqualsCopy) {
  const at::Tensor source = at::randn({3, 70000});
  for (at::ScalarType from : {at::kFloat, at::kBFloat16, at::kHalf}) {
    for (at::ScalarType to : {at::kFloat, at::kBFloat16}) {
      at::Tensor parameter = at::empty({3, 70000}, to);
      copy_finite_weight(parameter, source.to(from), "w.safetensors", "w");
      EXPECT_TRUE(at::equal(parameter, source.to(from).to(to))) << from << " -> " << to;
    }
  }
  // Finite values whose sum passes float32's range, and integers, pass.
  for (at::ScalarType to : {at::kFloat, at::kBFloat16}) {
    at::Tensor big = at::empty({4}, to);
    EXPECT_NO_THROW(copy_finite_weight(big, at::full({4}, 3e38f), "big.safetensors", "big"));
  }
  at::Tensor ids = at::empty({10}, at::kLong);
  EXPECT_NO_THROW(copy_finite_weight(ids, at::arange(10), "ids.safetensors", "ids"));
}

}  // namespace
}  // namespace r1kit
