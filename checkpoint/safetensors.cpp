// SPDX-License-Identifier: Apache-2.0
// safetensors.cpp: see safetensors.h. The header is padded with spaces to a multiple of 8
// bytes, as the reference writer does, so the data starts aligned.
#include "checkpoint/safetensors.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <set>

#include "core/error.h"
#include "core/file_util.h"

namespace localist {
namespace {

const std::vector<std::pair<at::ScalarType, std::string>>& dtype_names() {
  static const std::vector<std::pair<at::ScalarType, std::string>> names = {
      {at::kDouble, "F64"}, {at::kFloat, "F32"}, {at::kBFloat16, "BF16"}, {at::kHalf, "F16"},
      {at::kLong, "I64"},   {at::kInt, "I32"},   {at::kByte, "U8"},       {at::kBool, "BOOL"}};
  return names;
}

std::string dtype_name(at::ScalarType t, const std::string& tensor) {
  for (const auto& [type, name] : dtype_names())
    if (type == t) return name;
  throw Error("safetensors: tensor " + tensor + " has dtype " + std::string(c10::toString(t)) +
              ", which this writer does not support");
}

at::ScalarType dtype_of(const std::string& name, const std::string& where) {
  for (const auto& [type, n] : dtype_names())
    if (n == name) return type;
  throw Error(where + ": dtype \"" + name + "\" is not one localist reads (F64 F32 BF16 F16 I64 I32 U8 BOOL)");
}

uint64_t read_u64_le(const std::string& bytes) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes[i]);
  return v;
}

}  // namespace

void safetensors_write(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::map<std::string, at::Tensor> sorted;
  for (const auto& [name, t] : tensors) {
    if (name.empty() || name == "__metadata__") throw Error("safetensors: \"" + name + "\" is not a tensor name");
    if (!sorted.emplace(name, t.detach().to(at::kCPU).contiguous()).second) {
      throw Error("safetensors: tensor " + name + " is named twice");
    }
  }
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : sorted) {
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    header[name] = {{"dtype", dtype_name(t.scalar_type(), name)},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string head = header.dump();
  head.append((8 - head.size() % 8) % 8, ' ');
  std::string out;
  out.reserve(8 + head.size() + offset);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((static_cast<uint64_t>(head.size()) >> (8 * i)) & 0xff));
  out += head;
  for (const auto& [name, t] : sorted) {
    out.append(static_cast<const char*>(t.data_ptr()), static_cast<size_t>(t.numel()) * t.element_size());
  }
  write_file_atomic(path, out);  // little-endian hosts only (x86-64, aarch64), as LibTorch's own files
}

namespace {

// The header of `bytes` (the whole file, or its first 8 + header-length bytes when
// `file_size` says how long the file is), every entry validated against the file's size.
struct ParsedHeader {
  std::map<std::string, std::string> metadata;
  std::map<std::string, std::pair<SafetensorsEntry, std::pair<uint64_t, uint64_t>>> entries;
  uint64_t data_begin = 0;
};

ParsedHeader parse_header(const std::string& path, const std::string& bytes, uint64_t file_size) {
  if (file_size < 8 || bytes.size() < 8)
    throw Error(path + ": not a safetensors file (shorter than its 8-byte header length)");
  const uint64_t n = read_u64_le(bytes);
  if (n < 2 || n > file_size - 8 || n > bytes.size() - 8) {
    throw Error(path + ": not a safetensors file (header length " + std::to_string(n) + " for a file of " +
                std::to_string(file_size) + " bytes)");
  }
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.substr(8, n));
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": the safetensors header is not JSON (" + std::string(e.what()) + ")");
  }
  if (!header.is_object()) throw Error(path + ": the safetensors header is not a JSON object");
  ParsedHeader h;
  h.data_begin = 8 + n;
  const uint64_t size = file_size - h.data_begin;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [name, e] : header.items()) {
    const std::string where = path + ": tensor " + name;
    if (name == "__metadata__") {
      if (!e.is_object()) throw Error(path + ": __metadata__ is not an object");
      for (const auto& [k, v] : e.items()) {
        if (!v.is_string()) throw Error(path + ": __metadata__." + k + " is not a string");
        h.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    try {
      const auto type = dtype_of(e.at("dtype").get<std::string>(), where);
      // Integers only: json's conversion of 1e300 to an integer would be undefined.
      for (const char* key : {"shape", "data_offsets"}) {
        const auto& list = e.at(key);
        if (!list.is_array()) throw Error(where + ": " + key + " is not a list");
        for (const auto& v : list)
          if (!v.is_number_integer()) throw Error(where + ": " + key + " holds " + v.dump() + ", not an integer");
      }
      for (const auto& v : e.at("data_offsets"))
        if (!v.is_number_unsigned()) throw Error(where + ": data_offsets holds a negative offset");
      const auto shape = e.at("shape").get<std::vector<int64_t>>();
      const auto off = e.at("data_offsets").get<std::vector<uint64_t>>();
      int64_t numel = 1;
      for (int64_t s : shape) {
        if (s < 0 || (s > 0 && numel > (int64_t{1} << 50) / s)) throw Error(where + ": shape out of range");
        numel *= s;
      }
      const uint64_t want = static_cast<uint64_t>(numel) * at::elementSize(type);
      if (off.size() != 2 || off[0] > off[1] || off[1] > size || off[1] - off[0] != want) {
        throw Error(where + ": byte range does not match its shape or lies outside the file");
      }
      h.entries[name] = {SafetensorsEntry{type, shape}, {off[0], off[1]}};
      ranges.emplace_back(off[0], off[1]);
    } catch (const nlohmann::json::exception& ex) {
      throw Error(where + ": malformed entry (" + std::string(ex.what()) + ")");
    }
  }
  std::sort(ranges.begin(), ranges.end());
  uint64_t at_byte = 0;
  for (const auto& [b, e] : ranges) {
    if (b != at_byte) throw Error(path + ": tensor byte ranges overlap or leave gaps");
    at_byte = e;
  }
  if (at_byte != size) throw Error(path + ": " + std::to_string(size - at_byte) + " bytes after the last tensor");
  return h;
}

}  // namespace

std::map<std::string, SafetensorsEntry> safetensors_header(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the file");
  in.seekg(0, std::ios::end);
  const uint64_t size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  std::string head(std::min<uint64_t>(size, 8), '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  if (size >= 8) {
    const uint64_t n = std::min<uint64_t>(read_u64_le(head), size - 8);
    head.resize(8 + n);
    in.read(head.data() + 8, static_cast<std::streamsize>(n));
  }
  std::map<std::string, SafetensorsEntry> out;
  for (const auto& [name, e] : parse_header(path, head, size).entries) out.emplace(name, e.first);
  return out;
}

SafetensorsFile safetensors_read(const std::string& path) {
  const std::string bytes = read_file(path);
  const ParsedHeader h = parse_header(path, bytes, bytes.size());
  SafetensorsFile f;
  f.metadata = h.metadata;
  for (const auto& [name, e] : h.entries) {
    auto t = at::empty(e.first.shape, at::TensorOptions().dtype(e.first.dtype));
    const uint64_t n = e.second.second - e.second.first;
    if (n) std::memcpy(t.data_ptr(), bytes.data() + h.data_begin + e.second.first, n);
    f.tensors.emplace(name, t);
  }
  return f;
}

}  // namespace localist
