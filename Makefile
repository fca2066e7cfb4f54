# Thin wrapper: the real work is in CMake and scripts/. See docs/testing.md.
#
#   make / make build   configure + build build/ (warnings are errors)
#   make test           deps, both builds, throwaway PostgreSQL, every suite
#   make asan           configure + build build-asan/ (ASan + UBSan)
#   make tsan           build-tsan/: the host's tests under ThreadSanitizer
#   make fuzz           scripts/fuzz.sh $(FUZZ_SECONDS)
#   make demo           scripts/demo.sh (DB=postgres: on a throwaway PostgreSQL)
#   make wheel          dist/molt_db-*.whl: the Python package with molt_worker inside
#   make bench          bench/run.sh (QUICK=1 for a short run)
#   make install        cmake --install build --prefix $(PREFIX)
#   make clean          remove build dirs;  make distclean  also .venv

PREFIX ?= /usr/local
JOBS ?= 2
BUILD_TYPE ?= RelWithDebInfo
FUZZ_SECONDS ?= 60
QUICK ?=
CMAKE_ARGS ?=
DB ?= sqlite
# the Python that builds the wheel: the project's .venv when there is one
PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)
# the Python the extension modules are built for (cmake/python_extension.cmake)
PYTHON_EXE_ARG = -DPython3_EXECUTABLE=$(abspath $(shell command -v $(PYTHON)))

SHELL := /bin/bash

.PHONY: all build deps test asan tsan fuzz demo wheel bench install clean distclean

all: build

deps:
	@bash scripts/deps.sh --system

build: deps
	cmake -S . -B build -DMOLT_DB_WERROR=ON -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(PYTHON_EXE_ARG) $(CMAKE_ARGS)
	cmake --build build -j $(JOBS)

test:
	bash scripts/test.sh

asan: deps
	cmake -S . -B build-asan -DMOLT_DB_SANITIZE=ON -DMOLT_DB_WERROR=ON \
	  -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(PYTHON_EXE_ARG) $(CMAKE_ARGS)
	cmake --build build-asan -j $(JOBS)

# only the tests of threads: the host's (test_host_*) and the loop's wakers
tsan: deps
	cmake -S . -B build-tsan -DMOLT_DB_TSAN=ON -DMOLT_DB_WERROR=ON \
	  -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_ARGS)
	cmake --build build-tsan -j $(JOBS) --target test_host_threads test_host_abi test_loop_wake

fuzz: deps
	bash scripts/fuzz.sh $(FUZZ_SECONDS)

demo:
	DEMO_DB_KIND=$(DB) bash scripts/demo.sh

# pip runs python/pyproject.toml's backend (scikit-build-core), which builds
# the worker alone with CMake into .tmp/wheel-build (kept for the next build)
wheel:
	bash scripts/deps.sh --build
	rm -f dist/molt_db-*.whl
	cd python && CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) $(abspath $(PYTHON)) -m pip wheel \
	  --no-deps --disable-pip-version-check -q -w ../dist .
	@ls dist/molt_db-*.whl

bench: build
	QUICK=$(QUICK) bash bench/run.sh

install: build
	cmake --install build --prefix $(PREFIX)

clean:
	rm -rf build build-asan build-fuzz build-*/ .tmp/test-logs .tmp/wheel-build dist

distclean: clean
	rm -rf .venv .tmp
