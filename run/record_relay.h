// SPDX-License-Identifier: Apache-2.0
// record_relay.h: how the metrics records made on any rank (an LLM's step, evaluation
// and recruitment records come from the rank that leads its group) reach the
// coordinator's metrics stream. Rank 0's own are delivered at once; the others wait for
// the next step boundary, whose one all-reduce carries every rank's queued byte count
// next to the stop flags, and are then sent point to point to rank 0 (nothing moves
// when nothing is queued). Limits: records are small JSON objects.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"

namespace localist {

class RecordRelay {
 public:
  // `deliver` runs on world rank 0 for every record, in the order rank 0 receives them.
  RecordRelay(std::shared_ptr<Communicator> world, std::function<void(const nlohmann::json&)> deliver);
  void post(const nlohmann::json& record);
  int64_t queued_bytes() const { return static_cast<int64_t>(queue_.size()); }
  // Collective: `sizes` are every rank's queued_bytes() (from the boundary all-reduce).
  void exchange(const std::vector<int64_t>& sizes, const std::string& when);
  // Collective: the boundary exchange on its own (after the loop, nothing else to agree on).
  void flush(const std::string& when);

 private:
  std::shared_ptr<Communicator> world_;
  std::function<void(const nlohmann::json&)> deliver_;
  std::string queue_;  // JSON lines
};

}  // namespace localist
