# SPDX-License-Identifier: Apache-2.0
# Finds every dependency with CMake's own mechanisms and sets LOCALIST_HAVE_CUDA. CUDA
# is optional: it comes with a CUDA LibTorch (CMAKE_PREFIX_PATH=/path/to/libtorch, e.g.
# the one inside a PyTorch pip installation); NCCL is loaded at run time.
find_package(Torch REQUIRED)
find_package(MPI REQUIRED COMPONENTS C CXX)
find_package(HDF5 REQUIRED COMPONENTS C CXX)
find_package(yaml-cpp REQUIRED)
find_package(spdlog REQUIRED)
find_package(fmt REQUIRED)
find_package(CLI11 REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)
# RE2 (Debian libre2-dev): the rules' regexes, matched in linear time.
pkg_check_modules(RE2 REQUIRED IMPORTED_TARGET re2)
find_package(Threads REQUIRED)
find_package(OpenSSL REQUIRED COMPONENTS Crypto)

# HDF5's variables become one imported target so folders link it like the others.
if(NOT TARGET localist::hdf5)
  add_library(localist::hdf5 INTERFACE IMPORTED)
  target_include_directories(localist::hdf5 INTERFACE ${HDF5_INCLUDE_DIRS})
  target_link_libraries(localist::hdf5 INTERFACE ${HDF5_CXX_LIBRARIES} ${HDF5_LIBRARIES})
  target_compile_definitions(localist::hdf5 INTERFACE ${HDF5_DEFINITIONS})
endif()

# CUDA: decided by the LibTorch that was found, never assumed. NCCL is not linked: the
# NCCL backend loads libnccl.so.2 at run time (comm/nccl_library.h), so every build has it.
set(LOCALIST_HAVE_CUDA OFF)
if(NOT LOCALIST_CUDA STREQUAL "OFF")
  if(TARGET torch_cuda OR TORCH_CUDA_LIBRARIES OR CUDA_FOUND)
    set(LOCALIST_HAVE_CUDA ON)
  elseif(LOCALIST_CUDA STREQUAL "ON")
    message(FATAL_ERROR "LOCALIST_CUDA=ON but the LibTorch found at ${Torch_DIR} has no CUDA; "
                        "point CMAKE_PREFIX_PATH at a CUDA build of LibTorch, for example "
                        "$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')")
  endif()
endif()
