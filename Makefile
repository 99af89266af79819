# dgm — the two commands of the README, and a few more.
#   make test                  install what is missing, configure, build, run every test (ctest)
#   make lesson NAME=engine    ... and run one lesson: build/bin/lesson_<NAME> $(ARGS)
#   make test SANITIZE=1       the same suite built with AddressSanitizer + UBSan (in build-asan/)
#   make bench [ARGS=...]      build/bin/bench_train
#   make data                  install the data sets the lessons use (Fashion-MNIST, 8x8 digits)
#   make fuzz [SECONDS=60]     fuzz the data readers (libFuzzer)
SANITIZE ?= 0
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
ifeq ($(SANITIZE),1)
  BUILD ?= build-asan
  CMAKE_FLAGS += -DDGM_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
else
  BUILD ?= build
endif
GENERATOR := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")

.PHONY: deps data configure build test lesson bench fuzz clean

deps:
	@scripts/install-deps.sh

data:
	@scripts/install-data.sh

configure: deps
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) $(GENERATOR) $(CMAKE_FLAGS)

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

lesson: build data
	@test -n "$(NAME)" || { echo "usage: make lesson NAME=<chapter> [ARGS='--quick --seed 1']"; \
	  echo "lessons: $$(ls $(BUILD)/bin | sed -n 's/^lesson_//p' | tr '\n' ' ')"; exit 2; }
	@test -x $(BUILD)/bin/lesson_$(NAME) || { echo "no lesson '$(NAME)'; lessons: $$(ls $(BUILD)/bin | sed -n 's/^lesson_//p' | tr '\n' ' ')"; exit 2; }
	$(BUILD)/bin/lesson_$(NAME) $(ARGS)

bench: build
	$(BUILD)/bin/bench_train $(ARGS)

fuzz: build
	scripts/fuzz.sh $(or $(SECONDS),60)

clean:
	rm -rf build build-asan
