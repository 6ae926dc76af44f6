// SPDX-License-Identifier: Apache-2.0
// grad_sync.h: data-parallel gradient summation overlapped with backward (DESIGN.md §2).
// Parameters are grouped into buckets of about `bucket_bytes` in reverse registration
// order (the order backward produces gradients); a gradient hook copies each finished
// gradient into its bucket and starts the bucket's non-blocking all-reduce as soon as
// the bucket is full, so communication runs while the rest of backward computes.
// Limits: buckets start in index order (as every rank must); CUDA gradients are staged
// through host memory unless the communicator carries CUDA tensors (NCCL, not yet).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"

namespace localist {

class GradientSync {
 public:
  GradientSync(std::shared_ptr<Communicator> group, std::vector<at::Tensor> params, int64_t bucket_bytes);
  ~GradientSync();
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  // Before the backward of a step's last micro-batch: from then on each parameter's
  // final gradient (earlier micro-batches' sum plus this one) goes to its bucket.
  void arm(const std::string& what);
  // After that backward: starts the buckets still waiting (a parameter that got no
  // gradient contributes zeros and keeps an undefined .grad), waits for every bucket
  // and writes the sums into .grad. Returns the milliseconds spent here (exposed
  // communication: what backward did not hide).
  double finish();

  int64_t bucket_count() const { return static_cast<int64_t>(buckets_.size()); }
  int64_t bytes() const { return bytes_; }  // gradient bytes summed per step
  // Buckets of the last step whose all-reduce started inside backward (the overlap).
  int64_t started_in_backward() const { return started_in_backward_; }

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_
    at::Tensor flat;             // on the communicator's device
    int64_t pending = 0;         // parameters whose gradient has not arrived yet
    std::shared_ptr<CommWork> work;
  };
  void on_grad(size_t i, const at::Tensor& grad);
  void launch_ready();
  void launch(size_t b);

  std::shared_ptr<Communicator> group_;
  std::vector<at::Tensor> params_;
  std::vector<unsigned> hooks_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;
  std::vector<int64_t> offset_;   // element offset of each parameter in its bucket
  std::vector<uint8_t> arrived_;  // per parameter, in this step
  size_t next_launch_ = 0;
  int64_t started_in_backward_ = 0;
  bool armed_ = false;
  int64_t bytes_ = 0;
  std::string what_;
};

}  // namespace localist
