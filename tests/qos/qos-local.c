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

static void local_memread(void *opaque, uint64_t addr, void *buf, size_t len)
{
    as_rw_bytes(opaque, addr, buf, len, false);
}

static void local_memwrite(void *opaque, uint64_t addr, const void *buf,
                           size_t len)
{
    as_rw_bytes(opaque, addr, (void *)buf, len, true);
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
