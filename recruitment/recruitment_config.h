// SPDX-License-Identifier: Apache-2.0
// recruitment_config.h: the typed `recruitment:` section (DESIGN.md §1 M10), parsed in
// launch/run_config.cpp. Every constant of the criterion and of candidate formation;
// docs/recruitment.md says how to choose them.
#pragma once
#include <cstdint>
#include <string>

namespace localist {

struct RecruitmentConfig {
  bool enabled = false;
  int64_t interval = 100;      // steps between recruitment rounds
  int64_t probe_windows = 32;  // windows scored per round, over all ranks
  double phi = 0.5;            // φ: a token is unexplained when max_k π_ik < φ ...
  double kappa = 2.0;          // κ: ... or its bits exceed the running median by κ bits
  int64_t median_rounds = 5;   // rounds the running median of per-token bits spans
  int64_t n_min = 256;         // tokens a candidate needs
  int64_t kmeans_k = 4;        // clusters of unexplained router vectors when the data has no domain tags
  int64_t kmeans_iters = 25;
  int64_t n_try = 20;              // trial steps (new block and router only)
  double heldout_fraction = 0.25;  // of a candidate's tokens, kept out of the trial to measure the gain
  int64_t horizon_steps = 0;       // accounting horizon for N_eff; 0: the rest of the run (at least interval)
  double delta = 0.0;              // δ_blk: bits the description length must fall by beyond the cost
  // z: decisions use the gain's confidence bound G − z·SE(G), SE from the per-window
  // paired differences of held-out bits (DESIGN.md M10 step 5); 0 decides on G itself.
  double confidence_z = 2.0;
  // A block recruited for a domain receives that domain's tokens by a route rule (M6),
  // from its trial on, in training and in evaluation (docs/recruitment.md, routing).
  bool domain_routes = true;
  // Of a routed domain's training windows, the share shown without the domain's tag (a pure
  // function of seed, step and window): the model keeps learning the domain's text as it
  // comes untagged (generate without --domain), where the learned router routes it.
  double untagged_fraction = 0.25;
  std::string anchor = "next";  // next (the next unused code) | centroid (projected off the existing anchors)
  bool prune = false;           // also remove blocks by the symmetric rule
};

}  // namespace localist
