// SPDX-License-Identifier: Apache-2.0
// main.cpp: entry point of the `localist` command; everything happens in cli_main.
#include "launch/cli.h"

int main(int argc, char** argv) { return localist::cli_main(argc, argv); }
