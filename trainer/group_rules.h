// SPDX-License-Identifier: Apache-2.0
// group_rules.h: the rules a group trains with (DESIGN.md §1 M6): the rules file's,
// reloaded when the file changes, with the routes of blocks recruited for a domain in
// front. Limits: a change is seen at the next step's reload (by modification time).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/rules.h"

namespace localist {

// The rules a group trains with: the rules file's (reloaded when it changes) with the
// recruited domains' routes in front; rebuilt only when either changed.
class GroupRules {
 public:
  GroupRules(std::string path, int64_t k_max) : path_(std::move(path)), k_max_(k_max) {}
  void reload_if_changed();
  void routes_changed() { stale_ = true; }
  const RuleSet& file_rules() const { return file_; }
  const RuleSet& active(const std::vector<DomainRoute>& routes);
  const RuleSet& active() const { return active_; }

 private:
  std::string path_;
  int64_t k_max_;
  int64_t mtime_ = -1;
  bool stale_ = true;
  RuleSet file_, active_;
};

}  // namespace localist
