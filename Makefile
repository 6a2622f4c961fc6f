# deepc — build with `make`, test with `make test`.
CC      ?= gcc
CFLAGS  ?= -O2 -march=native
CFLAGS  += -std=c11 -fopenmp -Wall -Wextra -D_GNU_SOURCE -Iinclude -Isrc -MMD -MP
LDLIBS  := -lcjson -lpcre2-8 -lopenblas -lm
BUILD   := build

LIB_SRC := $(sort $(wildcard src/base/*.c src/kernels/*.c src/io/*.c src/model/*.c \
                             src/tokenizer/*.c src/infer/*.c src/train/*.c))
CLI_SRC := $(sort $(wildcard src/cli/*.c))
# the server (src/serve/) links libmicrohttpd; only the binary and its tests need it
SERVE_SRC := $(sort $(wildcard src/serve/*.c))
SERVE_OBJ := $(SERVE_SRC:%.c=$(BUILD)/%.o)
SERVE_LIBS := -lmicrohttpd -lpthread
TEST_SRC:= $(sort $(wildcard tests/test_*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
TESTS   := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

.PHONY: all test demo clean
.SECONDARY:
all: $(BUILD)/deepc $(BUILD)/libdeepc.a

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libdeepc.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/deepc: $(CLI_OBJ) $(SERVE_OBJ) $(BUILD)/libdeepc.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS) $(SERVE_LIBS)

# the web chat is compiled in (.incbin in page.c)
$(BUILD)/src/serve/page.o: src/serve/chat.html

# tests of src/serve/ link its objects
$(BUILD)/tests/test_serve: $(BUILD)/tests/test_serve.o $(BUILD)/tests/harness.o $(SERVE_OBJ) $(BUILD)/libdeepc.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS) $(SERVE_LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(BUILD)/tests/harness.o $(BUILD)/libdeepc.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/harness.o: tests/harness.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# Gradient checks in double precision: the layer files again, with real = double.
DBL_SRC := src/model/norm.c src/model/rope.c src/model/ffn.c src/model/mla.c src/model/moe.c
DBL_OBJ := $(DBL_SRC:%.c=$(BUILD)/dbl/%.o)
$(BUILD)/dbl/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DDC_REAL_DOUBLE -c $< -o $@
$(BUILD)/tests/test_grad: $(BUILD)/dbl/tests/test_grad.o $(DBL_OBJ) $(BUILD)/tests/harness.o $(BUILD)/libdeepc.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

# Golden numbers: random tiny checkpoints and their logits from the PyTorch
# reference (tests/ref/), with the system's python3 (Debian's python3-torch).
REF := $(BUILD)/ref/cases.txt
$(REF): $(wildcard tests/ref/*.py)
	/usr/bin/python3 tests/ref/gen_cases.py $(BUILD)/ref

REF_TRAIN := $(BUILD)/ref_train/cases.txt
$(REF_TRAIN): $(wildcard tests/ref/*.py)
	/usr/bin/python3 tests/ref/gen_train_cases.py $(BUILD)/ref_train

# Every test binary, then the server's tests with real clients (node, the
# openai npm client, Chromium, wrk: tests/server/), then the total line
# "N passed, N failed".
test: all $(TESTS) $(REF) $(REF_TRAIN)
	@DEEPC_BUILD=$(BUILD) bash tests/run.sh $(BUILD) $(TESTS) tests/server/test_server.sh

# The README's first command: install what is needed, build, run the main job.
demo:
	@bash scripts/deps.sh
	@$(MAKE) --no-print-directory all
	@bash scripts/demo.sh

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(SERVE_OBJ:.o=.d) $(TESTS:%=%.d) $(DBL_OBJ:.o=.d)

# Kernel figures (prints, never fails): the matvec kernels against read bandwidth.
.PHONY: bench-kernels
bench-kernels: $(BUILD)/bench/bench_matvec
$(BUILD)/bench/%: bench/%.c $(BUILD)/libdeepc.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

# Tokenizer figures (prints, never fails): vocab load time, encode/decode MB/s
# on 1 and 2 threads, and the BPE trainer's time and memory.
.PHONY: bench-tokenizer
bench-tokenizer: $(BUILD)/bench/bench_tokenizer
	@$(BUILD)/bench/bench_tokenizer

# Training figures (prints, never fails): deepc vs the PyTorch reference on
# the train-bench shape, 1 and 2 threads, and GFLOP/s against sgemm.
.PHONY: bench-train
bench-train: $(BUILD)/bench/bench_train
	@$(BUILD)/bench/bench_train

# Fuzzing (issue 6): libFuzzer over the GGUF and safetensors readers for a
# bounded time (FUZZ_SECONDS, default 60). Needs clang and its libFuzzer
# runtime (Debian: clang, libclang-rt-14-dev or the clang-14 package itself);
# not needed by `make test`. Seeds: a tiny GGUF and safetensors from the tests.
FUZZ_SECONDS ?= 60
# the readers are built with the sanitizers; the rest comes from libdeepc.a
FUZZ_SRC := src/io/gguf.c src/io/safetensors.c src/kernels/ggml_types.c src/model/load_gguf.c src/base/err.c
.PHONY: fuzz
fuzz: $(BUILD)/libdeepc.a $(BUILD)/deepc
	@command -v clang >/dev/null || { echo "make fuzz: clang is missing (apt-get install clang libclang-rt-14-dev)"; exit 1; }
	@mkdir -p $(BUILD)/fuzz/corpus
	clang -g -O1 -march=native -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -Iinclude -Isrc \
	    fuzz/fuzz_readers.c $(FUZZ_SRC) $(BUILD)/libdeepc.a -o $(BUILD)/fuzz/fuzz_readers $(LDLIBS) -lgomp \
	    || { echo "make fuzz: clang could not build a libFuzzer binary (is libclang-rt-14-dev installed?)"; exit 1; }
	@[ -f $(BUILD)/deepc ] && [ ! -f $(BUILD)/fuzz/corpus/seed_gguf ] && \
	    $(BUILD)/deepc init --preset tiny --layers 1 --out $(BUILD)/fuzz/m >/dev/null 2>&1 && \
	    $(BUILD)/deepc convert -m $(BUILD)/fuzz/m --to gguf --type q8_0 -o $(BUILD)/fuzz/m.gguf >/dev/null 2>&1 && \
	    { printf '\000' | cat - $(BUILD)/fuzz/m.gguf | head -c 65536 > $(BUILD)/fuzz/corpus/seed_gguf; \
	      printf '\001' | cat - $(BUILD)/fuzz/m/model.safetensors | head -c 65536 > $(BUILD)/fuzz/corpus/seed_st; } || true
	$(BUILD)/fuzz/fuzz_readers -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=2048 $(BUILD)/fuzz/corpus

# Serving figures (prints, never fails): deepc serve beside llama-server on the
# same GGUF: aggregate tokens/s and time to first token at 1, 2, 4, 8 clients.
#   make bench-serve GGUF=/path/mini-q4_0.gguf
.PHONY: bench-serve
bench-serve: $(BUILD)/deepc
	@GGUF=$(GGUF) DEEPC_BUILD=$(BUILD) bash tests/server/bench.sh
