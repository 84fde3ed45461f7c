// Recipe files that JSON parsers accept or reject in surprising ways: each is
// a config or I/O error that names the file and, where there is one, the key
// path; never a bare parser exception, a wrapped number or a silent last-wins.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "common/config.h"
#include "common/error.h"
#include "tests/support/temp_folder.h"

namespace r1kit {
namespace {

struct Section {
  int64_t max_steps = 0;
  void visit(ConfigVisitor& v) { v.field("max_steps", max_steps); }
};

struct Item {
  std::string name;
  double weight = 1.0;
  void visit(ConfigVisitor& v) {
    v.field("name", name);
    v.field("weight", weight);
  }
};

struct SmallRecipe {
  int64_t seed = 0;
  double learning_rate = 0.0;
  Section trainer;
  std::vector<Item> rewards;
  void visit(ConfigVisitor& v) {
    v.field("seed", seed, {.min = 0.0});
    v.field("learning_rate", learning_rate);
    v.section("trainer", trainer);
    v.list("rewards", rewards);
  }
};

// The message of the r1kit::Error that `run` throws, checking its kind.
template <class Run>
std::string error_message(Run run, ErrorKind kind) {
  try {
    run();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

TEST(ConfigHostileInput, NumberTooLargeForADoubleNamesTheFile) {
  const testing::TempFolder folder;
  const std::string path = folder.write_file("recipe.json", R"({"learning_rate": 1e400})");
  const std::string message = error_message([&] { read_json_file(path); }, ErrorKind::kConfig);
  EXPECT_NE(message.find(path + ": invalid JSON"), std::string::npos) << message;
  EXPECT_NE(message.find("1e400"), std::string::npos) << message;
}

TEST(ConfigHostileInput, AFolderInsteadOfAFileSaysSo) {
  const testing::TempFolder folder;
  const std::string message =
      error_message([&] { read_json_file(folder.path().string()); }, ErrorKind::kIo);
  EXPECT_NE(message.find("is a folder, not a JSON file"), std::string::npos) << message;
}

TEST(ConfigHostileInput, IntegerBeyondInt64IsOutOfRangeNotWrapped) {
  const std::string message = error_message(
      [] {
        read_config<SmallRecipe>(nlohmann::json::parse(R"({"seed": 18446744073709551615})"),
                                 "recipe.json");
      },
      ErrorKind::kConfig);
  EXPECT_NE(message.find("recipe.json: seed: must be at most 9223372036854775807, got "
                         "18446744073709551615"),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find("-1"), std::string::npos) << message;
}

TEST(ConfigHostileInput, DuplicateKeyNamesItsPath) {
  const testing::TempFolder folder;
  const std::string nested =
      folder.write_file("nested.json", R"({"trainer": {"max_steps": 1, "max_steps": 2}})");
  std::string message = error_message(
      [&] { read_json_file(nested, /*reject_duplicate_keys=*/true); }, ErrorKind::kConfig);
  EXPECT_NE(message.find(nested + ": trainer.max_steps: the key appears twice"), std::string::npos)
      << message;
  const std::string in_list = folder.write_file(
      "list.json", R"({"rewards": [{"name": "a"}, {"name": "b", "weight": 1, "weight": 2}]})");
  message = error_message([&] { read_json_file(in_list, /*reject_duplicate_keys=*/true); },
                          ErrorKind::kConfig);
  EXPECT_NE(message.find("rewards[1].weight"), std::string::npos) << message;
  // The same key in two objects is no duplicate; without the check, last wins.
  const std::string fine = folder.write_file(
      "fine.json", R"({"rewards": [{"name": "a"}, {"name": "b"}], "trainer": {"name": 1}})");
  EXPECT_NO_THROW(read_json_file(fine, /*reject_duplicate_keys=*/true));
  EXPECT_EQ(read_json_file(nested)["trainer"]["max_steps"], 2);
}

TEST(ConfigHostileInput, SetReachesListItemsByIndex) {
  nlohmann::json recipe = nlohmann::json::parse(R"({"rewards": [{"name": "a"}, {"name": "b"}]})");
  apply_override(recipe, "rewards.0.weight=2");
  apply_override(recipe, "rewards[1].weight=0.5");
  EXPECT_EQ(recipe["rewards"][0]["weight"], 2);
  EXPECT_EQ(recipe["rewards"][1]["weight"], 0.5);
  const SmallRecipe read = read_config<SmallRecipe>(recipe, "recipe.json");
  EXPECT_EQ(read.rewards[1].weight, 0.5);
  const std::string message =
      error_message([&] { apply_override(recipe, "rewards.2.weight=1"); }, ErrorKind::kUsage);
  EXPECT_NE(message.find("\"rewards\" is a list of 2 items; \"2\" is not an index of it"),
            std::string::npos)
      << message;
}

TEST(ConfigHostileInput, LeafKeyPathsListEverySetting) {
  const auto paths = leaf_key_paths(nlohmann::json::parse(
      R"({"seed": 1, "trainer": {"max_steps": 2, "empty": {}}, "rewards": [{"weight": 1}]})"));
  EXPECT_EQ(paths, (std::vector<std::string>{"rewards[].weight", "seed", "trainer.empty",
                                             "trainer.max_steps"}));
}

TEST(ConfigHostileInput, UnknownKeyHintComesBeforeTheSpellingGuess) {
  const auto hint = [](const std::string& path) {
    return path == "lr" ? std::string("did you mean \"optimizer.learning_rate\"?") : "";
  };
  std::string message = error_message(
      [&] { read_config<SmallRecipe>(nlohmann::json::parse(R"({"lr": 1})"), "r.json", hint); },
      ErrorKind::kConfig);
  EXPECT_NE(message.find("r.json: lr: unknown key (did you mean \"optimizer.learning_rate\"?)"),
            std::string::npos)
      << message;
  message = error_message(
      [&] { read_config<SmallRecipe>(nlohmann::json::parse(R"({"sed": 1})"), "r.json", hint); },
      ErrorKind::kConfig);
  EXPECT_NE(message.find("(did you mean \"seed\"?)"), std::string::npos) << message;
}

}  // namespace
}  // namespace r1kit
