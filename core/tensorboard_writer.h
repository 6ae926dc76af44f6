// SPDX-License-Identifier: Apache-2.0
// tensorboard_writer.h: TensorBoard event files mirroring metrics.jsonl, written by the
// run's lead rank: TFRecord framing (masked CRC-32C) around Event/Summary protobufs encoded
// here by hand (decisions.md: why no protobuf library). A record's numbers become scalars,
// decisions and run-level records text events; flushed per record, rebuilt on open.
// Limits: scalars are float32 (TensorBoard's simple_value); one writer per directory.
#pragma once
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace localist {

// CRC-32C (Castagnoli), as TFRecord frames use it; `crc` continues an earlier value.
uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);
// One TFRecord: length, masked CRC of the length, payload, masked CRC of the payload.
std::string tfrecord_frame(const std::string& payload);

struct TensorBoardEvent {
  std::string tag;
  int64_t step = 0;
  double wall_time = 0;
  bool is_text = false;
  double value = 0;  // a scalar
  std::string text;  // a text event (markdown)
};

// What one metrics record becomes; `last_step` places records of no step (memory, timing)
// at the run's last logged step. Tags start with the record's LLM ("main" alone).
std::vector<TensorBoardEvent> tensorboard_events(const nlohmann::json& record, int64_t last_step);
// The serialized Event protobuf of one event.
std::string tensorboard_event_proto(const TensorBoardEvent& e);

class TensorBoardWriter {
 public:
  // Creates `dir` and a new event file holding every record `metrics_path` has now (the
  // file is cut back to the checkpoint before a resume opens this), written whole before
  // the older event files of localist in `dir` are removed: the directory always shows
  // metrics.jsonl, once. Throws localist::Error naming the path on failure.
  TensorBoardWriter(const std::string& dir, const std::string& metrics_path);
  void write(const nlohmann::json& record);  // flushed: a reader sees it at once
  const std::string& path() const { return path_; }

 private:
  void append(const nlohmann::json& record, std::string& out);
  std::string path_;
  std::ofstream out_;
  int64_t last_step_ = 0;
};

}  // namespace localist
