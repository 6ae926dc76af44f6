// SPDX-License-Identifier: Apache-2.0
// messages.h: variable-size messages over any Communicator, built from its tensor calls
// (so every one is bounded by the group's timeout and names its operation): strings
// gathered from every rank, strings and named tensor lists sent point to point (a JSON
// header of names, dtypes and shapes, then each tensor). CPU tensors; a rank's state
// moving to another rank (pool re-plans) and records for the coordinator use them.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

#include "comm/communicator.h"

namespace localist {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// Every rank's string, by rank (two all-gathers: lengths, then bytes padded to the longest).
std::vector<std::string> all_gather_strings(Communicator& comm, const std::string& mine, const std::string& what);
void send_string(Communicator& comm, const std::string& s, int dst, int tag, const std::string& what);
std::string recv_string(Communicator& comm, int src, int tag, const std::string& what);
// Tags tag and tag + 1 are used (header, then the tensors).
void send_named_tensors(Communicator& comm, const NamedTensors& tensors, int dst, int tag, const std::string& what);
NamedTensors recv_named_tensors(Communicator& comm, int src, int tag, const std::string& what);

}  // namespace localist
