# Thin wrapper over CMake: `make` builds build/recstream, `make test` builds the sanitized
# test build and runs every test, `make run` starts the service on the embedded default.
BUILD      ?= build
TEST_BUILD ?= build-test
JOBS       ?= $(shell nproc)
# clang 19 first: its AddressSanitizer is fork-safe (forked checkpoints); any clang otherwise.
CLANG      := $(shell command -v clang-19 2>/dev/null || command -v clang 2>/dev/null)
TEST_FLAGS := -DRECSTREAM_SANITIZE=ON
ifneq ($(CLANG),)
TEST_FLAGS += -DCMAKE_C_COMPILER=$(CLANG) -DRECSTREAM_FUZZ=ON
endif

.PHONY: all build test run bench clean format

all: build

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRECSTREAM_TESTS=OFF >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

test:
	cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug $(TEST_FLAGS) >/dev/null
	cmake --build $(TEST_BUILD) -j $(JOBS)
	cd $(TEST_BUILD) && ctest --output-on-failure -j 2 --timeout 900

run: build
	./scripts/run-demo.sh

bench: build
	./bench/ingest.sh

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'bench/*.c')

clean:
	rm -rf $(BUILD) $(TEST_BUILD)
