/*
 * qos: guest-side drivers for tests, written once, run over any transport.
 *
 * A test drives a machine the way a guest would: port I/O, MMIO, and guest
 * RAM that devices DMA into. QosOps is that interface. Two transports
 * implement it:
 *   - qos-local.c: in-process, on a machine built by the test; each access
 *     takes the big lock like a vCPU exit (no socket, fastest);
 *   - tests/qtest/libqtest.c: QEMU's qtest protocol over a unix socket, to
 *     minivmm --accel qtest or to QEMU itself.
 * The drivers (pci.c, ahci.c, virtio-blk.c) use only this header, so the
 * same driver checks our devices and QEMU's.
 */
#ifndef MINIVMM_TESTS_QOS_QOS_H
#define MINIVMM_TESTS_QOS_QOS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct QosOps {
    uint64_t (*pio_read)(void *opaque, uint16_t port, unsigned size);
    void (*pio_write)(void *opaque, uint16_t port, uint64_t value,
                      unsigned size);
    uint64_t (*mmio_read)(void *opaque, uint64_t addr, unsigned size);
    void (*mmio_write)(void *opaque, uint64_t addr, uint64_t value,
                       unsigned size);
    void (*memread)(void *opaque, uint64_t addr, void *buf, size_t len);
    void (*memwrite)(void *opaque, uint64_t addr, const void *buf, size_t len);
} QosOps;

typedef struct Qos {
    const QosOps *ops;
    void *opaque;
    uint64_t ram_size;
    /* A bump allocator for guest RAM (descriptor tables, buffers). */
    uint64_t alloc_start;
    uint64_t alloc_next;
    /* Where BARs are placed by qpci_map_bar() (MMIO window below 4 GiB). */
    uint64_t mmio_next;
    uint16_t pio_next;
} Qos;

/* Set up the allocator and BAR windows for a machine with @ram_size RAM. */
void qos_init(Qos *q, const QosOps *ops, void *opaque, uint64_t ram_size);

static inline uint8_t qos_inb(Qos *q, uint16_t port)
{
    return q->ops->pio_read(q->opaque, port, 1);
}
static inline uint16_t qos_inw(Qos *q, uint16_t port)
{
    return q->ops->pio_read(q->opaque, port, 2);
}
static inline uint32_t qos_inl(Qos *q, uint16_t port)
{
    return q->ops->pio_read(q->opaque, port, 4);
}
static inline void qos_outb(Qos *q, uint16_t port, uint8_t v)
{
    q->ops->pio_write(q->opaque, port, v, 1);
}
static inline void qos_outw(Qos *q, uint16_t port, uint16_t v)
{
    q->ops->pio_write(q->opaque, port, v, 2);
}
static inline void qos_outl(Qos *q, uint16_t port, uint32_t v)
{
    q->ops->pio_write(q->opaque, port, v, 4);
}
static inline uint8_t qos_readb(Qos *q, uint64_t addr)
{
    return q->ops->mmio_read(q->opaque, addr, 1);
}
static inline uint16_t qos_readw(Qos *q, uint64_t addr)
{
    return q->ops->mmio_read(q->opaque, addr, 2);
}
static inline uint32_t qos_readl(Qos *q, uint64_t addr)
{
    return q->ops->mmio_read(q->opaque, addr, 4);
}
static inline uint64_t qos_readq(Qos *q, uint64_t addr)
{
    return q->ops->mmio_read(q->opaque, addr, 8);
}
static inline void qos_writeb(Qos *q, uint64_t addr, uint8_t v)
{
    q->ops->mmio_write(q->opaque, addr, v, 1);
}
static inline void qos_writew(Qos *q, uint64_t addr, uint16_t v)
{
    q->ops->mmio_write(q->opaque, addr, v, 2);
}
static inline void qos_writel(Qos *q, uint64_t addr, uint32_t v)
{
    q->ops->mmio_write(q->opaque, addr, v, 4);
}
static inline void qos_writeq(Qos *q, uint64_t addr, uint64_t v)
{
    q->ops->mmio_write(q->opaque, addr, v, 8);
}
static inline void qos_memread(Qos *q, uint64_t addr, void *buf, size_t len)
{
    q->ops->memread(q->opaque, addr, buf, len);
}
static inline void qos_memwrite(Qos *q, uint64_t addr, const void *buf,
                                size_t len)
{
    q->ops->memwrite(q->opaque, addr, buf, len);
}

/* Guest RAM for the driver's structures; aborts when exhausted. */
uint64_t qos_alloc(Qos *q, uint64_t size, uint64_t align);
/* Forget every allocation (between tests on one machine). */
void qos_alloc_reset(Qos *q);

/* Wait (polling) until cond(opaque) holds, up to @timeout_ms; true if met. */
bool qos_wait(bool (*cond)(void *opaque), void *opaque, int timeout_ms);

#endif
