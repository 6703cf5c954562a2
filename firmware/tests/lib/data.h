/*
 * Test data: guest/pattern.h's pattern (every 8-byte word names its disk
 * offset), optionally XORed with a per-run salt so that a write test cannot
 * pass by reading back what an earlier run left on the disk. Salt 0 is the
 * plain pattern that `iotest --fill` writes.
 */
#ifndef FWTEST_DATA_H
#define FWTEST_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "guest/pattern.h"

static inline void data_fill(void *buf, uint64_t off, size_t len, uint64_t salt)
{
    uint64_t *w = buf;

    pattern_fill(buf, off, len);
    for (size_t i = 0; salt && i < len / 8; i++) {
        w[i] ^= salt;
    }
}

/* The disk offset of the first bad word, or UINT64_MAX if all match. */
static inline uint64_t data_check(const void *buf, uint64_t off, size_t len,
                                  uint64_t salt)
{
    const uint64_t *w = buf;

    if (!salt) {
        return pattern_check(buf, off, len);
    }
    for (size_t s = 0; s < len; s += PATTERN_SECTOR) {
        for (unsigned i = 0; i < PATTERN_WORDS; i++) {
            if ((w[(s / 8) + i] ^ salt) != pattern_word(off + s, i)) {
                return off + s + i * 8;
            }
        }
    }
    return UINT64_MAX;
}

#endif
