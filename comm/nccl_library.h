// SPDX-License-Identifier: Apache-2.0
// nccl_library.h: NCCL loaded at run time (dlopen of libnccl.so.2, or the file named by
// LOCALIST_NCCL_LIBRARY), with the few types and functions localist uses declared here,
// so that every build — CPU-only CI included — compiles the NCCL backend without NCCL's
// headers (pip's NCCL wheel ships only libnccl.so.2). The ABI below is NCCL 2.x's
// (nccl.h.in); NCCL >= 2.10 is required (ncclAvg, bf16). Limits: one library per process.
#pragma once
#include <cstddef>
#include <string>

namespace localist {

// NCCL 2.x C ABI, declared by us.
using ncclComm_t = struct ncclComm*;
struct ncclUniqueId {
  char internal[128];
};
enum ncclResult_t { ncclSuccess = 0, ncclInProgress = 7 };
enum ncclRedOp_t { ncclSum = 0, ncclProd = 1, ncclMax = 2, ncclMin = 3, ncclAvg = 4 };
enum ncclDataType_t {
  ncclInt8 = 0,
  ncclUint8 = 1,
  ncclInt32 = 2,
  ncclUint32 = 3,
  ncclInt64 = 4,
  ncclUint64 = 5,
  ncclFloat16 = 6,
  ncclFloat32 = 7,
  ncclFloat64 = 8,
  ncclBfloat16 = 9
};
using cudaStream_t = struct CUstream_st*;

struct NcclLibrary {
  std::string path;  // the file the loader chose (resolved), not just the name asked for
  int version = 0;   // e.g. 21903 for 2.19.3
  int (*GetVersion)(int*) = nullptr;
  int (*GetUniqueId)(ncclUniqueId*) = nullptr;
  int (*CommInitRank)(ncclComm_t*, int, ncclUniqueId, int) = nullptr;
  int (*CommDestroy)(ncclComm_t) = nullptr;
  int (*CommAbort)(ncclComm_t) = nullptr;
  int (*CommGetAsyncError)(ncclComm_t, int*) = nullptr;
  const char* (*GetErrorString)(int) = nullptr;
  int (*AllReduce)(const void*, void*, size_t, int, int, ncclComm_t, cudaStream_t) = nullptr;
  int (*Broadcast)(const void*, void*, size_t, int, int, ncclComm_t, cudaStream_t) = nullptr;
  int (*AllGather)(const void*, void*, size_t, int, ncclComm_t, cudaStream_t) = nullptr;
  int (*ReduceScatter)(const void*, void*, size_t, int, int, ncclComm_t, cudaStream_t) = nullptr;
  int (*Send)(const void*, size_t, int, int, ncclComm_t, cudaStream_t) = nullptr;
  int (*Recv)(void*, size_t, int, int, ncclComm_t, cudaStream_t) = nullptr;
  int (*GroupStart)() = nullptr;
  int (*GroupEnd)() = nullptr;
};

struct NcclLoad {
  const NcclLibrary* library = nullptr;  // null when it could not be loaded
  std::string error;                     // why not, with a hint
};

// Loads `name` (a file name for the dynamic loader, or a path) and every function above.
// Never throws; the result says what failed (the file, or the first missing symbol).
NcclLoad nccl_library_load(const std::string& name);
// The process's NCCL: LOCALIST_NCCL_LIBRARY, else libnccl.so.2; loaded once.
const NcclLoad& nccl_library();

}  // namespace localist
