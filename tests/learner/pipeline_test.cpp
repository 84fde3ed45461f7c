// Pipelines (learner/pipeline.h): a tiny R1 pipeline from nothing (generate ->
// prepare -> pretrain 2 steps -> generate -> SFT 2 steps) runs end to end,
// variables are substituted, a mistake in a later step stops the pipeline
// before its first step, --resume skips finished steps, a step kind registered
// from outside the library loads and runs, and a plot step without the plot
// library (this binary does not link it) is a clear error.
// No golden values from tools/: every expected number is computed here.
#include "learner/pipeline.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/error.h"
#include "common/run_dir.h"
#include "tests/learner/learner_test_util.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string tokenizer_file() {
  return std::string(R1KIT_SOURCE_DIR) + "/configs/r1_arith/tokenizer.json";
}

json addition(bool worked_steps) {
  return {{"name", "addition"},
          {"options", {{"digits", 1}, {"eval_size", 8}, {"worked_steps", worked_steps}}},
          {"prompt_template", "plain"}};
}

// The SFT stage as a recipe file beside the pipeline, so the step reads it
// relative to the pipeline file's folder.
json tiny_sft_recipe() {
  return {{"stage", "sft"},
          {"seed", 99},
          {"output_dir", "runs/ignored"},
          {"model", {{"path", "set by the pipeline"}}},
          {"sft", {{"train_file", "set by the pipeline"}, {"max_length", 64}, {"max_steps", 2}}},
          {"optimizer", {{"learning_rate", 0.001}, {"lr_scheduler_type", "constant"}}}};
}

json tiny_pipeline(const fs::path& out) {
  json model_config = {{"model_type", "llama"},
                       {"hidden_size", 32},
                       {"intermediate_size", 64},
                       {"num_hidden_layers", 2},
                       {"num_attention_heads", 4},
                       {"num_key_value_heads", 2},
                       {"max_position_embeddings", 128},
                       {"tie_word_embeddings", true},
                       {"bos_token_id", 1},
                       {"eos_token_id", 2},
                       {"pad_token_id", 0}};
  json pretrain = {{"stage", "pretrain"},
                   {"model", {{"config", model_config}, {"tokenizer", tokenizer_file()}}},
                   {"pretrain",
                    {{"data", "${output_dir}/shards"},
                     {"seq_len", 32},
                     {"per_device_train_batch_size", 4},
                     {"max_steps", 2},
                     {"save_steps", 1},
                     {"save_total_limit", 0}}},
                   {"optimizer", {{"learning_rate", 0.001}}}};
  return {{"pipeline", "tiny"},
          {"seed", 3},
          {"output_dir", out.string() + "/seed-${seed}"},
          {"steps",
           {{{"name", "corpus"},
             {"generate",
              {{"environment", addition(true)},
               {"format", "text"},
               {"count", 200},
               {"output", "${output_dir}/corpus.jsonl"}}}},
            {{"name", "shards"},
             {"prepare",
              {{"inputs", {"${output_dir}/corpus.jsonl"}},
               {"output_dir", "${output_dir}/shards"},
               {"tokenizer", tokenizer_file()},
               {"num_threads", 1}}}},
            {{"name", "pretrain"}, {"recipe", pretrain}},
            {{"name", "sft_data"},
             {"seed_offset", 1000},
             {"generate",
              {{"environment", addition(true)},
               {"format", "sft"},
               {"count", 16},
               {"output", "${output_dir}/sft.jsonl"}}}},
            {{"name", "sft"},
             {"recipe", "sft.json"},
             {"set",
              {{"model.path", "${output_dir}/pretrain/final"},
               {"sft.train_file", "${output_dir}/sft.jsonl"}}}}}}};
}

// Writes the pipeline (and the SFT recipe it names) into `root`; returns its path.
std::string write_pipeline(const fs::path& root, const json& pipeline) {
  std::ofstream(root / "sft.json") << tiny_sft_recipe().dump(2);
  std::ofstream(root / "pipeline.json") << pipeline.dump(2);
  return (root / "pipeline.json").string();
}

size_t count_lines(const fs::path& path) {
  std::ifstream in(path);
  size_t lines = 0;
  for (std::string line; std::getline(in, line);) ++lines;
  return lines;
}

std::vector<std::string> finished_steps(const fs::path& out) {
  std::vector<std::string> names;
  const json state = read_json_file((out / "pipeline_state.json").string());
  for (const json& step : state.at("finished")) {
    names.push_back(step.at("name").get<std::string>());
  }
  return names;
}

TEST(Pipeline, RunsEveryStepFromNothingAndWritesTheirOutputs) {
  const testing::TempFolder root;
  Pipeline pipeline = load_pipeline(write_pipeline(root.path(), tiny_pipeline(root.path())), {});
  EXPECT_TRUE(run_pipeline(pipeline, {}));

  fs::path out = root / "seed-3";
  EXPECT_EQ(count_lines(out / "corpus.jsonl"), 200u);
  EXPECT_TRUE(fs::exists(out / "shards" / "manifest.json"));
  EXPECT_TRUE(fs::exists(out / "pretrain" / "final" / "config.json"));
  EXPECT_EQ(count_lines(out / "sft.jsonl"), 16u);
  EXPECT_TRUE(fs::exists(out / "sft" / "final" / "config.json"));
  EXPECT_EQ(count_lines(out / "sft" / "metrics.jsonl"), 2u);
  // The stage gets the pipeline's seed and <output_dir>/<name>, not its file's own.
  json sft_config = read_json_file((out / "sft" / "config.json").string());
  EXPECT_EQ(sft_config.at("seed"), 3);
  EXPECT_EQ(sft_config.at("output_dir"), (out / "sft").string());
  EXPECT_EQ(sft_config.at("sft").at("max_steps"), 2);
  EXPECT_EQ(read_json_file((out / "pipeline.json").string()), pipeline.resolved());
  EXPECT_EQ(finished_steps(out),
            (std::vector<std::string>{"corpus", "shards", "pretrain", "sft_data", "sft"}));
}

TEST(Pipeline, SubstitutesSeedAndOutputDirAndAppliesSeedOffset) {
  const testing::TempFolder root;
  json file = tiny_pipeline(root.path());
  file["steps"][4]["set"]["sft.max_steps"] = "${seed}";  // alone in its string: stays a number
  std::string path = write_pipeline(root.path(), file);
  Pipeline pipeline =
      load_pipeline(path, {"seed=7", "output_dir=" + (root / "other-${seed}").string()});
  const std::string out = (root / "other-7").string();
  EXPECT_EQ(pipeline.seed, 7);
  EXPECT_EQ(pipeline.output_dir, out);
  ASSERT_EQ(pipeline.steps.size(), 5u);
  EXPECT_EQ(pipeline.steps[0].generate.seed, 7);
  EXPECT_EQ(pipeline.steps[0].generate.output, out + "/corpus.jsonl");
  EXPECT_EQ(pipeline.steps[1].prepare.inputs, std::vector<std::string>{out + "/corpus.jsonl"});
  EXPECT_EQ(pipeline.steps[2].recipe.pretrain.data, out + "/shards");
  EXPECT_EQ(pipeline.steps[2].recipe.output_dir, out + "/pretrain");
  EXPECT_EQ(pipeline.steps[3].generate.seed, 1007);
  EXPECT_EQ(pipeline.steps[4].recipe.seed, 7);
  EXPECT_EQ(pipeline.steps[4].recipe.sft.max_steps, 7);
  EXPECT_EQ(pipeline.steps[4].recipe.model.path, out + "/pretrain/final");

  file["steps"][1]["prepare"]["output_dir"] = "${output}/shards";
  try {
    load_pipeline(write_pipeline(root.path(), file), {});
    FAIL() << "an unknown variable must be an error";
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("step \"shards\": prepare.output_dir: unknown variable ${output}"),
              std::string::npos)
        << message;
  }
}

TEST(Pipeline, MistakeInALaterStepNamesFileStepAndKeyBeforeTheFirstStepRuns) {
  const testing::TempFolder root;
  json file = tiny_pipeline(root.path());
  file["steps"][4]["set"]["sft.max_step"] = 2;
  std::string path = write_pipeline(root.path(), file);
  try {
    load_pipeline(path, {});
    FAIL() << "a typo in the sft step must be an error";
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_EQ(message.rfind(path + ": step \"sft\" (", 0), 0u) << message;
    EXPECT_NE(message.find("sft.json): sft.max_step: unknown key (did you mean \"max_steps\"?)"),
              std::string::npos)
        << message;
  }
  EXPECT_FALSE(fs::exists(root / "seed-3"));

  file = tiny_pipeline(root.path());
  file["steps"][3]["generate"]["format"] = "sfft";
  EXPECT_THROW(load_pipeline(write_pipeline(root.path(), file), {}), Error);
  file = tiny_pipeline(root.path());
  file["steps"][3]["name"] = "corpus";
  EXPECT_THROW(load_pipeline(write_pipeline(root.path(), file), {}), Error);
  file = tiny_pipeline(root.path());
  file["steps"][1]["recipe"] = "sft.json";  // two kinds in one step
  EXPECT_THROW(load_pipeline(write_pipeline(root.path(), file), {}), Error);
  EXPECT_FALSE(fs::exists(root / "seed-3"));
}

TEST(Pipeline, ResumeSkipsFinishedStepsAndResumesTheInterruptedStage) {
  const testing::TempFolder root;
  std::string path = write_pipeline(root.path(), tiny_pipeline(root.path()));
  Pipeline pipeline = load_pipeline(path, {});
  run_pipeline(pipeline, {});
  fs::path out = root / "seed-3";
  const std::vector<json> whole = read_jsonl(out / "pretrain" / "metrics.jsonl");
  ASSERT_EQ(whole.size(), 2u);

  // As if killed during pretrain after its step-1 checkpoint: the state lists
  // the two data steps, the later outputs are gone.
  json state = read_json_file((out / "pipeline_state.json").string());
  while (state["finished"].size() > 2) state["finished"].erase(2);
  write_file_atomically(out / "pipeline_state.json", state.dump());
  fs::remove_all(out / "pretrain" / "checkpoints" / "step-2");
  fs::remove_all(out / "pretrain" / "final");
  fs::remove_all(out / "sft");
  fs::remove(out / "corpus.jsonl");  // a skipped step does not write it again
  run_pipeline(pipeline, {.resume = true});
  EXPECT_FALSE(fs::exists(out / "corpus.jsonl"));
  EXPECT_TRUE(fs::exists(out / "sft" / "final" / "config.json"));
  const std::vector<json> resumed = read_jsonl(out / "pretrain" / "metrics.jsonl");
  ASSERT_EQ(resumed.size(), 2u);  // step 1 kept from the first run, step 2 written again
  EXPECT_EQ(resumed[0].at("step"), 1);
  EXPECT_EQ(resumed[1].at("step"), 2);
  EXPECT_NEAR(resumed[1].at("loss").get<double>(), whole[1].at("loss").get<double>(), 1e-6);

  // A step whose definition changed runs again, and so does every later one.
  json changed = tiny_pipeline(root.path());
  changed["steps"][3]["generate"]["count"] = 8;
  Pipeline edited = load_pipeline(write_pipeline(root.path(), changed), {});
  run_pipeline(edited, {.resume = true});
  EXPECT_FALSE(fs::exists(out / "corpus.jsonl"));
  EXPECT_EQ(count_lines(out / "sft.jsonl"), 8u);
  EXPECT_EQ(finished_steps(out).size(), 5u);
}

TEST(Pipeline, UntilStopsAfterTheNamedStepAndResumeRunsTheRest) {
  const testing::TempFolder root;
  std::string path = write_pipeline(root.path(), tiny_pipeline(root.path()));
  Pipeline pipeline = load_pipeline(path, {});
  fs::path out = root / "seed-3";
  try {
    run_pipeline(pipeline, {.until = "nope"});
    FAIL() << "expected a usage error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "--until nope: no such step; the steps are corpus, shards, pretrain"),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(run_pipeline(pipeline, {.until = "pretrain"}));
  EXPECT_EQ(finished_steps(out).size(), 3u);
  EXPECT_TRUE(fs::exists(out / "pretrain" / "final" / "config.json"));
  EXPECT_FALSE(fs::exists(out / "sft"));
  run_pipeline(pipeline, {.resume = true});
  EXPECT_EQ(finished_steps(out).size(), 5u);
  EXPECT_TRUE(fs::exists(out / "sft" / "final" / "config.json"));
}

// A step kind as a library outside libr1kit adds one: "touch" writes a file.
R1KIT_REGISTER(pipeline_step_kinds(), "touch",
               (PipelineStepKind{
                   [](const json& section, const std::string& source) {
                     if (!section.is_object() || !section.contains("file"))
                       throw_config_error(source + ": touch.file: required key is missing");
                     return json{{"file", section["file"]}, {"text", section.value("text", "")}};
                   },
                   [](const json& resolved, const std::string&) {
                     std::ofstream(resolved.at("file").get<std::string>())
                         << resolved.at("text").get<std::string>();
                   }}));

TEST(Pipeline, AStepKindRegisteredOutsideTheLibraryLoadsAndRunsInOrder) {
  const testing::TempFolder temp;
  const fs::path root = temp.path();
  json file = tiny_pipeline(root);
  file["steps"] = {file["steps"][0],
                   {{"name", "mark"}, {"touch", {{"file", "${output_dir}/mark.txt"}}}}};
  Pipeline pipeline = load_pipeline(write_pipeline(root, file), {});
  fs::path out = root / "seed-3";
  ASSERT_EQ(pipeline.steps.size(), 2u);
  EXPECT_EQ(pipeline.steps[1].kind, "touch");
  EXPECT_EQ(pipeline.steps[1].resolved.at("touch"),
            (json{{"file", (out / "mark.txt").string()}, {"text", ""}}));
  EXPECT_TRUE(run_pipeline(pipeline, {}));
  EXPECT_TRUE(fs::exists(out / "mark.txt"));
  EXPECT_EQ(finished_steps(out), (std::vector<std::string>{"corpus", "mark"}));

  file["steps"][1]["touch"] = json::object();
  try {
    load_pipeline(write_pipeline(root, file), {});
    FAIL() << "the kind's own check must run at load";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("step \"mark\": touch.file"), std::string::npos)
        << e.what();
  }
}

TEST(Pipeline, APlotStepWithoutThePlotLibraryIsAClearErrorBeforeAnyStepRuns) {
  ASSERT_FALSE(pipeline_step_kinds().contains("plot")) << "tests_learner links no plot library";
  const testing::TempFolder temp;
  const fs::path root = temp.path();
  json file = tiny_pipeline(root);
  file["steps"].push_back(
      {{"name", "plots"},
       {"plot", {{"runs", {"${output_dir}/sft"}}, {"out", "${output_dir}/plots"}}}});
  std::string path = write_pipeline(root, file);
  try {
    load_pipeline(path, {});
    FAIL() << "a plot step needs the plot library";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    const std::string message = e.what();
    EXPECT_EQ(message.rfind(path + ": step \"plots\": unknown step kind \"plot\"", 0), 0u)
        << message;
    EXPECT_NE(message.find("the plot library (r1kit_plot)"), std::string::npos) << message;
  }
  EXPECT_FALSE(fs::exists(root / "seed-3"));
}

}  // namespace
}  // namespace r1kit
