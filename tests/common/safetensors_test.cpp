// Tests of common/safetensors: round trips and rejection of malformed files.
// Byte layouts follow the format spec (https://github.com/huggingface/safetensors).
#include "common/safetensors.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "tests/support/temp_folder.h"
#include "tests/support/tiny_model.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

// A fresh path in one temporary folder of this binary, removed when it exits.
fs::path temp_file(const std::string& name) {
  static const testing::TempFolder folder("safetensors");
  static std::atomic<int> counter{0};
  return folder / (std::to_string(counter++) + "-" + name);
}

// Writes the raw bytes of a file with the given header text and data bytes.
fs::path raw_file(const std::string& header, size_t data_bytes,
                  const std::string& name = "raw.safetensors",
                  std::optional<uint64_t> declared_size = std::nullopt) {
  fs::path path = temp_file(name);
  std::ofstream out(path, std::ios::binary);
  uint64_t size = declared_size.value_or(header.size());
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>(size >> (8 * i)));
  out << header;
  out << std::string(data_bytes, '\0');
  return path;
}

std::string error_of(const fs::path& path) {
  try {
    read_safetensors(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Safetensors, RoundTripsEveryDtypeAndMetadata) {
  std::map<std::string, at::Tensor> tensors = {
      {"f32", at::randn({3, 4})},
      {"f64", at::randn({2}, at::kDouble)},
      {"bf16", at::randn({5}).to(at::kBFloat16)},
      {"f16", at::randn({2, 3}).to(at::kHalf)},
      {"i64", at::arange(7, at::kLong)},
      {"i32", at::arange(3, at::kInt)},
      {"u8", at::arange(5, at::kByte)},
      {"bool", at::tensor({1, 0, 1}).to(at::kBool)},
      {"empty", at::zeros({0, 4})},
      {"scalar", at::tensor(3.5f).reshape({})},
      {"strided", at::randn({4, 6}).t()},
  };
  const fs::path path = temp_file("all.safetensors");
  write_safetensors(path, tensors, {{"format", "pt"}});
  SafetensorsContents read = read_safetensors(path);
  ASSERT_EQ(read.tensors.size(), tensors.size());
  for (const auto& [name, tensor] : tensors) {
    const at::Tensor& got = read.tensors.at(name);
    EXPECT_EQ(got.scalar_type(), tensor.scalar_type()) << name;
    EXPECT_EQ(got.sizes(), tensor.sizes()) << name;
    EXPECT_TRUE(at::equal(got, tensor)) << name;
  }
  EXPECT_EQ(read.metadata.at("format"), "pt");
}

TEST(Safetensors, HeaderIsPaddedAndDataAligned) {
  const fs::path path = temp_file("aligned.safetensors");
  write_safetensors(
      path,
      {{"a", at::ones({3}, at::kByte)}, {"b", at::ones({5}, at::kDouble)}, {"c", at::ones({1})}});
  std::ifstream in(path, std::ios::binary);
  unsigned char size_bytes[8];
  in.read(reinterpret_cast<char*>(size_bytes), 8);
  uint64_t header = 0;
  for (int i = 7; i >= 0; --i) header = (header << 8) | size_bytes[i];
  EXPECT_EQ(header % 8, 0u);
  auto entries = read_safetensors_header(path);
  // Wider dtypes first keeps every tensor aligned to its element size.
  EXPECT_EQ(entries.at("b").begin, 0u);
  EXPECT_EQ(entries.at("c").begin, 40u);
  EXPECT_EQ(entries.at("a").begin, 44u);
}

TEST(Safetensors, WritingIntoALoadedTensorLeavesTheFileAlone) {
  const fs::path path = temp_file("cow.safetensors");
  write_safetensors(path, {{"x", at::zeros({4})}});
  {
    SafetensorsContents read = read_safetensors(path);
    read.tensors.at("x").fill_(7.0);
  }
  EXPECT_TRUE(at::equal(read_safetensors(path).tensors.at("x"), at::zeros({4})));
}

TEST(Safetensors, TensorsOutliveTheirContents) {
  const fs::path path = temp_file("alive.safetensors");
  write_safetensors(path, {{"x", at::arange(10, at::kFloat)}});
  at::Tensor x = read_safetensors(path).tensors.at("x");
  EXPECT_FLOAT_EQ(x.sum().item<float>(), 45.0f);
}

TEST(Safetensors, RejectsAFileShorterThanTheSizeField) {
  const fs::path path = temp_file("short.safetensors");
  std::ofstream(path, std::ios::binary) << "abc";
  EXPECT_NE(error_of(path).find("fewer than the 8-byte header size"), std::string::npos)
      << error_of(path);
}

TEST(Safetensors, RejectsAHeaderSizeBeyondTheFile) {
  const fs::path path = raw_file("{}", 0, "big.safetensors", 1000);
  EXPECT_NE(error_of(path).find("larger than the rest of the file"), std::string::npos)
      << error_of(path);
}

TEST(Safetensors, RejectsAHugeHeaderSize) {
  const fs::path path = raw_file("{}", 0, "huge.safetensors", uint64_t{1} << 40);
  EXPECT_NE(error_of(path).find("exceeds the limit"), std::string::npos) << error_of(path);
}

TEST(Safetensors, RejectsATruncatedDataSection) {
  const fs::path path = temp_file("truncated.safetensors");
  write_safetensors(path, {{"weight", at::randn({16, 16})}});
  fs::resize_file(path, fs::file_size(path) - 100);
  const std::string error = error_of(path);
  EXPECT_NE(error.find("weight"), std::string::npos) << error;
  EXPECT_NE(error.find("truncated"), std::string::npos) << error;
  EXPECT_NE(error.find(path.string()), std::string::npos) << error;
}

TEST(Safetensors, RejectsCorruptHeaders) {
  EXPECT_NE(error_of(raw_file("[1,2]   ", 0)).find("does not start with '{'"), std::string::npos);
  EXPECT_NE(error_of(raw_file("{\"a\": {", 0)).find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of(raw_file(R"({"a": {"dtype": "F32", "shape": [1]}})", 4))
                .find("missing \"data_offsets\""),
            std::string::npos);
  EXPECT_NE(error_of(raw_file(R"({"a": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 4]}})", 4))
                .find("unknown dtype \"Q4\""),
            std::string::npos);
  EXPECT_NE(
      error_of(raw_file(R"({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4))
          .find("negative"),
      std::string::npos);
  EXPECT_NE(
      error_of(
          raw_file(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": 1}})", 4))
          .find("unknown key"),
      std::string::npos);
  EXPECT_NE(error_of(raw_file(R"({"__metadata__": {"format": 3}})", 0)).find("not a string"),
            std::string::npos);
}

TEST(Safetensors, RejectsDuplicateNames) {
  const std::string header = R"({"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},)"
                             R"( "a": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}})";
  EXPECT_NE(error_of(raw_file(header, 2)).find("appears twice"), std::string::npos);
}

TEST(Safetensors, RejectsAShapeThatDisagreesWithTheByteRange) {
  const std::string error = error_of(
      raw_file(R"({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}})", 20));
  EXPECT_NE(error.find("tensor 'w'"), std::string::npos) << error;
  EXPECT_NE(error.find("needs 24 bytes"), std::string::npos) << error;
}

TEST(Safetensors, RejectsOverlapsGapsAndUncoveredBytes) {
  const std::string overlap = R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                              R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})";
  EXPECT_NE(error_of(raw_file(overlap, 12)).find("'b' overlaps tensor 'a'"), std::string::npos);
  const std::string gap = R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
                          R"( "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})";
  EXPECT_NE(error_of(raw_file(gap, 12)).find("gap"), std::string::npos);
  const std::string tail = R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})";
  EXPECT_NE(error_of(raw_file(tail, 12)).find("no tensor covers"), std::string::npos);
  const std::string past = R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})";
  EXPECT_NE(error_of(raw_file(past, 12)).find("past the end of the file"), std::string::npos);
}

TEST(Safetensors, MissingFileIsAnIoError) {
  try {
    read_safetensors("/nonexistent/model.safetensors");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.safetensors"), std::string::npos);
  }
}

TEST(Safetensors, ReadsAFileWrittenByPythonSafetensors) {
  // tests/fixtures/tiny-llama/model.safetensors comes from tools/make_fixtures.py.
  SafetensorsContents read =
      read_safetensors(testing::fixture_path("tiny-llama/model.safetensors"));
  EXPECT_EQ(read.tensors.at("model.embed_tokens.weight").sizes(), (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(read.metadata.at("format"), "pt");
}

}  // namespace
}  // namespace r1kit
