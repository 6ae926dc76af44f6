# SPDX-License-Identifier: Apache-2.0
# LocalistTorchPch.cmake: LibTorch 2.x's headers cost ~15 s of parsing in every file that
# includes <ATen/ATen.h>; they are precompiled once (target localist_torch_pch) and that
# header is reused by every target that links torch (a file's parse: ~16 s -> ~4 s).
# Limits: GCC's PCH is taken only with matching code-generation flags, so the AVX2 kernel
# objects (-mavx2) and -fPIC objects parse the headers themselves; off with -DLOCALIST_PCH=OFF.
option(LOCALIST_PCH "Precompile LibTorch's headers once for every target that links torch" ON)

# Whether `target` links torch, directly or through a localist library.
function(localist_links_torch target out)
  set(seen "")
  set(todo ${target})
  set(found FALSE)
  while(todo)
    list(POP_FRONT todo t)
    if(t IN_LIST seen OR NOT TARGET ${t})
      continue()
    endif()
    list(APPEND seen ${t})
    get_target_property(libs ${t} LINK_LIBRARIES)
    if(NOT libs)
      continue()
    endif()
    if("torch" IN_LIST libs)
      set(found TRUE)
      break()
    endif()
    foreach(l ${libs})
      if(l MATCHES "^localist_")
        list(APPEND todo ${l})
      endif()
    endforeach()
  endwhile()
  set(${out} ${found} PARENT_SCOPE)
endfunction()

# localist_torch_pch(DIRS dir...): every library and executable in those directories
# that links torch reuses the precompiled LibTorch headers.
function(localist_torch_pch)
  cmake_parse_arguments(ARG "" "" "DIRS" ${ARGN})
  if(NOT LOCALIST_PCH OR LOCALIST_FUZZ)
    return()
  endif()
  add_library(localist_torch_pch STATIC ${PROJECT_SOURCE_DIR}/cmake/torch_pch.cpp)
  target_link_libraries(localist_torch_pch PUBLIC torch)
  target_precompile_headers(localist_torch_pch PRIVATE <ATen/ATen.h> <ATen/Parallel.h> <ATen/CPUGeneratorImpl.h>
                            <torch/csrc/autograd/custom_function.h> <torch/optim/adamw.h>)
  foreach(dir ${ARG_DIRS})
    get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
    foreach(t ${targets})
      get_target_property(type ${t} TYPE)
      get_target_property(pic ${t} POSITION_INDEPENDENT_CODE)
      if(NOT type MATCHES "STATIC_LIBRARY|EXECUTABLE" OR pic)
        continue()
      endif()
      localist_links_torch(${t} links)
      if(links)
        target_precompile_headers(${t} REUSE_FROM localist_torch_pch)
      endif()
    endforeach()
  endforeach()
endfunction()
