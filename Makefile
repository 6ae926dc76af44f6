# SPDX-License-Identifier: Apache-2.0
# The two commands a user needs (README): `make demo` and `make test`.
# Both install what is missing (tools/setup.sh), configure and build with CMake.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= 2
CMAKE_ARGS ?=

.PHONY: setup configure build demo test test-unit package install clean

setup:
	bash tools/setup.sh

configure: setup
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_ARGS)

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

demo: build
	bash tools/demo.sh $(BUILD_DIR)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

# Narrow loops while developing: `make test-unit`, or ctest -L mpi|e2e|gpu.
test-unit: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -L unit

# The Debian package (localist_<version>_amd64.deb in the build directory), and an
# installation under PREFIX (default /usr/local): docs/install.md.
package: build
	cd $(BUILD_DIR) && cpack -G DEB

PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD_DIR) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD_DIR)
