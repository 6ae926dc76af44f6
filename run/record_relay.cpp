// SPDX-License-Identifier: Apache-2.0
// record_relay.cpp: see record_relay.h.
#include "run/record_relay.h"

#include <ATen/ATen.h>

#include <sstream>

#include "comm/messages.h"

namespace localist {

constexpr int kRelayTag = 7001;

RecordRelay::RecordRelay(std::shared_ptr<Communicator> world, std::function<void(const nlohmann::json&)> deliver)
    : world_(std::move(world)), deliver_(std::move(deliver)) {}

void RecordRelay::post(const nlohmann::json& record) {
  if (world_->rank() == 0) {
    if (deliver_) deliver_(record);
    return;
  }
  queue_ += record.dump() + "\n";
}

void RecordRelay::exchange(const std::vector<int64_t>& sizes, const std::string& when) {
  const int me = world_->rank();
  for (int r = 1; r < world_->size() && r < static_cast<int>(sizes.size()); ++r) {
    if (sizes[r] <= 0) continue;
    if (me == r) {
      send_string(*world_, queue_, 0, kRelayTag, "metrics records (" + when + ")");
      queue_.clear();
    } else if (me == 0) {
      std::istringstream lines(
          recv_string(*world_, r, kRelayTag, "metrics records of rank " + std::to_string(r) + " (" + when + ")"));
      std::string line;
      while (std::getline(lines, line)) {
        if (!line.empty() && deliver_) deliver_(nlohmann::json::parse(line));
      }
    }
  }
}

void RecordRelay::flush(const std::string& when) {
  if (world_->size() == 1) return;
  auto sizes = at::zeros({world_->size()}, at::kLong);
  sizes[world_->rank()] = queued_bytes();
  world_->all_reduce(sizes, ReduceOp::kMax, "metrics record sizes (" + when + ")");
  exchange(std::vector<int64_t>(sizes.data_ptr<int64_t>(), sizes.data_ptr<int64_t>() + sizes.numel()), when);
}

}  // namespace localist
