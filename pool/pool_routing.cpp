// SPDX-License-Identifier: Apache-2.0
// pool_routing.cpp: see pool_routing.h. Log-sum-exp in natural logs, bits out.
#include "pool/pool_routing.h"

#include <ATen/ATen.h>

#include <cmath>

#include "core/error.h"

namespace localist {
namespace {

constexpr double kLn2 = 0.69314718055994530942;

void check(const at::Tensor& bits, const std::vector<double>* priors) {
  if (bits.dim() != 3 || bits.scalar_type() != at::kDouble) throw Error("pool routing: bits must be (L, N, T) float64");
  if (priors && static_cast<int64_t>(priors->size()) != bits.size(0)) {
    throw Error("pool routing: " + std::to_string(priors->size()) + " priors for " + std::to_string(bits.size(0)) +
                " LLMs");
  }
  if (priors) {
    for (double p : *priors) {
      if (!(p > 0)) throw Error("pool routing: every prior must be positive");
    }
  }
}

// ln prior_l − ln2 · CL_l(prefix before t): (L, N, T).
at::Tensor log_weights(const at::Tensor& bits, const std::vector<double>& priors) {
  double total = 0;
  for (double p : priors) total += p;
  std::vector<double> lp;
  for (double p : priors) lp.push_back(std::log(p / total));
  const auto before = bits.cumsum(2) - bits;  // code length of the positions before t
  return at::tensor(lp, at::kDouble).view({-1, 1, 1}) - kLn2 * before;
}

}  // namespace

at::Tensor route_argmin(const at::Tensor& bits, int64_t m) {
  check(bits, nullptr);
  const int64_t T = bits.size(2);
  const int64_t n = std::max<int64_t>(1, std::min(m, T));
  const auto cl = bits.narrow(2, 0, n).sum(2);  // (L, N)
  return std::get<1>(cl.min(0));                // first index of the minimum
}

at::Tensor route_mixture_weights(const at::Tensor& bits, const std::vector<double>& priors) {
  check(bits, &priors);
  return at::softmax(log_weights(bits, priors), 0);
}

at::Tensor route_mixture_bits(const at::Tensor& bits, const std::vector<double>& priors) {
  check(bits, &priors);
  const auto lw = log_weights(bits, priors);
  return -(at::logsumexp(lw - kLn2 * bits, 0) - at::logsumexp(lw, 0)) / kLn2;
}

at::Tensor route_bits_of(const at::Tensor& bits, const at::Tensor& choice) {
  check(bits, nullptr);
  const auto per_window = bits.sum(2).t();  // (N, L)
  return per_window.gather(1, choice.view({-1, 1}).to(at::kLong)).view({-1});
}

}  // namespace localist
