// cli.h: the `localist` command: verbs prepare, train, eval, generate, inspect, info.
// Every error becomes one line on stderr and a documented exit status (core/error.h);
// verbs that a later part of the system provides say so and exit 3.
#pragma once

namespace localist {

int cli_main(int argc, char** argv);

}  // namespace localist
