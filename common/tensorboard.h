// TensorBoard event files with nothing but the standard library: TFRecord
// framing (length, masked CRC32C, data, masked CRC32C) around hand-encoded
// `tensorflow.Event` protobufs carrying scalar summaries. Not thread-safe;
// written by rank 0 only, like the rest of the run folder.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>

namespace r1kit {

// Appends one Event per step to `<folder>/events.out.tfevents.<unix time>.<host>.r1kit`.
//   TensorBoardWriter board(run_dir.path());
//   board.add_scalars(step, {{"reward", 0.5}, {"kl", 1e-3}});   // flushed on return
// `tensorboard --logdir RUN_DIR` (or a parent of several runs) shows the curves.
class TensorBoardWriter {
 public:
  // Creates `folder` if needed and opens the event file, writing the
  // file_version record first. A file of the same name (same second, same
  // host) is appended to, never truncated. Throws an I/O error on failure.
  explicit TensorBoardWriter(const std::filesystem::path& folder);

  // Writes one Event at `step` holding every scalar as a simple_value (float32),
  // tag = key (slashes group the charts: "rewards/format/mean"), then flushes,
  // so a killed run keeps every step written so far.
  void add_scalars(int64_t step, const std::map<std::string, double>& scalars);

  // Pushes buffered bytes to the file; throws an I/O error if the write failed.
  void flush();

  const std::filesystem::path& path() const { return path_; }

 private:
  void write_record(std::string_view data);

  std::filesystem::path path_;
  std::ofstream out_;
};

// The pieces, exposed for tests and for anyone writing other summary kinds.

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord uses.
uint32_t crc32c(std::string_view data);
// TFRecord's mask: rotate right by 15 and add 0xa282ead8, so CRCs of CRCs stay strong.
uint32_t masked_crc32c(std::string_view data);
// One TFRecord: uint64 length (little endian), masked CRC of those 8 bytes,
// the data, masked CRC of the data.
std::string frame_tfrecord(std::string_view data);
// Serialises Event{wall_time = 1, step = 2, file_version = 3}; zero fields are
// omitted exactly as protobuf's proto3 encoder omits them.
std::string encode_file_version_event(double wall_time,
                                      std::string_view file_version = "brain.Event:2");
// Serialises Event{wall_time = 1, step = 2, summary = 5 {value = 1 {tag = 1, simple_value = 2}}},
// values in the map's (sorted) order.
std::string encode_scalars_event(double wall_time, int64_t step,
                                 const std::map<std::string, double>& scalars);

}  // namespace r1kit
