// SPDX-License-Identifier: Apache-2.0
// test_nccl_header.cpp: the NCCL ABI that comm/nccl_library.h declares by hand, checked
// against NCCL's own nccl.h at compile time: the unique id's size, every enum value used,
// and every function pointer's signature (with NCCL's enums read as the int they are
// passed as). Compiled only where nccl.h is found (the CUDA toolkit); a mismatch is a
// build error naming the function. Limits: checks what localist declares, nothing more.
#include <gtest/gtest.h>
#include <nccl.h>

#include <type_traits>

#include "comm/nccl_library.h"

namespace {

namespace ours = localist;

// NCCL's parameter and result types as nccl_library.h declares them.
template <class T>
struct Ours {
  using type = T;
};
template <>
struct Ours<ncclResult_t> {
  using type = int;
};
template <>
struct Ours<ncclResult_t*> {
  using type = int*;
};
template <>
struct Ours<ncclDataType_t> {
  using type = int;
};
template <>
struct Ours<ncclRedOp_t> {
  using type = int;
};
template <>
struct Ours<ncclUniqueId> {
  using type = ours::ncclUniqueId;
};
template <>
struct Ours<ncclUniqueId*> {
  using type = ours::ncclUniqueId*;
};
template <>
struct Ours<ncclComm_t> {
  using type = ours::ncclComm_t;
};
template <>
struct Ours<ncclComm_t*> {
  using type = ours::ncclComm_t*;
};
template <>
struct Ours<cudaStream_t> {
  using type = ours::cudaStream_t;
};

template <class F>
struct OursFn;
template <class R, class... A>
struct OursFn<R (*)(A...)> {
  using type = typename Ours<R>::type (*)(typename Ours<A>::type...);
};

#define LOCALIST_SAME_SIGNATURE(nccl_function, member)                                                       \
  static_assert(std::is_same_v<OursFn<decltype(&nccl_function)>::type, decltype(ours::NcclLibrary::member)>, \
                "comm/nccl_library.h: NcclLibrary::" #member " does not match nccl.h's " #nccl_function)

LOCALIST_SAME_SIGNATURE(ncclGetVersion, GetVersion);
LOCALIST_SAME_SIGNATURE(ncclGetUniqueId, GetUniqueId);
LOCALIST_SAME_SIGNATURE(ncclCommInitRank, CommInitRank);
LOCALIST_SAME_SIGNATURE(ncclCommDestroy, CommDestroy);
LOCALIST_SAME_SIGNATURE(ncclCommAbort, CommAbort);
LOCALIST_SAME_SIGNATURE(ncclCommGetAsyncError, CommGetAsyncError);
LOCALIST_SAME_SIGNATURE(ncclGetErrorString, GetErrorString);
LOCALIST_SAME_SIGNATURE(ncclAllReduce, AllReduce);
LOCALIST_SAME_SIGNATURE(ncclBroadcast, Broadcast);
LOCALIST_SAME_SIGNATURE(ncclAllGather, AllGather);
LOCALIST_SAME_SIGNATURE(ncclReduceScatter, ReduceScatter);
LOCALIST_SAME_SIGNATURE(ncclSend, Send);
LOCALIST_SAME_SIGNATURE(ncclRecv, Recv);
LOCALIST_SAME_SIGNATURE(ncclGroupStart, GroupStart);
LOCALIST_SAME_SIGNATURE(ncclGroupEnd, GroupEnd);

// Enums travel as int: their size and every value used must be NCCL's.
static_assert(sizeof(ncclResult_t) == sizeof(int) && sizeof(ncclDataType_t) == sizeof(int) &&
              sizeof(ncclRedOp_t) == sizeof(int));
static_assert(sizeof(ours::ncclUniqueId) == sizeof(ncclUniqueId) && NCCL_UNIQUE_ID_BYTES == 128);
static_assert(int(ours::ncclSuccess) == int(ncclSuccess) && int(ours::ncclInProgress) == int(ncclInProgress));
static_assert(int(ours::ncclSum) == int(ncclSum) && int(ours::ncclProd) == int(ncclProd) &&
              int(ours::ncclMax) == int(ncclMax) && int(ours::ncclMin) == int(ncclMin) &&
              int(ours::ncclAvg) == int(ncclAvg));
static_assert(int(ours::ncclInt8) == int(ncclInt8) && int(ours::ncclUint8) == int(ncclUint8) &&
              int(ours::ncclInt32) == int(ncclInt32) && int(ours::ncclUint32) == int(ncclUint32) &&
              int(ours::ncclInt64) == int(ncclInt64) && int(ours::ncclUint64) == int(ncclUint64) &&
              int(ours::ncclFloat16) == int(ncclFloat16) && int(ours::ncclFloat32) == int(ncclFloat32) &&
              int(ours::ncclFloat64) == int(ncclFloat64) && int(ours::ncclBfloat16) == int(ncclBfloat16));

}  // namespace

// The checks above ran when this file compiled; this names the header they ran against.
TEST(NcclHeader, TheDeclaredAbiIsNcclsOwn) {
  std::printf("checked against nccl.h of NCCL %d.%d.%d\n", NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH);
  EXPECT_GE(NCCL_VERSION_CODE, NCCL_VERSION(2, 10, 0)) << "localist needs NCCL >= 2.10 (ncclAvg, bf16)";
}
