# SPDX-License-Identifier: Apache-2.0
# LocalistInstall.cmake: what `cmake --install build --prefix P` puts under P, and the
# Debian package CPack builds from it (`cpack -G DEB` in the build directory, or `make
# package`). The installed binary finds its helper in libexec/localist beside its bin/;
# the installed configs point at the installed corpora, the installed Slurm template at
# the installed binary, so nothing refers to the source or build tree.
include(GNUInstallDirs)
set(LOCALIST_SHARE ${CMAKE_INSTALL_DATADIR}/localist)
set(LOCALIST_DOC ${CMAKE_INSTALL_DOCDIR})

# Libraries found outside the system's directories stay found. LibTorch's folder is named
# explicitly: CMake leaves out link folders inside the project, and the venv is one.
get_filename_component(LOCALIST_TORCH_LIB_DIR "${TORCH_LIBRARY}" DIRECTORY)
set_target_properties(localist localist-spm PROPERTIES INSTALL_RPATH_USE_LINK_PATH TRUE
                      INSTALL_RPATH "${LOCALIST_TORCH_LIB_DIR}")
install(TARGETS localist RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS localist-spm RUNTIME DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/localist)
install(PROGRAMS launch/mpirun.sh DESTINATION ${CMAKE_INSTALL_BINDIR} RENAME localist-mpirun)

install(FILES corpora/README.md corpora/tinyshakespeare.txt corpora/wikitext2-valid.txt corpora/wikitext2-test.txt
        DESTINATION ${LOCALIST_SHARE}/corpora)
install(FILES LICENSE README.md CHANGELOG.md DESTINATION ${LOCALIST_DOC})
install(DIRECTORY docs/ DESTINATION ${LOCALIST_DOC}/docs FILES_MATCHING PATTERN "*.md" PATTERN "*.png" PATTERN "*.py")

# Configs: `path: corpora/...` becomes the installed corpora, so the quickstart runs from
# any directory; the Slurm template learns the installed binary. At install time, so a
# package staged under DESTDIR still names its final prefix.
file(GLOB LOCALIST_CONFIGS ${PROJECT_SOURCE_DIR}/configs/*.yaml)
install(CODE "
  set(share \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${LOCALIST_SHARE}\")
  set(corpora \"\${CMAKE_INSTALL_PREFIX}/${LOCALIST_SHARE}/corpora/\")
  foreach(config ${LOCALIST_CONFIGS})
    get_filename_component(name \"\${config}\" NAME)
    file(READ \"\${config}\" text)
    string(REPLACE \"path: corpora/\" \"path: \${corpora}\" text \"\${text}\")
    file(WRITE \"\${share}/configs/\${name}\" \"\${text}\")
    message(STATUS \"Installing: \${share}/configs/\${name} (corpora under \${corpora})\")
  endforeach()
  file(READ \"${PROJECT_SOURCE_DIR}/launch/slurm/train.sbatch\" text)
  string(REPLACE \"INSTALLED_LOCALIST=\\\"\\\"\"
                 \"INSTALLED_LOCALIST=\\\"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/localist\\\"\" text \"\${text}\")
  file(WRITE \"\${share}/slurm/train.sbatch\" \"\${text}\")
  message(STATUS \"Installing: \${share}/slurm/train.sbatch\")
")

# The Debian package: runtime libraries from dpkg-shlibdeps, plus what is called, not
# linked (mpirun). LibTorch is no Debian package: it stays where the build found it (the
# binary's RUNPATH names it; docs/install.md), so dpkg-shlibdeps is told it is private.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME localist)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "localist developers")
set(CPACK_PACKAGE_CONTACT "localist developers <maintainers@localist.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Trains localist language models (a locality dial from rule-checkable to distributed) on CPU and MPI clusters")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS "${LOCALIST_TORCH_LIB_DIR}")
set(CPACK_DEBIAN_PACKAGE_DEPENDS "openmpi-bin")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "python3-h5py")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "slurm-wlm")
set(CPACK_PACKAGE_DESCRIPTION "localist trains transformer language models whose representations move from localist
(semantic blocks, attention inside the relevant block, checkable rules) to distributed by one number, the locality
dial, and grows capacity while training (recruited blocks, specialist LLMs). MPI-launched (mpirun or Slurm), HDF5
checkpoints, YAML configs. Needs LibTorch ${Torch_VERSION} where it was built against: ${LOCALIST_TORCH_LIB_DIR}
(or on LD_LIBRARY_PATH).")
include(CPack)
