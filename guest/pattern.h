/*
 * The disk pattern iotest writes (--fill) and verifies (--check): each
 * 512-byte sector at byte offset @off holds 64 little-endian u64 words,
 * word i = off ^ (i * 0x9E3779B97F4A7C15). Cheap to make, and every word
 * says where it belongs, so a read served from the wrong sector, a torn
 * request or a misplaced PRDT entry shows up as a mismatch at a known place.
 */
#ifndef MINIVMM_GUEST_PATTERN_H
#define MINIVMM_GUEST_PATTERN_H

#include <endian.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PATTERN_SECTOR 512u
#define PATTERN_WORDS  (PATTERN_SECTOR / 8)
#define PATTERN_MUL    0x9E3779B97F4A7C15ULL

/* Word @i of the sector at byte offset @sector_off (a multiple of 512). */
static inline uint64_t pattern_word(uint64_t sector_off, unsigned i)
{
    return sector_off ^ ((uint64_t)i * PATTERN_MUL);
}

/* Fill @len bytes (a multiple of 512) meant for disk offset @off. */
static inline void pattern_fill(void *buf, uint64_t off, size_t len)
{
    uint8_t *p = buf;

    for (size_t s = 0; s < len; s += PATTERN_SECTOR) {
        for (unsigned i = 0; i < PATTERN_WORDS; i++) {
            uint64_t w = htole64(pattern_word(off + s, i));

            memcpy(p + s + i * 8, &w, 8);
        }
    }
}

/*
 * Check @len bytes (a multiple of 512) read from disk offset @off.
 * Returns the disk offset of the first bad word, or UINT64_MAX if all match.
 */
static inline uint64_t pattern_check(const void *buf, uint64_t off, size_t len)
{
    const uint8_t *p = buf;

    for (size_t s = 0; s < len; s += PATTERN_SECTOR) {
        for (unsigned i = 0; i < PATTERN_WORDS; i++) {
            uint64_t w;

            memcpy(&w, p + s + i * 8, 8);
            if (le64toh(w) != pattern_word(off + s, i)) {
                return off + s + i * 8;
            }
        }
    }
    return UINT64_MAX;
}

#endif
