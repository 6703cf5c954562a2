/*
 * virtio-pci modern: the registers of the modern BAR. Every access comes
 * from a vCPU thread holding the big lock: common configuration (feature
 * negotiation, device status, queue set-up), the ISR, the device-specific
 * configuration, and the notify region.
 */
#include <string.h>
#include <sys/eventfd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>

#include "devices/virtio-pci-int.h"
#include "util/log.h"

/* ---- Common configuration (big lock) ------------------------------------- */

static bool features_acceptable(VirtioPciDevice *d)
{
    if (!(d->driver_features & (1ull << VIRTIO_F_VERSION_1))) {
        log_guest_error("%s: driver did not accept VERSION_1", d->name);
        return false;
    }
    if (d->driver_features & ~d->host_features) {
        log_guest_error(
            "%s: driver accepted features we do not offer: 0x%llx", d->name,
            (unsigned long long)(d->driver_features & ~d->host_features));
        return false;
    }
    return true;
}

static void status_write(VirtioPciDevice *d, uint8_t val)
{
    uint8_t old = atomic_load(&d->status);

    if (val == 0) {
        virtio_pci_reset(d);
        return;
    }
    /*
     * Features are fixed from FEATURES_OK to reset: queue threads read them
     * without a lock, so the driver cannot take the bit back and renegotiate.
     */
    if (old & VIRTIO_CONFIG_S_FEATURES_OK) {
        val |= VIRTIO_CONFIG_S_FEATURES_OK;
    } else if (val & VIRTIO_CONFIG_S_FEATURES_OK) {
        /* Refusing means not setting the bit; the driver reads it back. */
        if (features_acceptable(d)) {
            d->features = d->driver_features;
        } else {
            val &= ~VIRTIO_CONFIG_S_FEATURES_OK;
        }
    }
    if ((val & VIRTIO_CONFIG_S_DRIVER_OK) &&
        !(val & VIRTIO_CONFIG_S_FEATURES_OK)) {
        log_guest_error("%s: DRIVER_OK without FEATURES_OK", d->name);
        val &= ~VIRTIO_CONFIG_S_DRIVER_OK;
    }
    /* NEEDS_RESET stays until reset, whatever the driver writes. */
    old = atomic_fetch_or(&d->status, 0);
    while (!atomic_compare_exchange_weak(
        &d->status, &old, val | (old & VIRTIO_CONFIG_S_NEEDS_RESET))) {
    }
    if ((val & VIRTIO_CONFIG_S_DRIVER_OK) &&
        !(old & VIRTIO_CONFIG_S_DRIVER_OK)) {
        for (unsigned i = 0; i < d->num_queues; i++) {
            if (d->queues[i].enabled && !d->queues[i].watched) {
                virtio_pci_queue_start(d, &d->queues[i]);
            }
        }
        virtio_pci_call_notify_hook(d);
    }
}

static VirtioPciQueue *selected_queue(VirtioPciDevice *d)
{
    return d->queue_sel < d->num_queues ? &d->queues[d->queue_sel] : NULL;
}

/* The whole structure as the driver would see it, for reads of any size. */
static void common_image(VirtioPciDevice *d, uint8_t img[64])
{
    VirtioPciQueue *q = selected_queue(d);
    uint64_t feat =
        d->dfselect < 2 ? d->host_features >> (32 * d->dfselect) : 0;
    uint64_t drv =
        d->gfselect < 2 ? d->driver_features >> (32 * d->gfselect) : 0;

#define PUT(off, v, n)                                                         \
    do {                                                                       \
        uint64_t v_ = (v);                                                     \
        memcpy(img + (off), &v_, (n));                                         \
    } while (0)
    memset(img, 0, 64);
    PUT(VIRTIO_PCI_COMMON_DFSELECT, d->dfselect, 4);
    PUT(VIRTIO_PCI_COMMON_DF, (uint32_t)feat, 4);
    PUT(VIRTIO_PCI_COMMON_GFSELECT, d->gfselect, 4);
    PUT(VIRTIO_PCI_COMMON_GF, (uint32_t)drv, 4);
    PUT(VIRTIO_PCI_COMMON_MSIX, atomic_load(&d->config_vector), 2);
    PUT(VIRTIO_PCI_COMMON_NUMQ, d->num_queues, 2);
    PUT(VIRTIO_PCI_COMMON_STATUS, atomic_load(&d->status), 1);
    PUT(VIRTIO_PCI_COMMON_CFGGENERATION, 0, 1); /* config never changes */
    PUT(VIRTIO_PCI_COMMON_Q_SELECT, d->queue_sel, 2);
    if (q) {
        PUT(VIRTIO_PCI_COMMON_Q_SIZE, q->size, 2);
        PUT(VIRTIO_PCI_COMMON_Q_MSIX, atomic_load(&q->vector), 2);
        PUT(VIRTIO_PCI_COMMON_Q_ENABLE, q->enabled, 2);
        PUT(VIRTIO_PCI_COMMON_Q_NOFF, q->index, 2);
        PUT(VIRTIO_PCI_COMMON_Q_DESCLO, q->desc, 8);
        PUT(VIRTIO_PCI_COMMON_Q_AVAILLO, q->driver, 8);
        PUT(VIRTIO_PCI_COMMON_Q_USEDLO, q->device, 8);
    }
#undef PUT
}

static uint64_t common_read(VirtioPciDevice *d, uint64_t off, unsigned size)
{
    uint8_t img[64];
    uint64_t v = 0;

    if (off + size > VIRTIO_PCI_COMMON_Q_NDATA) {
        return 0;
    }
    common_image(d, img);
    memcpy(&v, img + off, size);
    return v;
}

static uint16_t vector_checked(VirtioPciDevice *d, uint16_t v)
{
    /* A vector the table does not have reads back as NO_VECTOR. */
    return v < d->pci.msix_entries ? v : VIRTIO_PCI_NO_VECTOR;
}

static void set_half(uint64_t *reg, bool hi, uint64_t v, unsigned size)
{
    if (size == 8) {
        *reg = v;
    } else if (hi) {
        *reg = (*reg & 0xffffffffull) | (uint64_t)(uint32_t)v << 32;
    } else {
        *reg = (*reg & ~0xffffffffull) | (uint32_t)v;
    }
}

static void queue_reg_write(VirtioPciDevice *d, uint64_t off, uint64_t v,
                            unsigned size)
{
    VirtioPciQueue *q = selected_queue(d);
    bool hi = (off & 4) != 0;

    if (!q) {
        log_guest_error("%s: write to queue register 0x%llx of queue %u, "
                        "which does not exist",
                        d->name, (unsigned long long)off, d->queue_sel);
        return;
    }
    if (off == VIRTIO_PCI_COMMON_Q_MSIX) {
        atomic_store(&q->vector, vector_checked(d, v));
        return;
    }
    /* The owning thread reads these once enabled: they are frozen. */
    if (q->enabled) {
        log_guest_error("%s: queue %u register 0x%llx written while enabled",
                        d->name, q->index, (unsigned long long)off);
        return;
    }
    switch (off) {
    case VIRTIO_PCI_COMMON_Q_SIZE:
        if (v == 0 || v > q->max_size || (v & (v - 1))) {
            log_guest_error("%s: queue %u: bad size %llu", d->name, q->index,
                            (unsigned long long)v);
            return;
        }
        q->size = v;
        return;
    case VIRTIO_PCI_COMMON_Q_ENABLE:
        if (v != 1) {
            log_guest_error("%s: queue %u: queue_enable written with %llu",
                            d->name, q->index, (unsigned long long)v);
            return;
        }
        q->enabled = true;
        if (atomic_load(&d->status) & VIRTIO_CONFIG_S_DRIVER_OK) {
            virtio_pci_queue_start(d, q);
            virtio_pci_call_notify_hook(d);
        }
        return;
    case VIRTIO_PCI_COMMON_Q_DESCLO:
    case VIRTIO_PCI_COMMON_Q_DESCHI:
        set_half(&q->desc, hi, v, size);
        return;
    case VIRTIO_PCI_COMMON_Q_AVAILLO:
    case VIRTIO_PCI_COMMON_Q_AVAILHI:
        set_half(&q->driver, hi, v, size);
        return;
    case VIRTIO_PCI_COMMON_Q_USEDLO:
    case VIRTIO_PCI_COMMON_Q_USEDHI:
        set_half(&q->device, hi, v, size);
        return;
    }
}

static void common_write(VirtioPciDevice *d, uint64_t off, uint64_t v,
                         unsigned size)
{
    bool feat_ok = atomic_load(&d->status) & VIRTIO_CONFIG_S_FEATURES_OK;

    switch (off) {
    case VIRTIO_PCI_COMMON_DFSELECT:
        d->dfselect = v;
        return;
    case VIRTIO_PCI_COMMON_GFSELECT:
        d->gfselect = v;
        return;
    case VIRTIO_PCI_COMMON_GF:
        if (feat_ok || d->gfselect >= 2) {
            log_guest_error("%s: driver features written after FEATURES_OK "
                            "or with select %u",
                            d->name, d->gfselect);
            return;
        }
        set_half(&d->driver_features, d->gfselect, v, 4);
        return;
    case VIRTIO_PCI_COMMON_MSIX:
        atomic_store(&d->config_vector, vector_checked(d, v));
        return;
    case VIRTIO_PCI_COMMON_STATUS:
        status_write(d, v);
        return;
    case VIRTIO_PCI_COMMON_Q_SELECT:
        d->queue_sel = v;
        return;
    case VIRTIO_PCI_COMMON_Q_SIZE:
    case VIRTIO_PCI_COMMON_Q_MSIX:
    case VIRTIO_PCI_COMMON_Q_ENABLE:
    case VIRTIO_PCI_COMMON_Q_DESCLO:
    case VIRTIO_PCI_COMMON_Q_DESCHI:
    case VIRTIO_PCI_COMMON_Q_AVAILLO:
    case VIRTIO_PCI_COMMON_Q_AVAILHI:
    case VIRTIO_PCI_COMMON_Q_USEDLO:
    case VIRTIO_PCI_COMMON_Q_USEDHI:
        if (size == 8 && (off & 4)) {
            break;
        }
        queue_reg_write(d, off, v, size);
        return;
    }
    log_guest_error("%s: write of %u bytes to read-only or unknown common "
                    "config offset 0x%llx",
                    d->name, size, (unsigned long long)off);
}

/* ---- The modern BAR ------------------------------------------------------ */

static uint64_t modern_read(void *opaque, uint64_t addr, unsigned size)
{
    VirtioPciDevice *d = opaque;
    uint64_t off = addr & (VIRTIO_PCI_REGION_SIZE - 1), v = 0;

    switch (addr & ~(uint64_t)(VIRTIO_PCI_REGION_SIZE - 1)) {
    case VIRTIO_PCI_COMMON_OFFSET:
        return common_read(d, off, size);
    case VIRTIO_PCI_ISR_OFFSET:
        if (off != 0) {
            return 0;
        }
        /* Reading acknowledges: the bits clear and INTx drops. */
        v = atomic_exchange(&d->isr, 0);
        pci_set_intx(&d->pci, 0);
        return v;
    case VIRTIO_PCI_DEVICE_OFFSET:
        if (off + size <= d->config_size) {
            memcpy(&v, d->config + off, size);
        }
        return v;
    }
    return 0;
}

static void notify_write(VirtioPciDevice *d, uint64_t off)
{
    unsigned index = off / VIRTIO_PCI_NOTIFY_MULT;

    if (index >= d->num_queues) {
        log_guest_error("%s: notify of queue %u, which does not exist", d->name,
                        index);
        return;
    }
    /*
     * Only reached without a KVM ioeventfd (qtest, in-process tests): the
     * MMIO write does exactly what the ioeventfd would, so the rest of the
     * path is the same. The owning context wakes up, not the main loop.
     */
    (void)eventfd_write(d->queues[index].notify_fd, 1);
}

static void modern_write(void *opaque, uint64_t addr, uint64_t v, unsigned size)
{
    VirtioPciDevice *d = opaque;
    uint64_t off = addr & (VIRTIO_PCI_REGION_SIZE - 1);

    switch (addr & ~(uint64_t)(VIRTIO_PCI_REGION_SIZE - 1)) {
    case VIRTIO_PCI_COMMON_OFFSET:
        common_write(d, off, v, size);
        return;
    case VIRTIO_PCI_NOTIFY_OFFSET:
        notify_write(d, off);
        return;
    }
    log_guest_error("%s: write to read-only register 0x%llx", d->name,
                    (unsigned long long)addr);
}

const RegionOps virtio_pci_modern_ops = {
    .read = modern_read,
    .write = modern_write,
};
