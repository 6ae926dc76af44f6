// SPDX-License-Identifier: Apache-2.0
// cli.h: the `localist` command: verbs prepare, train, eval, generate, inspect, report, info.
// Every error becomes one line on stderr and a documented exit status (core/error.h);
// exit 75 means stopped by a signal after a checkpoint (resume with --resume auto).
#pragma once

namespace localist {

int cli_main(int argc, char** argv);

}  // namespace localist
