// `r1kit export --merge`: a PEFT adapter fixture (tools/make_peft_fixture.py)
// merged into its base gives a plain Hugging Face folder whose logits are
// PEFT's for base + adapter; mistakes are one line with the exit code of
// their kind.
#include <gtest/gtest.h>

#include <algorithm>

#include "common/safetensors.h"
#include "policy/checkpoint.h"
#include "policy/peft_adapter.h"
#include "tests/apps/run_command.h"
#include "tests/support/temp_folder.h"
#include "tests/support/tiny_model.h"

namespace r1kit {
namespace {

using testing::fixture_path;
using testing::run_r1kit;
using testing::TempFolder;

size_t count_lines(const std::string& text) { return std::count(text.begin(), text.end(), '\n'); }

TEST(ExportCommand, MergedFolderHasPeftsLogits) {
  TempFolder folder;
  for (const auto& [adapter, base] :
       {std::pair{"tiny-qwen2-lora", "tiny-qwen2"}, std::pair{"tiny-llama-lora", "tiny-llama"}}) {
    const auto output = folder / adapter;
    const auto result =
        run_r1kit("export --merge --adapter " + fixture_path(adapter).string() + " --base " +
                  fixture_path(base).string() + " --output " + output.string());
    ASSERT_EQ(result.exit_code, 0) << result.output;
    EXPECT_TRUE(std::filesystem::exists(output / "tokenizer.json"));
    EXPECT_FALSE(std::filesystem::exists(output / kAdapterConfigFile));
    Transformer merged = load_pretrained(output);
    auto expected = read_safetensors(fixture_path(adapter) / "expected.safetensors").tensors;
    at::NoGradGuard no_grad;
    const at::Tensor logits = merged->forward(expected["tokens"], expected["mask"]);
    const at::Tensor real = expected["mask"].to(at::kBool);
    EXPECT_LT((logits - expected["logits"]).abs().index({real}).max().item<double>(), 1e-4)
        << adapter;
  }
}

TEST(ExportCommand, AdapterForAnotherBaseIsOneLineNamingTheTensor) {
  TempFolder folder;
  const std::string small = testing::write_tiny_policy(folder / "small").string();
  const auto result =
      run_r1kit("export --merge --adapter " + fixture_path("tiny-qwen2-lora").string() +
                " --base " + small + " --output " + (folder / "out").string());
  EXPECT_NE(result.exit_code, 0);
  EXPECT_EQ(count_lines(result.output), 1u) << result.output;
  EXPECT_NE(result.output.find("adapter_model.safetensors: base_model.model."), std::string::npos)
      << result.output;
}

TEST(ExportCommand, WithoutMergeIsAUsageError) {
  TempFolder folder;
  const auto result = run_r1kit("export --adapter " + fixture_path("tiny-qwen2-lora").string() +
                                " --output " + (folder / "out").string());
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_EQ(count_lines(result.output), 1u) << result.output;
}

}  // namespace
}  // namespace r1kit
