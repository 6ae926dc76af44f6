# SPDX-License-Identifier: Apache-2.0
# LocalistWriteIfChanged.cmake: for the build-time generators (cmake -P scripts): writes
# TEXT to FILE only when it differs, so an unchanged output recompiles nothing.
function(localist_write_if_changed file text)
  set(old "")
  if(EXISTS "${file}")
    file(READ "${file}" old)
  endif()
  if(NOT old STREQUAL text)
    file(WRITE "${file}" "${text}")
  endif()
endfunction()
