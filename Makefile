# dself: `make` sets up and builds; `make test`, `make demo`, `make bench` as in the README.
BUILD ?= build
DSELF := $(BUILD)/app/dself
JOBS ?= $(shell nproc)
DEMO ?= demo

.PHONY: all setup build web test test-unit test-slow demo eval eval-voice bench bench-train fuzz clean

all: setup build web

setup:
	bash scripts/setup.sh

build:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j $(JOBS)

# The web UI (web/dist, served by `dself serve`): rebuilt only when its sources are newer.
WEB_SOURCES := $(shell find web/src web/index.html web/package.json web/package-lock.json web/tsconfig.json web/vite.config.ts 2>/dev/null)
web: web/dist/index.html
web/dist/index.html: $(WEB_SOURCES)
	cd web && npm ci --no-audit --no-fund && npm run build

# The default suite: the libraries' tests ("unit"), the real binary end to end ("e2e") and the
# evaluations on the sample person ("eval"), with the fixtures they share. test-unit: the fast
# part. test-slow: the tests that take minutes each (training a voice on a whole sample person).
test: all
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -L 'unit|e2e|eval'
test-unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -L unit
test-slow: all
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -L slow

# The main job on the sample person: make one, ingest and prepare it, train its voice, show what
# the avatar has, then serve it: open the printed URL (PORT=8080 by default) to talk to it; Ctrl-C
# stops. Four minutes of video give the voice enough speech to train (with a low-quality warning).
PORT ?= 8080
demo: all
	$(DSELF) sample --out $(DEMO)/sample --minutes 4 --videos 2
	$(DSELF) --avatar $(DEMO)/avatar ingest $(DEMO)/sample
	$(DSELF) --avatar $(DEMO)/avatar prepare
	$(DSELF) --avatar $(DEMO)/avatar train
	$(DSELF) --avatar $(DEMO)/avatar report
	$(DSELF) --avatar $(DEMO)/avatar status
	$(DSELF) --avatar $(DEMO)/avatar serve --port $(PORT)

# The evaluations, on the default sample person (2 minutes, 2 videos); prints JSON.
EVAL ?= eval-run
eval: all
	rm -rf $(EVAL)
	$(DSELF) --quiet sample --out $(EVAL)/sample
	$(DSELF) --quiet --avatar $(EVAL)/avatar ingest $(EVAL)/sample
	$(DSELF) --quiet --avatar $(EVAL)/avatar prepare
	$(DSELF) --avatar $(EVAL)/avatar eval prepare --truth $(EVAL)/sample --json
	$(DSELF) --avatar $(EVAL)/avatar eval say --truth $(EVAL)/sample --json
	$(MAKE) eval-voice

# The trained voice on a sample person of the issue's size (10 minutes of video; EVAL_VOICE picks
# the flite voice): train it, then judge it against the fallback and the vocoder's floor on
# held-out sentences; prints JSON (about 25 minutes on 2 cores).
EVAL_VOICE ?= awb
eval-voice: all
	rm -rf $(EVAL)/voice-$(EVAL_VOICE)
	$(DSELF) --quiet sample --out $(EVAL)/voice-$(EVAL_VOICE)/sample --minutes 10 --videos 2 --voice $(EVAL_VOICE) --seed 5
	$(DSELF) --quiet --avatar $(EVAL)/voice-$(EVAL_VOICE)/avatar ingest $(EVAL)/voice-$(EVAL_VOICE)/sample
	$(DSELF) --quiet --avatar $(EVAL)/voice-$(EVAL_VOICE)/avatar prepare
	$(DSELF) --avatar $(EVAL)/voice-$(EVAL_VOICE)/avatar train voice --threads $(JOBS)
	$(DSELF) --avatar $(EVAL)/voice-$(EVAL_VOICE)/avatar eval voice --json

bench: all
	cmake --build $(BUILD) --target benches -j $(JOBS)
	$(BUILD)/bench/bench_media
	$(BUILD)/bench/bench_sample
	$(BUILD)/bench/bench_prepare
	$(BUILD)/bench/bench_persona
	$(BUILD)/bench/bench_say
	$(BUILD)/bench/bench_render /tmp/dself-bench-say/avatar
	$(BUILD)/bench/bench_serve
	$(BUILD)/bench/bench_vocoder
	$(BUILD)/bench/bench_whisper
	$(BUILD)/bench/bench_llm 2

# The voice's training time and peak memory against the amount of speech: sample persons of 5, 10
# and 30 minutes of video (BENCH_TRAIN_MINUTES), each made, prepared and trained on 2 threads
# (about an hour on 2 cores in all; docs/BENCHMARKS.md).
BENCH_TRAIN_MINUTES ?= 5 10 30
bench-train: all
	bash scripts/bench_train.sh $(abspath $(DSELF)) /tmp/dself-bench-train $(EVAL_VOICE) $(JOBS) $(BENCH_TRAIN_MINUTES)

clean:
	rm -rf $(BUILD)

# Fuzzing (issue 16): the libFuzzer targets in fuzz/, built by clang with ASan and UBSan in
# $(FUZZ_BUILD), each run for FUZZ_SECONDS from its seed corpus (fuzz/corpus/<target>/; new
# inputs go to $(FUZZ_BUILD)/corpus/<target>/, crashes to $(FUZZ_BUILD)/crashes/<target>/).
# Prints executions and crashes per target; fails when any target crashed.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= captions safetensors transcript_json dataset_json landmarks voice_config server_requests tokenizer
fuzz: setup
	@# clang with libFuzzer and the sanitizer runtimes: only the fuzz build needs them.
	dpkg-query -W -f='$${Status}\n' clang libclang-rt-14-dev 2>/dev/null | grep -c "install ok installed" | grep -qx 2 || \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends clang libclang-rt-14-dev)
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DDSELF_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	bash scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)
