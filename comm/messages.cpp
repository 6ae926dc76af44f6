// SPDX-License-Identifier: Apache-2.0
// messages.cpp: see messages.h.
#include "comm/messages.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>

namespace localist {
namespace {

at::Tensor bytes_of(const std::string& s, int64_t size) {
  auto t = at::zeros({std::max<int64_t>(size, 1)}, at::kByte);
  if (!s.empty()) std::memcpy(t.data_ptr(), s.data(), s.size());
  return t;
}

}  // namespace

std::vector<std::string> all_gather_strings(Communicator& comm, const std::string& mine, const std::string& what) {
  const auto lengths = comm.all_gather(at::tensor(std::vector<int64_t>{static_cast<int64_t>(mine.size())}, at::kLong),
                                       what + " (lengths)");
  const int64_t longest = lengths.max().item<int64_t>();
  const auto all = comm.all_gather(bytes_of(mine, longest), what).contiguous();
  std::vector<std::string> out;
  for (int r = 0; r < comm.size(); ++r) {
    const auto* p = static_cast<const char*>(all[r].data_ptr());
    out.emplace_back(p, static_cast<size_t>(lengths[r][0].item<int64_t>()));
  }
  return out;
}

void send_string(Communicator& comm, const std::string& s, int dst, int tag, const std::string& what) {
  comm.send(at::tensor(std::vector<int64_t>{static_cast<int64_t>(s.size())}, at::kLong), dst, tag, what + " (length)");
  if (!s.empty()) comm.send(bytes_of(s, static_cast<int64_t>(s.size())), dst, tag, what);
}

std::string recv_string(Communicator& comm, int src, int tag, const std::string& what) {
  auto n = at::zeros({1}, at::kLong);
  comm.recv(n, src, tag, what + " (length)");
  const int64_t size = n.item<int64_t>();
  if (size < 0 || size > (int64_t(1) << 40)) throw Error(what + ": a message of " + std::to_string(size) + " bytes");
  if (size == 0) return "";
  auto bytes = at::zeros({size}, at::kByte);
  comm.recv(bytes, src, tag, what);
  return std::string(static_cast<const char*>(bytes.data_ptr()), static_cast<size_t>(size));
}

void send_named_tensors(Communicator& comm, const NamedTensors& tensors, int dst, int tag, const std::string& what) {
  nlohmann::json header = nlohmann::json::array();
  for (const auto& [name, t] : tensors) {
    header.push_back({{"name", name}, {"dtype", static_cast<int>(t.scalar_type())}, {"shape", t.sizes().vec()}});
  }
  send_string(comm, header.dump(), dst, tag, what + " (header)");
  // Booleans travel as bytes (MPI has no bool type).
  for (const auto& [name, t] : tensors) {
    const auto host = t.detach().cpu().contiguous();
    comm.send(host.scalar_type() == at::kBool ? host.to(at::kByte) : host, dst, tag + 1, what + " " + name);
  }
}

NamedTensors recv_named_tensors(Communicator& comm, int src, int tag, const std::string& what) {
  const auto header = nlohmann::json::parse(recv_string(comm, src, tag, what + " (header)"));
  NamedTensors out;
  for (const auto& h : header) {
    const std::string name = h.at("name").get<std::string>();
    const auto dtype = static_cast<at::ScalarType>(h.at("dtype").get<int>());
    auto t = at::empty(h.at("shape").get<std::vector<int64_t>>(), at::dtype(dtype == at::kBool ? at::kByte : dtype));
    comm.recv(t, src, tag + 1, what + " " + name);
    out.emplace_back(name, dtype == at::kBool ? t.to(at::kBool) : t);
  }
  return out;
}

}  // namespace localist
