# libFuzzer targets (tests/fuzz/fuzz-*.c) under ASan + UBSan, built with
# clang into their own directory: the library is compiled again with
# -fsanitize=fuzzer-no-link so that the fuzzer sees its coverage.
#
#   make fuzz                  build build-fuzz/fuzz-* (needs clang and
#                              libclang-rt-14-dev: make deps)
#   make fuzz-smoke            each target for FUZZ_SECONDS (default 12) from
#                              its seed corpus; fails on any crash, leak or
#                              sanitizer report; one summary line per target
#   make fuzz-run TARGET=ahci  one target until stopped (FUZZ_ARGS=...),
#                              new inputs kept in build-fuzz/corpus/ahci
#
# Seeds are in tests/fuzz/corpus/<target>/; tests/fuzz/gen-seeds.py writes
# the hand-made ones.

FUZZ_CC      ?= clang
FUZZ_BUILD   := build-fuzz
FUZZ_SANS    := -fsanitize=address,undefined -fno-sanitize-recover=all \
                -fno-omit-frame-pointer
# struct io_uring_cqe ends in a flexible array (big_cqe[]), which clang
# warns about wherever a CQE is embedded; gcc accepts it silently.
FUZZ_CFLAGS  := -std=gnu11 -O1 -g -Wall -Wextra -Werror -D_GNU_SOURCE -I. \
                -Wno-gnu-variable-sized-type-not-at-end \
                $(FUZZ_SANS) -fsanitize=fuzzer-no-link -MMD -MP
FUZZ_LDFLAGS := $(FUZZ_SANS) -fsanitize=fuzzer
FUZZ_TARGETS := ahci virtio-blk qtest loader options
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz-%)
FUZZ_LIB     := $(FUZZ_BUILD)/libminivmm.a
FUZZ_COMMON  := $(FUZZ_BUILD)/tests/fuzz/fuzz-machine.o
FUZZ_SECONDS ?= 12

.PHONY: fuzz fuzz-smoke fuzz-run clean-fuzz

fuzz: $(FUZZ_BINS)

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_LIB): $(LIB_SRCS:%.c=$(FUZZ_BUILD)/%.o)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz-%: $(FUZZ_BUILD)/tests/fuzz/fuzz-%.o $(FUZZ_COMMON) \
                      $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_LDFLAGS) -o $@ $^ $(LDLIBS)

fuzz-smoke: $(FUZZ_BINS)
	@FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) \
	    tests/fuzz/smoke.sh $(FUZZ_TARGETS)

fuzz-run: $(FUZZ_BUILD)/fuzz-$(TARGET)
	@mkdir -p $(FUZZ_BUILD)/corpus/$(TARGET) $(FUZZ_BUILD)/artifacts
	$(FUZZ_BUILD)/fuzz-$(TARGET) -artifact_prefix=$(FUZZ_BUILD)/artifacts/ \
	    $(FUZZ_ARGS) $(FUZZ_BUILD)/corpus/$(TARGET) tests/fuzz/corpus/$(TARGET)

clean: clean-fuzz
clean-fuzz:
	rm -rf $(FUZZ_BUILD)

-include $(shell find $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
