// SPDX-License-Identifier: Apache-2.0
// safetensors.h: the safetensors file format (Hugging Face's: an 8-byte little-endian
// header length, a JSON header naming each tensor's dtype, shape and byte range, then
// the raw little-endian bytes), written and read without executing anything.
// Limits: dtypes F64, F32, BF16, F16, I64, I32, U8, BOOL; a file is read whole into memory.
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace localist {

// Writes `tensors` (CPU or not; copied to contiguous CPU bytes) to `path` atomically, in
// name order, with `metadata` as the header's __metadata__. Throws on a duplicate name or
// an unsupported dtype.
void safetensors_write(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

struct SafetensorsFile {
  std::map<std::string, at::Tensor> tensors;  // CPU tensors owning their bytes
  std::map<std::string, std::string> metadata;
};

struct SafetensorsEntry {
  at::ScalarType dtype;
  std::vector<int64_t> shape;
};
// The header alone (names, dtypes, shapes), validated as safetensors_read does, without
// reading the tensors' bytes.
std::map<std::string, SafetensorsEntry> safetensors_header(const std::string& path);

// Reads and validates a file (header size and JSON, every dtype, shape and byte range
// inside the file, ranges that tile the data exactly); throws an Error naming the path.
SafetensorsFile safetensors_read(const std::string& path);

}  // namespace localist
