// The decode plan of a model with LoRA adapters holds the merged weights
// (W + scale * B A): its logits match PEFT's for the committed adapter fixtures
// (tools/make_peft_fixture.py), and a published adapter update reaches the next
// plan while the model itself keeps W unmerged.
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include "common/safetensors.h"
#include "policy/checkpoint.h"
#include "policy/lora.h"
#include "rollout/decode_plan.h"
#include "rollout/engine.h"
#include "tests/support/tiny_model.h"

namespace r1kit {
namespace {

using testing::fixture_path;

// Logits (B, V) of each row's last real token: a ragged prefill through the plan.
at::Tensor plan_last_logits(const DecodePlan& plan, const ModelConfig& config,
                            const at::Tensor& tokens, const at::Tensor& mask) {
  const int64_t rows = tokens.size(0);
  KvCache cache(config, rows, tokens.size(1), at::TensorOptions().dtype(plan.dtype()));
  std::vector<int64_t> row_ids, lengths;
  for (int64_t b = 0; b < rows; ++b) {
    row_ids.push_back(b);
    lengths.push_back(mask[b].sum().item<int64_t>());
  }
  return plan.forward(tokens, cache, row_ids, lengths);
}

TEST(LoraDecodePlan, MergedPlanMatchesPeft) {
  for (const auto& [adapter, base] :
       {std::pair{"tiny-qwen2-lora", "tiny-qwen2"}, std::pair{"tiny-llama-lora", "tiny-llama"}}) {
    Transformer model = load_pretrained(fixture_path(base));
    LoraConfig config;
    config.path = fixture_path(adapter).string();
    attach_lora(*model, config, 0, "test: model.lora");
    auto expected = read_safetensors(fixture_path(adapter) / "expected.safetensors").tensors;
    c10::InferenceMode guard;
    DecodePlan plan(*model, at::kFloat);
    const at::Tensor tokens = expected["tokens"], mask = expected["mask"];
    const at::Tensor logits = plan_last_logits(plan, model->config(), tokens, mask);  // (B, V)
    const at::Tensor last = mask.sum(1) - 1;                                          // (B)
    const at::Tensor reference = expected["logits"].index({at::arange(tokens.size(0)), last});
    EXPECT_LT((logits - reference).abs().max().item<double>(), 1e-4) << adapter;
  }
}

TEST(LoraDecodePlan, PublishedAdapterUpdateReachesTheNextPlan) {
  Transformer model = make_random_transformer(testing::tiny_model_config(40), 7, 0.2);
  LoraConfig config;
  config.r = 4;
  config.target_modules = nlohmann::json::array({"q_proj", "o_proj", "down_proj"});
  attach_lora(*model, config, 3, "test: model.lora");
  auto weights = std::make_shared<PolicyWeights>(model);
  const at::Tensor tokens = at::randint(0, 40, {2, 6}, at::kLong);
  const at::Tensor mask = at::ones({2, 6}, at::kLong);
  at::Tensor before;
  {
    std::shared_lock lock(weights->mutex);
    c10::InferenceMode guard;
    before = plan_last_logits(*weights->decode_plan(at::kFloat), model->config(), tokens, mask);
  }
  const at::Tensor q_weight =
      model->model->layers[0]->as<DecoderLayerImpl>()->self_attn->q_proj->weight.clone();
  weights->publish([](Transformer& published) {
    at::NoGradGuard no_grad;
    for (const auto& item : published->named_parameters()) {
      if (item.key().find(".lora_B.") != std::string::npos) item.value().normal_(0.0, 0.2);
    }
  });
  std::shared_lock lock(weights->mutex);
  c10::InferenceMode guard;
  const at::Tensor after =
      plan_last_logits(*weights->decode_plan(at::kFloat), model->config(), tokens, mask);
  EXPECT_GT((after - before).abs().max().item<double>(), 1e-3);
  const at::Tensor module = model->forward(tokens, mask).narrow(1, 5, 1).squeeze(1);  // (B, V)
  EXPECT_LT((after - module).abs().max().item<double>(), 1e-4);
  EXPECT_TRUE(at::equal(model->model->layers[0]->as<DecoderLayerImpl>()->self_attn->q_proj->weight,
                        q_weight))
      << "the plan merged into the model's own weight";
}

}  // namespace
}  // namespace r1kit
