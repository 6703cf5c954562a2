#include <errno.h>
#include <sys/mman.h>

#include "devices/memory.h"

int gm_init(GuestMemory *gm, uint64_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

    if (p == MAP_FAILED) {
        return -errno;
    }
    gm->host = p;
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
