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
# test programs know where the binary and their scratch space are
TEST_CFLAGS = -DDC_BUILD=\"$(BUILD)\"

# every object depends on the flags it was built with: a different CFLAGS
# (or BUILD) rebuilds, never links objects of two configurations
FLAGS_STAMP := $(BUILD)/.flags
ifeq ($(filter clean,$(MAKECMDGOALS)),)
$(shell mkdir -p $(BUILD) && { echo '$(ALL_CFLAGS) $(TEST_CFLAGS) $(ALL_LDFLAGS)' | cmp -s - $(FLAGS_STAMP) || \
        echo '$(ALL_CFLAGS) $(TEST_CFLAGS) $(ALL_LDFLAGS)' > $(FLAGS_STAMP); })
endif

LIB_SRC := $(sort $(wildcard src/base/*.c src/kernels/*.c src/io/*.c src/model/*.c \
                             src/tokenizer/*.c src/infer/*.c src/train/*.c))
CLI_SRC := $(sort $(wildcard src/cli/*.c))
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

$(BUILD)/libdeepc.a: $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

# the shared library: libdeepc.so.$(VERSION), soname libdeepc.so.$(SOVERSION)
$(BUILD)/libdeepc.so: $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libdeepc.so.$(SOVERSION) $(ALL_LDFLAGS) $^ -o $@.$(VERSION) $(LDLIBS)
	ln -sf libdeepc.so.$(VERSION) $(BUILD)/libdeepc.so.$(SOVERSION)
	ln -sf libdeepc.so.$(VERSION) $@

$(BUILD)/deepc: $(CLI_OBJ) $(BUILD)/libdeepc.a
	$(CC) $(ALL_LDFLAGS) $^ -o $@ $(LDLIBS)

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

# Every test binary, then the total line "N passed, N failed".
test: all $(TESTS) $(REF) $(REF_TRAIN) $(REF_POST)
	@env $(DC_TEST_ENV) bash tests/run.sh $(BUILD) $(TESTS)

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
asan:
	@$(MAKE) --no-print-directory BUILD=build-asan CFLAGS="$(ASAN_FLAGS)" \
	    DC_TEST_ENV="ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/asan.supp:print_suppressions=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1" test

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
$(BUILD)/deepc.pc: Makefile
	@mkdir -p $(dir $@)
	printf 'prefix=%s\nexec_prefix=$${prefix}\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: deepc\nDescription: DeepSeek-V3/R1 training and inference in C\nVersion: %s\nLibs: -L$${libdir} -ldeepc\nLibs.private: -fopenmp %s\nCflags: -I$${includedir}\n' \
	    '$(PREFIX)' '$(VERSION)' '$(LDLIBS)' > $@
install: all $(BUILD)/deepc.pc
	install -d $(BINDIR) $(LIBDIR) $(INCDIR) $(PCDIR)
	install -m 755 $(BUILD)/deepc $(BINDIR)/deepc
	install -m 644 $(BUILD)/libdeepc.a $(LIBDIR)/libdeepc.a
	install -m 755 $(BUILD)/libdeepc.so.$(VERSION) $(LIBDIR)/libdeepc.so.$(VERSION)
	ln -sf libdeepc.so.$(VERSION) $(LIBDIR)/libdeepc.so.$(SOVERSION)
	ln -sf libdeepc.so.$(VERSION) $(LIBDIR)/libdeepc.so
	install -m 644 include/deepc.h $(INCDIR)/deepc.h
	install -m 644 $(BUILD)/deepc.pc $(PCDIR)/deepc.pc
uninstall:
	rm -f $(BINDIR)/deepc $(LIBDIR)/libdeepc.a $(LIBDIR)/libdeepc.so.$(VERSION) $(LIBDIR)/libdeepc.so.$(SOVERSION) \
	      $(LIBDIR)/libdeepc.so $(INCDIR)/deepc.h $(PCDIR)/deepc.pc

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TESTS:%=%.d) $(DBL_OBJ:.o=.d)

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
