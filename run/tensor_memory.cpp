// SPDX-License-Identifier: Apache-2.0
// tensor_memory.cpp: see tensor_memory.h.
#include "run/tensor_memory.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace localist {
namespace {

std::atomic<int64_t> g_live{0}, g_peak{0};
std::atomic<bool> g_counting{false};

// The base allocator's allocations by data pointer: LibTorch's raw_allocate needs the
// context to be the data pointer itself, so the size and the base's DataPtr live here.
struct Counted {
  c10::DataPtr inner;  // freed (by its own deleter) when erased
  int64_t bytes;
};
std::mutex g_mutex;
std::unordered_map<void*, Counted>& table() {
  static auto* t = new std::unordered_map<void*, Counted>();  // never destroyed: frees may come at exit
  return *t;
}

void counted_delete(void* data) {
  Counted c;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    auto it = table().find(data);
    if (it == table().end()) return;
    c = std::move(it->second);
    table().erase(it);
  }
  g_live -= c.bytes;
}  // c.inner frees the memory here, outside the lock

class CountingAllocator final : public c10::Allocator {
 public:
  explicit CountingAllocator(c10::Allocator* base) : base_(base) {}
  c10::DataPtr allocate(size_t n) override {
    c10::DataPtr inner = base_->allocate(n);
    void* data = inner.get();
    const c10::Device device = inner.device();
    if (!data) return inner;
    {
      std::lock_guard<std::mutex> lock(g_mutex);
      table()[data] = Counted{std::move(inner), static_cast<int64_t>(n)};
    }
    const int64_t now = g_live += static_cast<int64_t>(n);
    int64_t peak = g_peak.load();
    while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
    }
    return {data, data, &counted_delete, device};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &counted_delete; }
  void copy_data(void* dest, const void* src, std::size_t count) const override { default_copy_data(dest, src, count); }

 private:
  c10::Allocator* base_;
};

}  // namespace

void tensor_memory_install_from_env() {
  static std::once_flag once;
  const char* v = std::getenv("LOCALIST_COUNT_TENSOR_MEMORY");
  if (!v || std::strcmp(v, "1") != 0) return;
  std::call_once(once, [] {
    // Owned by LibTorch from here on (SetCPUAllocator takes the pointer).
    c10::SetCPUAllocator(new CountingAllocator(c10::GetCPUAllocator()), /*priority=*/1);
    g_counting = true;
  });
}

TensorMemory tensor_memory() { return {g_counting.load(), g_live.load(), g_peak.load()}; }

void tensor_memory_reset_peak() { g_peak = g_live.load(); }

}  // namespace localist
