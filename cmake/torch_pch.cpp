// SPDX-License-Identifier: Apache-2.0
// torch_pch.cpp: the one file of target localist_torch_pch, whose precompiled LibTorch
// headers the other targets reuse (cmake/LocalistTorchPch.cmake). Defines nothing.
