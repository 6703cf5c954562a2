#include <errno.h>
#include <sys/mman.h>

#include "devices/memory.h"

/*
 * Guest RAM starts on a 2 MiB boundary of our address space. KVM maps a
 * guest page with a 2 MiB page of its own (one TLB entry, a shorter nested
 * page walk) only where the guest-physical and the host-virtual address
 * agree modulo 2 MiB and the host backs it with a transparent huge page;
 * mmap() alone gives a 4 KiB-aligned address, so almost never. QEMU aligns
 * its RAM blocks the same way and asks for huge pages as we do.
 */
#define GM_HUGE_ALIGN (2ULL << 20)

int gm_init(GuestMemory *gm, uint64_t size)
{
    uint64_t len = size + GM_HUGE_ALIGN;
    uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    uint64_t keep = (size + 4095) & ~4095ULL; /* munmap() wants pages */
    uint8_t *start;
    uint64_t head;

    if (p == MAP_FAILED) {
        return -errno;
    }
    /* Keep [start, start + size) and give back the slack on either side. */
    head = -(uintptr_t)p & (GM_HUGE_ALIGN - 1);
    start = p + head;
    if (head) {
        munmap(p, head);
    }
    munmap(start + keep, GM_HUGE_ALIGN - head);
    /* Only advice: with THP off (or "never"), 4 KiB pages work as well. */
    (void)madvise(start, size, MADV_HUGEPAGE);
    gm->host = start;
    gm->size = size;
    return 0;
}

void gm_cleanup(GuestMemory *gm)
{
    if (gm->host) {
        munmap(gm->host, gm->size);
        gm->host = NULL;
        gm->size = 0;
    }
}
