// SPDX-License-Identifier: Apache-2.0
// attention_kernel.cpp: see attention_kernel.h.
#include "model/attention_kernel.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.h"
#include "model/cpu_capability.h"
#include "model/fused_attention.h"

namespace localist {

AttentionPath attention_path(const at::Tensor& qkv, bool fused, bool trace) {
  if (trace || !fused || fused_disabled_by_env("attention")) return AttentionPath::kExplicit;
  const bool fused_serves = fused_attention_supported(qkv);
  if (const char* v = std::getenv("LOCALIST_ATTENTION"); v && *v) {
    const std::string want = v;
    if (want == "explicit") return AttentionPath::kExplicit;
    if (want == "sdpa") return AttentionPath::kSdpa;
    if (want == "fused") return fused_serves ? AttentionPath::kFused : AttentionPath::kExplicit;
    throw Error("LOCALIST_ATTENTION=" + want + ": expected explicit, fused or sdpa (or unset for the default)");
  }
  if (qkv.is_cuda()) return AttentionPath::kSdpa;
  return fused_serves ? AttentionPath::kFused : AttentionPath::kExplicit;
}

const char* attention_path_name(AttentionPath path) {
  switch (path) {
    case AttentionPath::kExplicit:
      return "explicit";
    case AttentionPath::kFused:
      return "fused";
    case AttentionPath::kSdpa:
      return "sdpa";
  }
  return "?";
}

}  // namespace localist
