/*
 * Guest RAM as the devices see it.
 *
 * Every guest-physical address a device follows (a command list, a PRDT, a
 * virtqueue descriptor) comes from the guest, which may lie. Devices reach RAM
 * only through these accessors: a range that is not entirely inside RAM is
 * refused (-EFAULT / NULL), never truncated, never wrapped.
 */
#ifndef MINIVMM_DEVICES_MEMORY_H
#define MINIVMM_DEVICES_MEMORY_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* RAM is one region starting at guest-physical address 0. */
typedef struct GuestMemory {
    uint8_t *host;
    uint64_t size;
} GuestMemory;

/* True if [gpa, gpa + len) lies inside RAM (overflow-safe). */
static inline bool gm_range_ok(const GuestMemory *gm, uint64_t gpa,
                               uint64_t len)
{
    return gpa <= gm->size && len <= gm->size - gpa;
}

/*
 * Host address of [gpa, gpa + len), or NULL if the range is not RAM. The
 * pointer stays valid for the life of the machine (RAM is never moved).
 */
static inline void *gm_ptr(const GuestMemory *gm, uint64_t gpa, uint64_t len)
{
    return gm_range_ok(gm, gpa, len) ? gm->host + gpa : NULL;
}

static inline int gm_read(const GuestMemory *gm, uint64_t gpa, void *buf,
                          uint64_t len)
{
    const void *p = gm_ptr(gm, gpa, len);

    if (!p) {
        return -EFAULT;
    }
    memcpy(buf, p, len);
    return 0;
}

static inline int gm_write(const GuestMemory *gm, uint64_t gpa, const void *buf,
                           uint64_t len)
{
    void *p = gm_ptr(gm, gpa, len);

    if (!p) {
        return -EFAULT;
    }
    memcpy(p, buf, len);
    return 0;
}

/* Little-endian loads and stores (x86 guests; the host is x86 too). */
#define GM_LDST(bits)                                                          \
    static inline int gm_ld##bits(const GuestMemory *gm, uint64_t gpa,         \
                                  uint##bits##_t *val)                         \
    {                                                                          \
        return gm_read(gm, gpa, val, sizeof(*val));                            \
    }                                                                          \
    static inline int gm_st##bits(const GuestMemory *gm, uint64_t gpa,         \
                                  uint##bits##_t val)                          \
    {                                                                          \
        return gm_write(gm, gpa, &val, sizeof(val));                           \
    }
GM_LDST(16)
GM_LDST(32)
GM_LDST(64)
#undef GM_LDST

/* Allocate zeroed RAM (mmap, so large sizes cost nothing until touched). */
int gm_init(GuestMemory *gm, uint64_t size);
void gm_cleanup(GuestMemory *gm);

#endif
