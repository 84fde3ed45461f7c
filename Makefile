# The README's commands. Each target does all the set-up it needs on a fresh
# Debian machine (scripts/setup.sh is idempotent and takes a second when ready).
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: setup configure build test demo bench-rollout bench-grpo bench-real bench-code-exec bench fixtures fuzz clean soak

setup:
	@bash scripts/setup.sh

configure: setup
	@test -f $(BUILD)/build.ninja || cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

demo: build
	@bash scripts/demo.sh $(BUILD)

bench-rollout: build
	@bash scripts/setup.sh tools
	@bash bench/rollout.sh $(BUILD)

bench-grpo: build
	@bash scripts/setup.sh tools
	@bash bench/grpo.sh $(BUILD)

soak: build
	@bash bench/soak.sh $(BUILD)

bench-real: build
	@bash scripts/setup.sh tools
	@bash bench/real.sh $(BUILD)

bench-code-exec: build
	@bash bench/code_exec.sh $(BUILD)

fixtures: setup
	@bash scripts/setup.sh tools
	@$(HOME)/.cache/r1kit/venv/bin/python tools/make_fixtures.py

fuzz: build
	@bash scripts/fuzz.sh $(BUILD)

clean:
	@rm -rf $(BUILD)
