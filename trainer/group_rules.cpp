// SPDX-License-Identifier: Apache-2.0
// group_rules.cpp: see group_rules.h.
#include "trainer/group_rules.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

namespace localist {
namespace {

int64_t file_mtime_ns(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

}  // namespace

void GroupRules::reload_if_changed() {
  if (path_.empty()) return;
  const int64_t m = file_mtime_ns(path_);
  if (m == mtime_) return;
  file_ = RuleSet::load(path_, k_max_);
  mtime_ = m;
  stale_ = true;
  spdlog::info("rules: loaded {} rule(s) from {}", file_.rules().size(), path_);
}

const RuleSet& GroupRules::active(const std::vector<DomainRoute>& routes) {
  if (stale_) {
    active_ = routes.empty() ? file_ : file_.with_domain_routes(routes);
    stale_ = false;
  }
  return active_;
}

}  // namespace localist
