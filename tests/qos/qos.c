#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tests/qos/qos.h"
#include "util/clock.h"

/* Driver structures go above the first MiB, clear of legacy areas. */
#define QOS_ALLOC_START 0x100000

void qos_init(Qos *q, const QosOps *ops, void *opaque, uint64_t ram_size)
{
    q->ops = ops;
    q->opaque = opaque;
    q->ram_size = ram_size;
    q->alloc_start = QOS_ALLOC_START;
    q->alloc_next = QOS_ALLOC_START;
    /* The bottom of both machines' PCI hole; minivmm's ECAM is at 0xE0000000.
     */
    q->mmio_next = 0xc0000000;
    q->pio_next = 0xc000;
}

uint64_t qos_alloc(Qos *q, uint64_t size, uint64_t align)
{
    uint64_t addr = (q->alloc_next + align - 1) & ~(align - 1);

    if (addr + size > q->ram_size) {
        fprintf(stderr, "qos_alloc: guest RAM exhausted\n");
        abort();
    }
    q->alloc_next = addr + size;
    return addr;
}

void qos_alloc_reset(Qos *q)
{
    q->alloc_next = q->alloc_start;
}

bool qos_wait(bool (*cond)(void *opaque), void *opaque, int timeout_ms)
{
    int64_t deadline = clock_ns() + timeout_ms * NS_PER_MS;

    while (!cond(opaque)) {
        if (clock_ns() > deadline) {
            return false;
        }
        usleep(50);
    }
    return true;
}
