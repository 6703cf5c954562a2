#include <string.h>

#include "aio/main-loop.h"
#include "tests/qos/qos-local.h"

static uint64_t local_pio_read(void *opaque, uint16_t port, unsigned size)
{
    uint64_t v;

    bql_lock();
    as_read(opaque, AS_PIO, port, size, &v);
    bql_unlock();
    return v;
}

static void local_pio_write(void *opaque, uint16_t port, uint64_t value,
                            unsigned size)
{
    bql_lock();
    as_write(opaque, AS_PIO, port, size, value);
    bql_unlock();
}

static uint64_t local_mmio_read(void *opaque, uint64_t addr, unsigned size)
{
    uint64_t v;

    bql_lock();
    as_read(opaque, AS_MMIO, addr, size, &v);
    bql_unlock();
    return v;
}

static void local_mmio_write(void *opaque, uint64_t addr, uint64_t value,
                             unsigned size)
{
    bql_lock();
    as_write(opaque, AS_MMIO, addr, size, value);
    bql_unlock();
}

/*
 * Ring indexes and flags are 16-bit words that the device thread updates
 * concurrently. memcpy() may move them a byte at a time, and a torn used
 * index (0x07ff -> 0x0800 read as 0x08ff) looks like 255 completions: access
 * aligned 2- and 4-byte words of RAM in one go, as a CPU would.
 */
static void *ram_word(AddressSpace *as, uint64_t addr, size_t len)
{
    if ((len != 2 && len != 4) || (addr & (len - 1))) {
        return NULL;
    }
    return gm_ptr(as->ram, addr, len);
}

static void local_memread(void *opaque, uint64_t addr, void *buf, size_t len)
{
    void *p = ram_word(opaque, addr, len);

    if (p && len == 2) {
        uint16_t v = __atomic_load_n((uint16_t *)p, __ATOMIC_ACQUIRE);
        memcpy(buf, &v, 2);
    } else if (p) {
        uint32_t v = __atomic_load_n((uint32_t *)p, __ATOMIC_ACQUIRE);
        memcpy(buf, &v, 4);
    } else {
        as_rw_bytes(opaque, addr, buf, len, false);
    }
}

static void local_memwrite(void *opaque, uint64_t addr, const void *buf,
                           size_t len)
{
    void *p = ram_word(opaque, addr, len);

    if (p && len == 2) {
        uint16_t v;
        memcpy(&v, buf, 2);
        __atomic_store_n((uint16_t *)p, v, __ATOMIC_RELEASE);
    } else if (p) {
        uint32_t v;
        memcpy(&v, buf, 4);
        __atomic_store_n((uint32_t *)p, v, __ATOMIC_RELEASE);
    } else {
        as_rw_bytes(opaque, addr, (void *)buf, len, true);
    }
}

static const QosOps qos_local_ops = {
    .pio_read = local_pio_read,
    .pio_write = local_pio_write,
    .mmio_read = local_mmio_read,
    .mmio_write = local_mmio_write,
    .memread = local_memread,
    .memwrite = local_memwrite,
};

void qos_local_init(Qos *q, AddressSpace *as)
{
    qos_init(q, &qos_local_ops, as, as->ram->size);
}
