// SPDX-License-Identifier: Apache-2.0
// build_info.h: the version of localist and the git commit it was built from, for
// `--version`, `info`, checkpoints' provenance and the audit report. The definitions
// are generated at build time (cmake/LocalistBuildInfo.cmake); "+dirty" marks a build
// with uncommitted changes, "unknown" one built outside a git checkout.
#pragma once

namespace localist {

const char* build_version();
const char* build_commit();

}  // namespace localist
