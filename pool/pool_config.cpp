// SPDX-License-Identifier: Apache-2.0
// pool_config.cpp: see pool_config.h.
#include "pool/pool_config.h"

#include <algorithm>

namespace localist {

PoolConfig PoolConfig::single(int64_t global_batch) {
  PoolConfig p;
  p.llms.push_back({"main", {}, "", 0, global_batch});
  return p;
}

int PoolConfig::index(const std::string& name) const {
  for (size_t i = 0; i < llms.size(); ++i) {
    if (llms[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

std::vector<int> PoolConfig::existing_at(int64_t step) const {
  std::vector<int> out;
  for (size_t i = 0; i < llms.size(); ++i) {
    if (exists_at(i, step)) out.push_back(static_cast<int>(i));
  }
  return out;
}

int PoolConfig::owner_at(const std::string& domain, int64_t step) const {
  for (size_t i = 1; i < llms.size(); ++i) {
    const auto& d = llms[i].domains;
    if (exists_at(i, step) && std::find(d.begin(), d.end(), domain) != d.end()) return static_cast<int>(i);
  }
  return 0;
}

std::vector<std::string> PoolConfig::owned_at(int64_t step) const {
  std::vector<std::string> out;
  for (size_t i = 1; i < llms.size(); ++i) {
    if (exists_at(i, step)) out.insert(out.end(), llms[i].domains.begin(), llms[i].domains.end());
  }
  return out;
}

std::vector<int64_t> PoolConfig::branch_steps() const {
  std::vector<int64_t> out;
  for (size_t i = 1; i < llms.size(); ++i) out.push_back(llms[i].branch_step);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<double> PoolConfig::loads_at(int64_t step, int64_t context) const {
  std::vector<double> out(llms.size(), 0.0);
  for (size_t i = 0; i < llms.size(); ++i) {
    if (exists_at(i, step)) out[i] = static_cast<double>(llms[i].global_batch * context);
  }
  return out;
}

}  // namespace localist
