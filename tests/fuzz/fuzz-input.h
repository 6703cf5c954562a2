/*
 * Reading a fuzz input as a script: little-endian fields taken from the
 * front, zeros once it runs out. Running out is not an error: the fuzzer
 * shortens inputs all the time, and a truncated last step should still do
 * something, never read past the end.
 */
#ifndef MINIVMM_TESTS_FUZZ_FUZZ_INPUT_H
#define MINIVMM_TESTS_FUZZ_FUZZ_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct FuzzInput {
    const uint8_t *p;
    size_t left;
} FuzzInput;

static inline bool fuzz_more(const FuzzInput *in)
{
    return in->left > 0;
}

/* The next @bytes (at most 8) as a little-endian number. */
static inline uint64_t fuzz_take(FuzzInput *in, unsigned bytes)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < bytes && in->left; i++, in->left--) {
        v |= (uint64_t)*in->p++ << (8 * i);
    }
    return v;
}

/* Up to @want bytes of raw data: a pointer into the input, length in *len. */
static inline const uint8_t *fuzz_take_bytes(FuzzInput *in, size_t want,
                                             size_t *len)
{
    const uint8_t *p = in->p;

    *len = want < in->left ? want : in->left;
    in->p += *len;
    in->left -= *len;
    return p;
}

/* An access size of 1, 2, 4 or 8 bytes from two bits of @b. */
static inline unsigned fuzz_size(uint8_t b)
{
    return 1u << (b & 3);
}

#endif
