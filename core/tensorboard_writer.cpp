// SPDX-License-Identifier: Apache-2.0
// tensorboard_writer.cpp: see tensorboard_writer.h. The protobuf subset written here is
// TensorBoard's event.proto / summary.proto / tensor.proto field numbers (stable since 2016).
#include "core/tensorboard_writer.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "core/error.h"
#include "core/file_util.h"

namespace localist {
namespace {

namespace fs = std::filesystem;

const std::array<uint32_t, 256>& crc32c_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;  // reflected Castagnoli
      t[i] = c;
    }
    return t;
  }();
  return table;
}

uint32_t masked_crc(const void* data, size_t n) {
  const uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

// Protobuf wire format: varints, tags, and length-delimited fields.
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_key(std::string& out, int field, int wire) { put_varint(out, (static_cast<uint64_t>(field) << 3) | wire); }
void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_key(out, field, 2);
  put_varint(out, bytes.size());
  out += bytes;
}
void put_double(std::string& out, int field, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  put_key(out, field, 1);
  put_le(out, bits, 8);
}
void put_float(std::string& out, int field, float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  put_key(out, field, 5);
  put_le(out, bits, 4);
}
void put_int(std::string& out, int field, int64_t v) {
  put_key(out, field, 0);
  put_varint(out, static_cast<uint64_t>(v));
}

// Summary.Value of a text event: a scalar DT_STRING tensor the text plugin claims.
std::string text_value(const std::string& tag, const std::string& text) {
  std::string plugin, metadata, tensor, value;
  put_bytes(plugin, 1, "text");    // PluginData.plugin_name
  put_bytes(metadata, 1, plugin);  // SummaryMetadata.plugin_data
  put_int(metadata, 4, 2);         // SummaryMetadata.data_class = DATA_CLASS_TENSOR
  put_int(tensor, 1, 7);           // TensorProto.dtype = DT_STRING
  put_bytes(tensor, 2, "");        // TensorProto.tensor_shape: a scalar
  put_bytes(tensor, 8, text);      // TensorProto.string_val
  put_bytes(value, 1, tag);
  put_bytes(value, 9, metadata);
  put_bytes(value, 8, tensor);
  return value;
}

std::string event_file_version(double wall_time) {
  std::string ev;
  put_double(ev, 1, wall_time);
  put_bytes(ev, 3, "brain.Event:2");
  return ev;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Numbers (also inside lists and objects) as scalars under `tag`; strings and nulls are not scalars.
void add_scalars(const std::string& tag, const nlohmann::json& v, const TensorBoardEvent& base,
                 std::vector<TensorBoardEvent>& out) {
  if (v.is_number()) {
    TensorBoardEvent e = base;
    e.tag = tag;
    e.value = v.get<double>();
    if (std::isfinite(e.value)) out.push_back(e);
  } else if (v.is_boolean()) {
    TensorBoardEvent e = base;
    e.tag = tag;
    e.value = v.get<bool>() ? 1.0 : 0.0;
    out.push_back(e);
  } else if (v.is_array()) {
    for (size_t i = 0; i < v.size(); ++i) add_scalars(tag + "/" + std::to_string(i), v[i], base, out);
  } else if (v.is_object()) {
    for (const auto& [k, x] : v.items()) add_scalars(tag + "/" + k, x, base, out);
  }
}

bool is_metadata_key(const std::string& k) {
  return k == "event" || k == "llm" || k == "step" || k == "wall_time" || k == "rank";  // rank: in the tag
}

// A decision or a run-level record as markdown: the record, indented as a code block.
std::string record_text(const nlohmann::json& r) {
  nlohmann::json shown = r;
  shown.erase("wall_time");
  std::istringstream lines(shown.dump(2));
  std::string text;
  for (std::string line; std::getline(lines, line);) text += "    " + line + "\n";
  return text;
}

std::string new_event_file_name(const fs::path& dir) {
  char host[256] = "host";
  gethostname(host, sizeof host - 1);
  for (auto t = static_cast<int64_t>(now_seconds());; ++t) {
    const fs::path p = dir / ("events.out.tfevents." + std::to_string(t) + "." + host + "." +
                              std::to_string(static_cast<long>(getpid())) + ".localist");
    if (!fs::exists(p)) return p.string();
  }
}

}  // namespace

uint32_t crc32c(const void* data, size_t n, uint32_t crc) {
  const auto& table = crc32c_table();
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

std::string tfrecord_frame(const std::string& payload) {
  std::string out, len;
  put_le(len, payload.size(), 8);
  out += len;
  put_le(out, masked_crc(len.data(), len.size()), 4);
  out += payload;
  put_le(out, masked_crc(payload.data(), payload.size()), 4);
  return out;
}

std::vector<TensorBoardEvent> tensorboard_events(const nlohmann::json& r, int64_t last_step) {
  std::vector<TensorBoardEvent> out;
  if (!r.is_object()) return out;
  const std::string event = r.value("event", std::string("record"));
  const std::string llm = r.contains("llm") && r["llm"].is_string() ? r["llm"].get<std::string>() : "run";
  const bool has_step = r.contains("step") && r["step"].is_number_integer();
  TensorBoardEvent base;
  base.step = has_step ? r["step"].get<int64_t>() : last_step;
  base.wall_time = r.contains("wall_time") && r["wall_time"].is_number() ? r["wall_time"].get<double>() : now_seconds();
  std::string prefix = llm + "/";
  if (event == "eval") prefix += "eval/";
  if (event != "step" && event != "eval") {
    // Decisions (recruitment, spawns), resumes and the run-level records: the record as
    // text, its numbers as scalars beside it. Per-rank records keep one tag per rank.
    prefix += event;
    if (r.contains("rank") && r["rank"].is_number_integer()) prefix += "/rank_" + std::to_string(r["rank"].get<int>());
    TensorBoardEvent text = base;
    text.tag = prefix;
    text.is_text = true;
    text.text = record_text(r);
    out.push_back(text);
    prefix += "/";
  }
  for (const auto& [k, v] : r.items()) {
    if (!is_metadata_key(k)) add_scalars(prefix + k, v, base, out);
  }
  return out;
}

std::string tensorboard_event_proto(const TensorBoardEvent& e) {
  std::string value;
  if (e.is_text) {
    value = text_value(e.tag, e.text);
  } else {
    put_bytes(value, 1, e.tag);
    put_float(value, 2, static_cast<float>(e.value));
  }
  std::string summary, ev;
  put_bytes(summary, 1, value);
  put_double(ev, 1, e.wall_time);
  put_int(ev, 2, e.step);
  put_bytes(ev, 5, summary);
  return ev;
}

TensorBoardWriter::TensorBoardWriter(const std::string& dir, const std::string& metrics_path) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(dir + ": cannot create the TensorBoard directory: " + ec.message());
  path_ = new_event_file_name(dir);
  std::string content = tfrecord_frame(event_file_version(now_seconds()));
  if (fs::exists(metrics_path)) {
    std::istringstream in(read_file(metrics_path));
    for (std::string line; std::getline(in, line);) {
      const nlohmann::json r = nlohmann::json::parse(line, nullptr, false);
      if (!r.is_discarded()) append(r, content);
    }
  }
  write_file_atomic(path_, content);
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const std::string suffix = ".localist";
    if (entry.path().string() != path_ && name.rfind("events.out.tfevents.", 0) == 0 && name.size() > suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      fs::remove(entry.path(), ec);  // an older attempt's: everything it held is in the new file
    }
  }
  out_.open(path_, std::ios::binary | std::ios::app);
  if (!out_) throw Error(path_ + ": cannot open the TensorBoard event file for writing");
}

void TensorBoardWriter::append(const nlohmann::json& record, std::string& out) {
  for (const TensorBoardEvent& e : tensorboard_events(record, last_step_)) {
    out += tfrecord_frame(tensorboard_event_proto(e));
  }
  if (record.is_object() && record.contains("step") && record["step"].is_number_integer()) {
    last_step_ = std::max(last_step_, record["step"].get<int64_t>());
  }
}

void TensorBoardWriter::write(const nlohmann::json& record) {
  std::string bytes;
  append(record, bytes);
  out_.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out_.flush();
  if (!out_) throw Error(path_ + ": TensorBoard event write failed (disk full?)");
}

}  // namespace localist
