# SPDX-License-Identifier: Apache-2.0
# Finds every dependency with CMake's own mechanisms and sets LOCALIST_HAVE_CUDA.
# LibTorch is 2.11.x from the PyPI wheel: the project venv's (tools/setup.sh makes
# .venv; LOCALIST_PYTHON names another interpreter) unless CMAKE_PREFIX_PATH or Torch_DIR
# already point at one. CUDA is on when that LibTorch has CUDA and nvcc is found; NCCL is
# loaded at run time. Limits: LibTorch 2.11 only (docs/install.md says why one version).

# The venv's torch: its CMake package lies inside the wheel.
set(LOCALIST_PYTHON "" CACHE FILEPATH "Python whose torch package provides LibTorch (default: the project's .venv)")
if(NOT Torch_DIR)
  set(python "${LOCALIST_PYTHON}")
  if(NOT python AND EXISTS "${PROJECT_SOURCE_DIR}/.venv/bin/python")
    set(python "${PROJECT_SOURCE_DIR}/.venv/bin/python")
  endif()
  if(python)
    execute_process(COMMAND "${python}" -c "import torch.utils; print(torch.utils.cmake_prefix_path, end='')"
                    OUTPUT_VARIABLE torch_prefix RESULT_VARIABLE torch_status ERROR_QUIET)
    if(torch_status EQUAL 0 AND torch_prefix)
      list(APPEND CMAKE_PREFIX_PATH "${torch_prefix}")
      # Torch's config finds its libraries with find_library(... PATHS <its lib>), which
      # looks in the system's folders first: a Debian libtorch there would win.
      get_filename_component(torch_lib "${torch_prefix}/../../lib" ABSOLUTE)
      list(PREPEND CMAKE_LIBRARY_PATH "${torch_lib}")
      # The tests ask it what torch says of itself (cached: later configures skip this block).
      set(LOCALIST_TORCH_PYTHON "${python}" CACHE INTERNAL "the Python whose torch provides LibTorch")
    elseif(LOCALIST_PYTHON)
      message(FATAL_ERROR "LOCALIST_PYTHON=${LOCALIST_PYTHON} has no importable torch; "
                          "install torch==2.11.0 there or run tools/setup.sh for the project's .venv")
    endif()
  endif()
endif()

# A CUDA wheel's Torch config needs the CUDA toolkit at configure time. Its architecture
# auto-detection needs a GPU, so the list is explicit: 9.0 is H100/H200 (sm_90); set
# -DLOCALIST_CUDA_ARCHS="8.0;9.0" (or TORCH_CUDA_ARCH_LIST) for other cards.
set(LOCALIST_CUDA_ARCHS "9.0" CACHE STRING "CUDA architectures compiled for (TORCH_CUDA_ARCH_LIST form, e.g. 8.0;9.0)")
if(NOT LOCALIST_CUDA STREQUAL "OFF")
  if(NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
    set(ENV{TORCH_CUDA_ARCH_LIST} "${LOCALIST_CUDA_ARCHS}")
  endif()
  if(NOT CUDAToolkit_ROOT AND NOT DEFINED ENV{CUDAToolkit_ROOT})
    foreach(root /usr/local/cuda-13.0 /usr/local/cuda)
      if(EXISTS "${root}/bin/nvcc")
        set(CUDAToolkit_ROOT "${root}")
        break()
      endif()
    endforeach()
  endif()
  if(CUDAToolkit_ROOT AND NOT CMAKE_CUDA_COMPILER AND EXISTS "${CUDAToolkit_ROOT}/bin/nvcc")
    set(CMAKE_CUDA_COMPILER "${CUDAToolkit_ROOT}/bin/nvcc")
  endif()
endif()
# CMake would give CUDA a default architecture list, which the wheel's config warns about and
# ignores (TORCH_CUDA_ARCH_LIST above is what it uses): leave it unset (policy CMP0104 OLD).
cmake_policy(SET CMP0104 OLD)
# The wheel's config looks for MKL headers it does not ship; localist needs none.
set(CMAKE_DISABLE_FIND_PACKAGE_MKL TRUE)
find_package(Torch REQUIRED)
get_filename_component(torch_found_lib "${TORCH_LIBRARY}" DIRECTORY)
get_filename_component(torch_own_lib "${TORCH_INSTALL_PREFIX}/lib" ABSOLUTE)
if(NOT torch_found_lib STREQUAL torch_own_lib)
  message(FATAL_ERROR "LibTorch's CMake package at ${Torch_DIR} found its library at ${TORCH_LIBRARY}, which belongs "
                      "to another installation (Debian's libtorch-dev?); configure a fresh build folder with "
                      "-DCMAKE_LIBRARY_PATH=${torch_own_lib}")
endif()
if(NOT Torch_VERSION VERSION_GREATER_EQUAL 2.11 OR Torch_VERSION VERSION_GREATER_EQUAL 2.12)
  message(FATAL_ERROR "LibTorch ${Torch_VERSION} at ${Torch_DIR}: localist supports LibTorch 2.11.x only; "
                      "run tools/setup.sh (project .venv with torch==2.11.0) or point LOCALIST_PYTHON at one")
endif()
# torch's deprecated APIs (c10::optional's aliases and the like) are compile errors here.
add_compile_definitions(C10_NODEPRECATED)
find_package(MPI REQUIRED COMPONENTS C CXX)
find_package(HDF5 REQUIRED COMPONENTS C CXX)
find_package(yaml-cpp REQUIRED)
find_package(spdlog REQUIRED)
find_package(fmt REQUIRED)
# The torch wheel ships fmt 12's headers in its include folder, which every target sees
# before the system's. spdlog's library and localist use the system's fmt (Debian: 9), so
# a folder holding only a link to that fmt goes first, for every target.
get_target_property(fmt_include fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
find_path(LOCALIST_FMT_INCLUDE_DIR fmt/format.h HINTS ${fmt_include} /usr/include)
set(fmt_first "${CMAKE_BINARY_DIR}/fmt-first")
file(MAKE_DIRECTORY "${fmt_first}")
file(CREATE_LINK "${LOCALIST_FMT_INCLUDE_DIR}/fmt" "${fmt_first}/fmt" SYMBOLIC)
include_directories(BEFORE SYSTEM "${fmt_first}")
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
# Neither is the driver (libcuda): LibTorch dlopens it, so the binary loads without one.
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
