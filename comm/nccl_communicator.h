// SPDX-License-Identifier: Apache-2.0
// nccl_communicator.h: the NCCL backend of Communicator, the data plane for CUDA tensors
// (DESIGN.md §2): the unique id is bootstrapped over the group's MPI communicator (the
// control plane), operations are enqueued on the device's default stream, ordered after
// and before the current stream by events, and every wait polls the event and
// ncclCommGetAsyncError against the group's timeout; on a timeout or an NCCL error the
// communicator is aborted (ncclCommAbort) and the error names the operation, as the MPI
// backend's does. split() splits the MPI group and starts a new NCCL communicator on it.
// Limits: one GPU per rank (NCCL refuses two ranks on one GPU); CUDA tensors only.
#pragma once
#include <memory>

#include "comm/communicator.h"

namespace localist {

// A communicator over the ranks of `control` (an MPI group) for CUDA tensors on `device`.
// Collective over `control`. Throws Error with a hint when NCCL cannot be loaded.
std::shared_ptr<Communicator> nccl_communicator_make(std::shared_ptr<Communicator> control, const at::Device& device);

// The communicator that carries tensors on `device` for the ranks of `control`: `control`
// itself for CPU tensors, an NCCL communicator for CUDA tensors. Collective over
// `control` when the device is CUDA. The NCCL library is loaded first, so a missing one
// is reported (with a hint) before any CUDA call.
std::shared_ptr<Communicator> data_plane_for(std::shared_ptr<Communicator> control, const at::Device& device);

}  // namespace localist
