// SPDX-License-Identifier: Apache-2.0
// tensor_file.h: named tensors in one HDF5 file, the unit of a checkpoint (DESIGN.md
// §3): each name ("model/main/shared/wte", "optim/main/block/3/layer0/qkv_weight/
// exp_avg") is a dataset path, groups created on the way, so h5py or h5dump read it
// with no code of ours. Written to a temporary name and renamed; HDF5 file locking is
// off by default (cluster file systems often lack flock; no file is ever shared).
// Limits: float32, float64, int64 and uint8 tensors on the CPU (others are converted by the caller).
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace localist {

// String attributes on the file's root group.
using TensorFileAttrs = std::map<std::string, std::string>;

// Writes `tensors` (CPU, contiguous or not) and `attrs` to `path` atomically.
void tensor_file_write(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const TensorFileAttrs& attrs = {});

struct TensorFileContents {
  std::map<std::string, at::Tensor> tensors;  // by dataset path, without the leading '/'
  TensorFileAttrs attrs;
};

// Reads every dataset and root attribute; throws localist::Error naming the file.
TensorFileContents tensor_file_read(const std::string& path);
// The datasets' paths alone (no data read), and one dataset's data: for readers that
// need part of a file (a block-parallel rank resuming reads only its blocks).
std::vector<std::string> tensor_file_names(const std::string& path);
at::Tensor tensor_file_read_one(const std::string& path, const std::string& name);
// Rows [begin, begin + size) along `dim` of dataset `name`, which must have `whole` rows
// there (an HDF5 hyperslab: only those rows are read).
at::Tensor tensor_file_read_part(const std::string& path, const std::string& name, int64_t dim, int64_t begin,
                                 int64_t size, int64_t whole);

// One file held open for many reads (a resume reads hundreds of datasets of a rank
// file); the same reads as tensor_file_read_one and tensor_file_read_part. Opening
// checks that the file is HDF5; errors name the file.
class TensorFileReader {
 public:
  explicit TensorFileReader(std::string path);
  ~TensorFileReader();
  TensorFileReader(const TensorFileReader&) = delete;
  TensorFileReader& operator=(const TensorFileReader&) = delete;
  at::Tensor read(const std::string& name) const;
  at::Tensor read_part(const std::string& name, int64_t dim, int64_t begin, int64_t size, int64_t whole) const;
  const std::string& path() const { return path_; }

 private:
  struct Open;
  std::string path_;
  std::unique_ptr<Open> open_;
};

// Whether HDF5 may lock files (checkpoint.hdf5_file_locking; default false).
void tensor_file_set_locking(bool enabled);

}  // namespace localist
