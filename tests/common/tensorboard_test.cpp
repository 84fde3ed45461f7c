// TensorBoard event files: the bytes of a record equal what TensorBoard's own
// protobuf classes and RecordWriter produce, and a written file parses back
// with valid CRCs. Golden hex from `tools/check_tensorboard.py golden`
// (tensorboard 2.21.0, protobuf 7.36.2).
#include "common/tensorboard.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "tests/support/temp_folder.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

constexpr const char* kGoldenFileVersionRecord =
    "1800000000000000a37f4b220900002040fc54d9411a0d627261696e2e4576656e743a322b353110";
constexpr const char* kGoldenScalarsRecord =
    "4700000000000000bac3fb9b0900002040fc54d94110072a3a0a1e0a17636f6d706c6574696f6e732f6d65616e5f6c"
    "656e67"
    "7468150000f7420a090a026b6c156f12833a0a0d0a067265776172641500000000987201c7";

std::string to_hex(std::string_view bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string hex;
  for (unsigned char byte : bytes) {
    hex.push_back(kDigits[byte >> 4]);
    hex.push_back(kDigits[byte & 15]);
  }
  return hex;
}

// A small protobuf reader, enough for Event / Summary / Summary.Value.
class ProtoReader {
 public:
  explicit ProtoReader(std::string_view data) : data_(data) {}
  bool done() const { return position_ >= data_.size(); }

  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0;; shift += 7) {
      EXPECT_LT(position_, data_.size());
      if (position_ >= data_.size()) return value;
      auto byte = static_cast<unsigned char>(data_[position_++]);
      value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if (!(byte & 0x80)) return value;
    }
  }
  template <class T>
  T fixed() {
    T value{};
    EXPECT_LE(position_ + sizeof(T), data_.size());
    std::memcpy(&value, data_.data() + position_, sizeof(T));
    position_ += sizeof(T);
    return value;
  }
  std::string_view bytes() {
    size_t size = varint();
    EXPECT_LE(position_ + size, data_.size());
    std::string_view out = data_.substr(position_, size);
    position_ += size;
    return out;
  }

 private:
  std::string_view data_;
  size_t position_ = 0;
};

struct DecodedEvent {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;
  std::map<std::string, float> scalars;
};

DecodedEvent decode_event(std::string_view data) {
  DecodedEvent event;
  ProtoReader reader(data);
  while (!reader.done()) {
    uint64_t key = reader.varint();
    switch (key) {
      case (1 << 3) | 1:
        event.wall_time = reader.fixed<double>();
        break;
      case (2 << 3) | 0:
        event.step = static_cast<int64_t>(reader.varint());
        break;
      case (3 << 3) | 2:
        event.file_version = reader.bytes();
        break;
      case (5 << 3) | 2: {
        ProtoReader summary(reader.bytes());
        while (!summary.done()) {
          EXPECT_EQ(summary.varint(), (1u << 3) | 2);
          ProtoReader value(summary.bytes());
          std::string tag;
          float simple_value = 0;
          while (!value.done()) {
            uint64_t field = value.varint();
            if (field == ((1 << 3) | 2))
              tag = value.bytes();
            else if (field == ((2 << 3) | 5))
              simple_value = value.fixed<float>();
            else
              ADD_FAILURE() << "unexpected Summary.Value field key " << field;
          }
          event.scalars[tag] = simple_value;
        }
        break;
      }
      default:
        ADD_FAILURE() << "unexpected Event field key " << key;
        return event;
    }
  }
  return event;
}

// Splits a TFRecord file, checking both masked CRCs of every record.
std::vector<DecodedEvent> read_event_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string_view rest = file;
  std::vector<DecodedEvent> events;
  while (!rest.empty()) {
    EXPECT_GE(rest.size(), 16u);
    if (rest.size() < 16) break;
    uint64_t length = 0;
    uint32_t length_crc = 0, data_crc = 0;
    std::memcpy(&length, rest.data(), 8);
    std::memcpy(&length_crc, rest.data() + 8, 4);
    EXPECT_EQ(length_crc, masked_crc32c(rest.substr(0, 8)));
    EXPECT_LE(16 + length, rest.size());
    if (16 + length > rest.size()) break;
    std::string_view data = rest.substr(12, length);
    std::memcpy(&data_crc, rest.data() + 12 + length, 4);
    EXPECT_EQ(data_crc, masked_crc32c(data));
    events.push_back(decode_event(data));
    rest.remove_prefix(16 + length);
  }
  return events;
}

TEST(TensorBoard, Crc32cMatchesTheCastagnoliCheckValue) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);  // the CRC-32C check value of RFC 3720
  EXPECT_EQ(crc32c(""), 0u);
}

TEST(TensorBoard, RecordsMatchTensorBoardsOwnWriterByteForByte) {
  EXPECT_EQ(to_hex(frame_tfrecord(encode_file_version_event(1700000000.5))),
            kGoldenFileVersionRecord);
  std::map<std::string, double> scalars = {
      {"completions/mean_length", 123.5}, {"kl", 0.001}, {"reward", 0.0}};
  EXPECT_EQ(to_hex(frame_tfrecord(encode_scalars_event(1700000000.5, 7, scalars))),
            kGoldenScalarsRecord);
}

TEST(TensorBoard, WrittenFileParsesBackWithValidCrcsWhileTheWriterIsOpen) {
  const testing::TempFolder folder;
  TensorBoardWriter writer(folder / "run");
  std::string name = writer.path().filename().string();
  EXPECT_TRUE(name.starts_with("events.out.tfevents.")) << name;
  EXPECT_TRUE(name.ends_with(".r1kit")) << name;

  writer.add_scalars(1, {{"reward", 0.25}, {"kl", 0.5}});
  writer.add_scalars(2, {{"reward", -1.5}});
  writer.add_scalars(30000000000LL, {{"eval/accuracy", 0.75}});
  // Read without closing: each add_scalars flushed, as a killed run relies on.
  std::vector<DecodedEvent> events = read_event_file(writer.path());
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].file_version, "brain.Event:2");
  EXPECT_GT(events[0].wall_time, 1.6e9);
  EXPECT_EQ(events[1].step, 1);
  EXPECT_EQ(events[1].scalars, (std::map<std::string, float>{{"kl", 0.5f}, {"reward", 0.25f}}));
  EXPECT_GE(events[2].wall_time, events[1].wall_time);
  EXPECT_EQ(events[2].step, 2);
  EXPECT_EQ(events[2].scalars, (std::map<std::string, float>{{"reward", -1.5f}}));
  EXPECT_EQ(events[3].step, 30000000000LL);
  EXPECT_EQ(events[3].scalars, (std::map<std::string, float>{{"eval/accuracy", 0.75f}}));
}

}  // namespace
}  // namespace r1kit
