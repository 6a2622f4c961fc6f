# deepc — build with `make`, test with `make test`, install with `make install`.
#
# CFLAGS / LDFLAGS / CPPFLAGS given on the command line (`make CFLAGS=-O3`)
# replace only the optimisation defaults: the flags deepc needs (C11, OpenMP,
# -fPIC for libdeepc.so, include paths) are kept in DC_* variables and always
# used. BUILD= puts every output, test binaries and their scratch files
# included, in another directory (`make asan` uses build-asan).
VERSION := 0.1.0
SOVERSION := 0
CC      ?= gcc
CFLAGS  ?= -O2 -march=native
DC_CFLAGS := -std=c11 -fopenmp -fPIC -Wall -Wextra -D_GNU_SOURCE -Iinclude -Isrc -MMD -MP \
             -DDC_VERSION=\"$(VERSION)\"
DC_LDFLAGS := -fopenmp
LDLIBS  := -lcjson -lpcre2-8 -lopenblas -lm
BUILD   := build
ALL_CFLAGS = $(DC_CFLAGS) $(CPPFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(DC_LDFLAGS) $(CFLAGS) $(LDFLAGS)
# chat's line editing and history: libedit when pkg-config finds it (Debian's
# libedit-dev, installed by scripts/deps.sh), a plain line reader otherwise
HAVE_LIBEDIT := $(shell pkg-config --exists libedit 2>/dev/null && echo 1)
ifeq ($(HAVE_LIBEDIT),1)
EDIT_CFLAGS := -DDC_LIBEDIT $(shell pkg-config --cflags libedit)
EDIT_LIBS := $(shell pkg-config --libs libedit)
endif
# test programs know where the binary and their scratch space are
TEST_CFLAGS = -DDC_BUILD=\"$(BUILD)\"
# make MPI=1: deepc across processes with OpenMPI (src/dist/, -DDC_MPI),
# built with mpicc into build-mpi unless BUILD= says otherwise; the plain
# build compiles src/dist/ for a single rank
ifeq ($(MPI),1)
CC := mpicc
BUILD := build-mpi
DC_CFLAGS += -DDC_MPI
endif

# every object depends on the flags it was built with: a different CFLAGS
# (or BUILD) rebuilds, never links objects of two configurations
FLAGS_STAMP := $(BUILD)/.flags
ifeq ($(filter clean install uninstall,$(MAKECMDGOALS)),)
$(shell mkdir -p $(BUILD) && { echo '$(ALL_CFLAGS) $(TEST_CFLAGS) $(ALL_LDFLAGS) $(EDIT_CFLAGS)' | cmp -s - $(FLAGS_STAMP) || \
        echo '$(ALL_CFLAGS) $(TEST_CFLAGS) $(ALL_LDFLAGS) $(EDIT_CFLAGS)' > $(FLAGS_STAMP); })
endif

LIB_SRC := $(sort $(wildcard src/base/*.c src/kernels/*.c src/io/*.c src/model/*.c \
                             src/tokenizer/*.c src/infer/*.c src/train/*.c src/dist/*.c))
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
all: $(BUILD)/deepc $(BUILD)/libdeepc.a $(BUILD)/libdeepc.so

$(BUILD)/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# AdamW's loop (optim.c) vectorises only where sqrtf cannot set errno
$(BUILD)/src/train/optim.o: DC_CFLAGS += -fno-math-errno

$(BUILD)/libdeepc.a: $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

# the shared library: libdeepc.so.$(VERSION), soname libdeepc.so.$(SOVERSION)
$(BUILD)/libdeepc.so: $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libdeepc.so.$(SOVERSION) $(ALL_LDFLAGS) $^ -o $@.$(VERSION) $(LDLIBS)
	ln -sf libdeepc.so.$(VERSION) $(BUILD)/libdeepc.so.$(SOVERSION)
	ln -sf libdeepc.so.$(VERSION) $@

$(BUILD)/src/cli/cmd_chat.o: ALL_CFLAGS += $(EDIT_CFLAGS)
$(BUILD)/deepc: $(CLI_OBJ) $(SERVE_OBJ) $(BUILD)/libdeepc.a
	$(CC) $(ALL_LDFLAGS) $^ -o $@ $(LDLIBS) $(EDIT_LIBS) $(SERVE_LIBS)

# the web chat is compiled in (.incbin in page.c)
$(BUILD)/src/serve/page.o: src/serve/chat.html

# tests of src/serve/ link its objects
$(BUILD)/tests/test_serve: $(BUILD)/tests/test_serve.o $(BUILD)/tests/harness.o $(SERVE_OBJ) $(BUILD)/libdeepc.a
	$(CC) $(ALL_LDFLAGS) $^ -o $@ $(LDLIBS) $(SERVE_LIBS)

$(BUILD)/tests/%.o: tests/%.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(TEST_CFLAGS) -c $< -o $@

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(BUILD)/tests/harness.o $(BUILD)/libdeepc.a
	$(CC) $(ALL_LDFLAGS) $^ -o $@ $(LDLIBS)

# Gradient checks in double precision: the layer files again, with real = double.
DBL_SRC := src/model/norm.c src/model/rope.c src/model/ffn.c src/model/mla.c src/model/moe.c
DBL_OBJ := $(DBL_SRC:%.c=$(BUILD)/dbl/%.o)
$(BUILD)/dbl/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(TEST_CFLAGS) -DDC_REAL_DOUBLE -c $< -o $@
$(BUILD)/tests/test_grad: $(BUILD)/dbl/tests/test_grad.o $(DBL_OBJ) $(BUILD)/tests/harness.o $(BUILD)/libdeepc.a
	$(CC) $(ALL_LDFLAGS) $^ -o $@ $(LDLIBS)

# Golden numbers: random tiny checkpoints and their logits from the PyTorch
# reference (tests/ref/), with the system's python3 (Debian's python3-torch).
REF := $(BUILD)/ref/cases.txt
$(REF): $(wildcard tests/ref/*.py)
	/usr/bin/python3 tests/ref/gen_cases.py $(BUILD)/ref

REF_TRAIN := $(BUILD)/ref_train/cases.txt
$(REF_TRAIN): $(wildcard tests/ref/*.py)
	/usr/bin/python3 tests/ref/gen_train_cases.py $(BUILD)/ref_train

REF_POST := $(BUILD)/ref_post/cases.txt
$(REF_POST): $(wildcard tests/ref/*.py)
	/usr/bin/python3 tests/ref/gen_post_cases.py $(BUILD)/ref_post

# deepc across processes for the tests (tests/test_dist.sh): this build's
# objects with src/dist/ compiled again by OpenMPI's mpicc with -DDC_MPI
# (only src/dist/ differs between the builds), linked into
# $(BUILD)/mpi/deepc; built when mpicc and mpirun are installed (under
# `make asan` too: tests/test_dist.sh then turns leak checking off for the
# MPI runs and says why); DC_NO_MPI_TEST=1 skips them.
HAVE_MPI := $(shell command -v mpicc >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1 && echo 1)
DIST_SRC := $(sort $(wildcard src/dist/*.c))
MPI_DIST_OBJ := $(DIST_SRC:%.c=$(BUILD)/mpi/%.o)
$(BUILD)/mpi/src/dist/%.o: src/dist/%.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	mpicc $(ALL_CFLAGS) -DDC_MPI -c $< -o $@
$(BUILD)/mpi/deepc: $(CLI_OBJ) $(SERVE_OBJ) $(filter-out $(DIST_SRC:%.c=$(BUILD)/%.o),$(LIB_OBJ)) $(MPI_DIST_OBJ)
	mpicc $(ALL_LDFLAGS) $^ -o $@ $(LDLIBS) $(EDIT_LIBS) $(SERVE_LIBS)
# tests/mpi_ep.c (expert parallelism, run by tests/test_ep.sh) the same way
$(BUILD)/mpi/tests/mpi_ep: $(BUILD)/tests/mpi_ep.o $(BUILD)/tests/harness.o \
                           $(filter-out $(DIST_SRC:%.c=$(BUILD)/%.o),$(LIB_OBJ)) $(MPI_DIST_OBJ)
	@mkdir -p $(dir $@)
	mpicc $(ALL_LDFLAGS) $^ -o $@ $(LDLIBS)
ifeq ($(HAVE_MPI)$(DC_NO_MPI_TEST),1)
MPI_TEST_BIN := $(BUILD)/mpi/deepc
MPI_EP_BIN := $(BUILD)/mpi/tests/mpi_ep
endif

# Every test binary, then the server's tests with real clients (node, the
# openai npm client, Chromium, wrk: tests/server/), then the distributed
# tests (mpirun -np 2: tests/test_dist.sh, tests/test_ep.sh), then the total line
# "N passed, N failed".
test: all $(TESTS) $(REF) $(REF_TRAIN) $(REF_POST) $(MPI_TEST_BIN) $(MPI_EP_BIN)
	@env $(DC_TEST_ENV) DEEPC_BUILD=$(BUILD) DEEPC_MPI_BIN=$(MPI_TEST_BIN) DEEPC_MPI_EP=$(MPI_EP_BIN) \
	    DC_NO_MPI_TEST=$(DC_NO_MPI_TEST) \
	    bash tests/run.sh $(BUILD) $(TESTS) tests/server/test_server.sh tests/test_dist.sh tests/test_ep.sh

# The README's first command: install what is needed, build, run the main job:
# the miniature R1 pipeline (pretrain, SFT, GRPO, held-out accuracy after each).
demo:
	@bash scripts/deps.sh
	@$(MAKE) --no-print-directory all
	@bash scripts/demo.sh

# The pretraining demo: a small model on tiny Shakespeare, the falling loss, text.
.PHONY: demo-shakespeare
demo-shakespeare:
	@bash scripts/deps.sh
	@$(MAKE) --no-print-directory all
	@bash scripts/demo_shakespeare.sh

clean:
	rm -rf $(BUILD)

# ---------------------------------------------------------------- sanitizers
# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer in
# build-asan (leak checking on; any report fails the binary that made it).
# tests/asan.supp lists the leaks of the libraries deepc links (libgomp's
# thread pool), none of deepc's own.
ASAN_FLAGS := -O1 -g -march=native -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
.PHONY: asan
# quarantine_size_mb: ASan holds 256 MB of freed blocks by default, which the
# server's load test would read as the server's memory growing
ASAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1:quarantine_size_mb=16 \
            LSAN_OPTIONS=suppressions=$(CURDIR)/tests/asan.supp:print_suppressions=0 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
asan:
	@$(MAKE) --no-print-directory BUILD=build-asan CFLAGS="$(ASAN_FLAGS)" DC_TEST_ENV="$(ASAN_ENV)" test

# The part CI runs (the whole of `make asan` would add ~4 minutes there): the
# tests of the readers of outside input, the sampler, the loaders' checks and
# the gradient checks, without the PyTorch reference cases.
ASAN_QUICK := test_config test_file test_gguf test_grad test_json test_safetensors test_sampler \
              test_tokenizer_gguf test_weights
.PHONY: asan-quick
asan-quick:
	@$(MAKE) --no-print-directory BUILD=build-asan CFLAGS="$(ASAN_FLAGS)" build-asan/deepc $(ASAN_QUICK:%=build-asan/tests/%)
	@env $(ASAN_ENV) bash tests/run.sh build-asan $(ASAN_QUICK:%=build-asan/tests/%)

# ---------------------------------------------------------------- install
# make install [PREFIX=/usr/local] [DESTDIR=...]: the binary, libdeepc.a,
# libdeepc.so (soname libdeepc.so.$(SOVERSION)), include/deepc.h and a
# pkg-config file; make uninstall removes exactly those.
PREFIX  ?= /usr/local
BINDIR  := $(DESTDIR)$(PREFIX)/bin
LIBDIR  := $(DESTDIR)$(PREFIX)/lib
INCDIR  := $(DESTDIR)$(PREFIX)/include
PCDIR   := $(LIBDIR)/pkgconfig
.PHONY: install uninstall
# deepc.pc is written for this PREFIX at install time
install: all
	install -d $(BINDIR) $(LIBDIR) $(INCDIR) $(PCDIR)
	install -m 755 $(BUILD)/deepc $(BINDIR)/deepc
	install -m 644 $(BUILD)/libdeepc.a $(LIBDIR)/libdeepc.a
	install -m 755 $(BUILD)/libdeepc.so.$(VERSION) $(LIBDIR)/libdeepc.so.$(VERSION)
	ln -sf libdeepc.so.$(VERSION) $(LIBDIR)/libdeepc.so.$(SOVERSION)
	ln -sf libdeepc.so.$(VERSION) $(LIBDIR)/libdeepc.so
	install -m 644 include/deepc.h $(INCDIR)/deepc.h
	printf 'prefix=%s\nexec_prefix=$${prefix}\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: deepc\nDescription: DeepSeek-V3/R1 training and inference in C\nVersion: %s\nLibs: -L$${libdir} -ldeepc\nLibs.private: -fopenmp %s\nCflags: -I$${includedir}\n' \
	    '$(PREFIX)' '$(VERSION)' '$(LDLIBS)' > $(PCDIR)/deepc.pc
	chmod 644 $(PCDIR)/deepc.pc
uninstall:
	rm -f $(BINDIR)/deepc $(LIBDIR)/libdeepc.a $(LIBDIR)/libdeepc.so.$(VERSION) $(LIBDIR)/libdeepc.so.$(SOVERSION) \
	      $(LIBDIR)/libdeepc.so $(INCDIR)/deepc.h $(PCDIR)/deepc.pc

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(SERVE_OBJ:.o=.d) $(TESTS:%=%.d) $(DBL_OBJ:.o=.d) $(MPI_DIST_OBJ:.o=.d) \
         $(BUILD)/dbl/tests/test_grad.d $(BUILD)/tests/mpi_ep.d

# Kernel figures (prints, never fails): the matvec kernels against read bandwidth.
.PHONY: bench-kernels
bench-kernels: $(BUILD)/bench/bench_matvec
$(BUILD)/bench/%: bench/%.c $(BUILD)/libdeepc.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) $^ -o $@ $(LDLIBS)

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

# Data-parallel figures (prints, never fails; needs OpenMPI): step time,
# communication time and bytes per step on 1 process and on 2 ranks.
.PHONY: bench-dist
bench-dist: $(BUILD)/mpi/bench_dist
	@bash bench/bench_dist.sh $(BUILD)/mpi/bench_dist
$(BUILD)/mpi/bench_dist: bench/bench_dist.c $(filter-out $(DIST_SRC:%.c=$(BUILD)/%.o),$(LIB_OBJ)) $(MPI_DIST_OBJ)
	@mkdir -p $(dir $@)
	mpicc $(ALL_CFLAGS) $(ALL_LDFLAGS) $^ -o $@ $(LDLIBS)

# Mixed-precision GEMM figures (prints, never fails): one linear layer's
# forward as f32 sgemm, bf16 / fp8 as training computes them, an AVX2
# bf16-operand kernel, and the promoted fp8 oracle.
.PHONY: bench-prec
bench-prec: $(BUILD)/bench/bench_prec_gemm
	@$(BUILD)/bench/bench_prec_gemm

# Fuzzing: libFuzzer binaries over the readers of outside input, the whole
# library built again with clang, ASan and UBSan (build/fuzz/obj):
#   fuzz_readers    GGUF and safetensors (the first byte picks)
#   fuzz_config     config.json          fuzz_tokenizer  tokenizer.json
#   fuzz_index      the shard index      fuzz_jsonl      prepare's JSONL reader
#   fuzz_session    session files (dc_session_load, then a token through the cache)
# Each runs FUZZ_SECONDS (default 60) with a limit of FUZZ_TIMEOUT seconds per
# input (default 5: a slow input is a finding, as the quadratic GGUF key check
# was) and 2 GB of memory; any finding fails `make fuzz` and is left in
# build/fuzz/ as crash-*, timeout-* or oom-*. Needs clang and its libFuzzer
# runtime (Debian: clang, libclang-rt-14-dev); not needed by `make test`.
FUZZ_SECONDS ?= 60
FUZZ_TIMEOUT ?= 5
FUZZ_CC ?= clang
FUZZ_FLAGS := -g -O1 -march=native -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
              -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -Wno-unknown-pragmas -DDC_VERSION=\"$(VERSION)\"
FUZZ_OBJ := $(LIB_SRC:%.c=$(BUILD)/fuzz/obj/%.o)
FUZZ_JSON := config tokenizer index jsonl
FUZZ_BINS := $(BUILD)/fuzz/fuzz_readers $(BUILD)/fuzz/fuzz_session $(FUZZ_JSON:%=$(BUILD)/fuzz/fuzz_%)
# clang ignores gcc's "#pragma GCC target": the AVX-512 kernels get the flags
# (they only run where cpuid says so)
$(BUILD)/fuzz/obj/src/kernels/matvec_avx512.o: FUZZ_EXTRA := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mfma -mf16c
$(BUILD)/fuzz/obj/src/kernels/gemm_avx512.o: FUZZ_EXTRA := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma
$(BUILD)/fuzz/obj/src/kernels/tile_avx512.o: FUZZ_EXTRA := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma
# UBSan's checks over the fully unrolled AVX2 lane kernels kept clang 14 compiling
# matvec_avx2.c for over 8 minutes (ASan alone: ~30 s); the kernels keep ASan here and
# are UBSan-checked by `make asan` (gcc); matvec_iq4_avx2.c the same (its two variants'
# unrolled tiles: over 5 minutes with UBSan)
$(BUILD)/fuzz/obj/src/kernels/matvec_avx2.o: FUZZ_EXTRA := -fno-sanitize=undefined
$(BUILD)/fuzz/obj/src/kernels/matvec_iq4_avx2.o: FUZZ_EXTRA := -fno-sanitize=undefined
$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@command -v $(FUZZ_CC) >/dev/null || { echo "make fuzz: $(FUZZ_CC) is missing (apt-get install clang libclang-rt-14-dev)"; exit 1; }
	$(FUZZ_CC) $(FUZZ_FLAGS) $(FUZZ_EXTRA) -c $< -o $@
$(BUILD)/fuzz/fuzz_readers: fuzz/fuzz_readers.c $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer $^ -o $@ $(LDLIBS) -lgomp
$(BUILD)/fuzz/fuzz_session: fuzz/fuzz_session.c $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer $^ -o $@ $(LDLIBS) -lgomp
$(BUILD)/fuzz/fuzz_%: fuzz/fuzz_json.c $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -DFUZZ_$* $^ -o $@ $(LDLIBS) -lgomp
.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINS)
fuzz: $(FUZZ_BINS) $(BUILD)/deepc
	@bash fuzz/seeds.sh $(BUILD)
	@bash fuzz/run.sh $(BUILD) $(FUZZ_SECONDS) $(FUZZ_TIMEOUT) readers session $(FUZZ_JSON)

# Serving figures (prints, never fails): deepc serve beside llama-server on the
# same GGUF: aggregate tokens/s and time to first token at 1, 2, 4, 8 clients.
#   make bench-serve GGUF=/path/mini-q4_0.gguf
.PHONY: bench-serve
bench-serve: $(BUILD)/deepc
	@GGUF=$(GGUF) DEEPC_BUILD=$(BUILD) bash tests/server/bench.sh
