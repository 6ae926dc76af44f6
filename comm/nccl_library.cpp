// SPDX-License-Identifier: Apache-2.0
// nccl_library.cpp: see nccl_library.h.
#include "comm/nccl_library.h"

#include <dlfcn.h>
#include <link.h>

#include <climits>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <vector>

namespace localist {
namespace {

const char* kHint =
    "; install NCCL >= 2.10 (for example the nvidia-nccl wheel that comes with PyTorch, which ships libnccl.so.2) "
    "and put its lib directory on LD_LIBRARY_PATH, or name the file with LOCALIST_NCCL_LIBRARY=/path/libnccl.so.2";

template <class F>
bool bind(void* handle, const char* symbol, F* out, std::string* error) {
  *out = reinterpret_cast<F>(dlsym(handle, symbol));
  if (!*out && error->empty()) *error = std::string("has no symbol ") + symbol + " (not an NCCL 2.x library?)";
  return *out != nullptr;
}

// The file the loader chose for `name` (a bare soname resolves through ld.so.cache).
std::string loaded_file(void* handle, const std::string& name) {
  struct link_map* map = nullptr;
  if (dlinfo(handle, RTLD_DI_LINKMAP, &map) != 0 || !map || !map->l_name || !*map->l_name) return name;
  char resolved[PATH_MAX];
  return realpath(map->l_name, resolved) ? resolved : map->l_name;
}

}  // namespace

NcclLoad nccl_library_load(const std::string& name) {
  NcclLoad out;
  void* handle = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = dlerror();
    out.error = "NCCL could not be loaded from '" + name + "': " + (why ? why : "unknown error") + kHint;
    return out;
  }
  auto* lib = new NcclLibrary();
  lib->path = loaded_file(handle, name);
  std::string missing;
  bind(handle, "ncclGetVersion", &lib->GetVersion, &missing);
  bind(handle, "ncclGetUniqueId", &lib->GetUniqueId, &missing);
  bind(handle, "ncclCommInitRank", &lib->CommInitRank, &missing);
  bind(handle, "ncclCommDestroy", &lib->CommDestroy, &missing);
  bind(handle, "ncclCommAbort", &lib->CommAbort, &missing);
  bind(handle, "ncclCommGetAsyncError", &lib->CommGetAsyncError, &missing);
  bind(handle, "ncclGetErrorString", &lib->GetErrorString, &missing);
  bind(handle, "ncclAllReduce", &lib->AllReduce, &missing);
  bind(handle, "ncclBroadcast", &lib->Broadcast, &missing);
  bind(handle, "ncclAllGather", &lib->AllGather, &missing);
  bind(handle, "ncclReduceScatter", &lib->ReduceScatter, &missing);
  bind(handle, "ncclSend", &lib->Send, &missing);
  bind(handle, "ncclRecv", &lib->Recv, &missing);
  bind(handle, "ncclGroupStart", &lib->GroupStart, &missing);
  bind(handle, "ncclGroupEnd", &lib->GroupEnd, &missing);
  if (!missing.empty()) {
    out.error = "'" + name + "' " + missing + kHint;
    delete lib;
    dlclose(handle);
    return out;
  }
  if (lib->GetVersion(&lib->version) != ncclSuccess || lib->version < 21000) {
    out.error = "'" + name + "' is NCCL " + std::to_string(lib->version) + "; localist needs 2.10 or newer" + kHint;
    delete lib;
    dlclose(handle);
    return out;
  }
  // Kept for the life of the process (the handle is never closed), reachable from here.
  static std::mutex mutex;
  static std::vector<std::unique_ptr<NcclLibrary>> loaded;
  std::lock_guard<std::mutex> lock(mutex);
  loaded.emplace_back(lib);
  out.library = lib;
  return out;
}

const NcclLoad& nccl_library() {
  static const NcclLoad load = [] {
    const char* env = std::getenv("LOCALIST_NCCL_LIBRARY");
    return nccl_library_load(env && *env ? env : "libnccl.so.2");
  }();
  return load;
}

}  // namespace localist
