#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "devices/pci-regs.h"
#include "tests/qos/virtio.h"

/* The vector control word of an MSI-X table entry. */
#define MSIX_ENTRY_VECTOR_CTRL 12

/* ---- Finding the device -------------------------------------------------- */

static uint64_t bar_gpa(QVirtioDevice *d, uint8_t bar)
{
    if (bar >= 6) {
        return 0;
    }
    if (!d->bar_addr[bar]) {
        d->bar_addr[bar] = qpci_map_bar(&d->pci, bar, NULL);
    }
    return d->bar_addr[bar];
}

/*
 * The PCI ID a transitional device (legacy and modern interfaces) has for
 * virtio type @type, or 0. QEMU's virtio-blk-pci is one unless told
 * disable-legacy=on; its modern interface is the same as a modern device's.
 */
static uint16_t transitional_id(uint16_t type)
{
    switch (type) {
    case 1: /* net */
        return 0x1000;
    case 2: /* block */
        return 0x1001;
    case 8: /* scsi */
        return 0x1004;
    default:
        return 0;
    }
}

bool qvirtio_pci_find(Qos *q, uint16_t type, int index, QVirtioDevice *d)
{
    uint16_t legacy = transitional_id(type);
    uint8_t cap = 0;

    memset(d, 0, sizeof(*d));
    if (!qpci_find(q, QVIRTIO_VENDOR_ID, QVIRTIO_DEVICE_BASE + type, index,
                   &d->pci)) {
        if (!legacy ||
            !qpci_find(q, QVIRTIO_VENDOR_ID, legacy, index, &d->pci)) {
            return false;
        }
        /* Placed, unused: decoding is about to be enabled for all BARs. */
        bar_gpa(d, 0);
    }
    /* The first capability of each type wins, as the spec suggests. */
    while ((cap = qpci_find_capability(&d->pci, PCI_CAP_ID_VENDOR, cap))) {
        uint8_t cfg =
            qpci_config_read(&d->pci, cap + VIRTIO_PCI_CAP_CFG_TYPE, 1);
        uint8_t bar = qpci_config_read(&d->pci, cap + VIRTIO_PCI_CAP_BAR, 1);
        uint32_t off =
            qpci_config_read(&d->pci, cap + VIRTIO_PCI_CAP_OFFSET, 4);
        uint64_t *slot = NULL;

        switch (cfg) {
        case VIRTIO_PCI_CAP_COMMON_CFG:
            slot = &d->common;
            break;
        case VIRTIO_PCI_CAP_NOTIFY_CFG:
            slot = &d->notify;
            break;
        case VIRTIO_PCI_CAP_ISR_CFG:
            slot = &d->isr;
            break;
        case VIRTIO_PCI_CAP_DEVICE_CFG:
            slot = &d->device;
            break;
        }
        if (!slot || *slot) {
            continue;
        }
        *slot = bar_gpa(d, bar) + off;
        if (cfg == VIRTIO_PCI_CAP_NOTIFY_CFG) {
            d->notify_mult =
                qpci_config_read(&d->pci, cap + VIRTIO_PCI_NOTIFY_CAP_MULT, 4);
        }
    }
    d->msix_cap = qpci_find_capability(&d->pci, PCI_CAP_ID_MSIX, 0);
    if (d->msix_cap) {
        uint32_t table =
            qpci_config_read(&d->pci, d->msix_cap + PCI_MSIX_TABLE, 4);

        d->msix_entries =
            (qpci_config_read(&d->pci, d->msix_cap + PCI_MSIX_FLAGS, 2) &
             PCI_MSIX_FLAGS_QSIZE) +
            1;
        d->msix_table = bar_gpa(d, table & 7) + (table & ~7u);
    }
    qpci_enable(&d->pci);
    return d->common && d->notify && d->isr && d->device;
}

/* ---- Status and features ------------------------------------------------- */

uint32_t qvirtio_common_read(QVirtioDevice *d, uint32_t off, unsigned size)
{
    return d->pci.q->ops->mmio_read(d->pci.q->opaque, d->common + off, size);
}

void qvirtio_common_write(QVirtioDevice *d, uint32_t off, uint32_t v,
                          unsigned size)
{
    d->pci.q->ops->mmio_write(d->pci.q->opaque, d->common + off, v, size);
}

uint8_t qvirtio_get_status(QVirtioDevice *d)
{
    return qvirtio_common_read(d, VIRTIO_PCI_COMMON_STATUS, 1);
}

void qvirtio_set_status(QVirtioDevice *d, uint8_t status)
{
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_STATUS, status, 1);
}

static bool status_is_zero(void *opaque)
{
    return qvirtio_get_status(opaque) == 0;
}

bool qvirtio_reset(QVirtioDevice *d)
{
    qvirtio_set_status(d, 0);
    d->features = 0;
    return qos_wait(status_is_zero, d, 5000);
}

uint64_t qvirtio_device_features(QVirtioDevice *d)
{
    uint64_t f;

    qvirtio_common_write(d, VIRTIO_PCI_COMMON_DFSELECT, 0, 4);
    f = qvirtio_common_read(d, VIRTIO_PCI_COMMON_DF, 4);
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_DFSELECT, 1, 4);
    f |= (uint64_t)qvirtio_common_read(d, VIRTIO_PCI_COMMON_DF, 4) << 32;
    return f;
}

bool qvirtio_negotiate_raw(QVirtioDevice *d, uint64_t features)
{
    qvirtio_set_status(d, VIRTIO_CONFIG_S_ACKNOWLEDGE);
    qvirtio_set_status(d, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_GF, (uint32_t)features, 4);
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_GF, features >> 32, 4);
    qvirtio_set_status(d, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                              VIRTIO_CONFIG_S_FEATURES_OK);
    if (!(qvirtio_get_status(d) & VIRTIO_CONFIG_S_FEATURES_OK)) {
        return false;
    }
    d->features = features;
    return true;
}

bool qvirtio_negotiate(QVirtioDevice *d, uint64_t wanted)
{
    return qvirtio_negotiate_raw(d, wanted & qvirtio_device_features(d));
}

void qvirtio_driver_ok(QVirtioDevice *d)
{
    qvirtio_set_status(d, qvirtio_get_status(d) | VIRTIO_CONFIG_S_DRIVER_OK);
}

uint8_t qvirtio_config_readb(QVirtioDevice *d, uint32_t off)
{
    return qos_readb(d->pci.q, d->device + off);
}

uint16_t qvirtio_config_readw(QVirtioDevice *d, uint32_t off)
{
    return qos_readw(d->pci.q, d->device + off);
}

uint32_t qvirtio_config_readl(QVirtioDevice *d, uint32_t off)
{
    return qos_readl(d->pci.q, d->device + off);
}

uint64_t qvirtio_config_readq(QVirtioDevice *d, uint32_t off)
{
    /* Two dwords, as Linux does: not every device takes 8-byte reads. */
    return qvirtio_config_readl(d, off) |
           (uint64_t)qvirtio_config_readl(d, off + 4) << 32;
}

/* ---- Interrupts ---------------------------------------------------------- */

void qvirtio_enable_msix(QVirtioDevice *d)
{
    Qos *q = d->pci.q;
    uint16_t ctrl;

    if (!d->msix_cap) {
        return;
    }
    d->msix_landing = qos_alloc(q, 4ull * d->msix_entries, 64);
    for (uint16_t v = 0; v < d->msix_entries; v++) {
        uint64_t e = d->msix_table + (uint64_t)v * PCI_MSIX_ENTRY_SIZE;
        uint64_t addr = qvirtio_msix_landing(d, v);

        qos_writel(q, d->msix_landing + 4ull * v, 0);
        qos_writel(q, e, (uint32_t)addr);
        qos_writel(q, e + 4, addr >> 32);
        qos_writel(q, e + 8, QVIRTIO_MSI_DATA(v));
        qos_writel(q, e + MSIX_ENTRY_VECTOR_CTRL, 0);
    }
    ctrl = qpci_config_read(&d->pci, d->msix_cap + PCI_MSIX_FLAGS, 2);
    qpci_config_write(&d->pci, d->msix_cap + PCI_MSIX_FLAGS,
                      ctrl | PCI_MSIX_FLAGS_ENABLE, 2);
    d->msix = true;
}

void qvirtio_msix_mask(QVirtioDevice *d, uint16_t vector, bool masked)
{
    qos_writel(d->pci.q,
               d->msix_table + (uint64_t)vector * PCI_MSIX_ENTRY_SIZE +
                   MSIX_ENTRY_VECTOR_CTRL,
               masked);
}

uint16_t qvirtio_set_config_vector(QVirtioDevice *d, uint16_t vector)
{
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_MSIX, vector, 2);
    return qvirtio_common_read(d, VIRTIO_PCI_COMMON_MSIX, 2);
}

uint64_t qvirtio_msix_landing(QVirtioDevice *d, uint16_t vector)
{
    return d->msix_landing + 4ull * vector;
}

bool qvirtio_msix_take(QVirtioDevice *d, uint16_t vector)
{
    uint64_t addr = qvirtio_msix_landing(d, vector);
    uint32_t v = qos_readl(d->pci.q, addr);

    if (v == 0) {
        return false;
    }
    qos_writel(d->pci.q, addr, 0);
    return true;
}

uint8_t qvirtio_isr(QVirtioDevice *d)
{
    return qos_readb(d->pci.q, d->isr);
}

/* ---- Virtqueues ---------------------------------------------------------- */

static void zero_guest(Qos *q, uint64_t gpa, uint64_t len)
{
    static const uint8_t zeros[4096];

    while (len) {
        size_t n = len < sizeof(zeros) ? len : sizeof(zeros);

        qos_memwrite(q, gpa, zeros, n);
        gpa += n;
        len -= n;
    }
}

bool qvirtqueue_setup(QVirtioDevice *d, QVirtQueue *vq, uint16_t index,
                      uint16_t size, uint16_t vector)
{
    Qos *q = d->pci.q;
    uint16_t max, noff;

    memset(vq, 0, sizeof(*vq));
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_Q_SELECT, index, 2);
    max = qvirtio_common_read(d, VIRTIO_PCI_COMMON_Q_SIZE, 2);
    if (max == 0) {
        return false;
    }
    if (size == 0 || size > max) {
        size = max;
    }
    if (size > QVIRTQ_MAX_SIZE) {
        size = QVIRTQ_MAX_SIZE;
    }
    vq->dev = d;
    vq->index = index;
    vq->size = size;
    vq->event_idx = d->features & (1ull << VIRTIO_RING_F_EVENT_IDX);
    vq->indirect = d->features & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
    vq->desc = qos_alloc(q, 16ull * size, 4096);
    vq->avail = qos_alloc(q, 6 + 2ull * size, 2);
    vq->used = qos_alloc(q, 6 + 8ull * size, 4096);
    /* The allocator is a bump pointer: the three rings are contiguous. */
    zero_guest(q, vq->desc, vq->used + 6 + 8ull * size - vq->desc);

    qvirtio_common_write(d, VIRTIO_PCI_COMMON_Q_SIZE, size, 2);
    if (d->msix) {
        qvirtio_common_write(d, VIRTIO_PCI_COMMON_Q_MSIX, vector, 2);
        vector = qvirtio_common_read(d, VIRTIO_PCI_COMMON_Q_MSIX, 2);
    } else {
        vector = QVIRTIO_NO_VECTOR;
    }
    vq->vector = vector;
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_Q_DESCLO, (uint32_t)vq->desc, 4);
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_Q_DESCHI, vq->desc >> 32, 4);
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_Q_AVAILLO, (uint32_t)vq->avail,
                         4);
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_Q_AVAILHI, vq->avail >> 32, 4);
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_Q_USEDLO, (uint32_t)vq->used, 4);
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_Q_USEDHI, vq->used >> 32, 4);
    noff = qvirtio_common_read(d, VIRTIO_PCI_COMMON_Q_NOFF, 2);
    vq->notify_addr = d->notify + (uint64_t)noff * d->notify_mult;

    for (uint16_t i = 0; i < size; i++) {
        vq->next[i] = i + 1;
    }
    vq->free_head = 0;
    vq->num_free = size;
    vq->chain_tail = size;
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
    return true;
}

void qvirtqueue_write_desc(Qos *q, uint64_t table, uint16_t i, uint64_t addr,
                           uint32_t len, uint16_t flags, uint16_t next)
{
    uint8_t d[16];

    memcpy(d, &addr, 8);
    memcpy(d + 8, &len, 4);
    memcpy(d + 12, &flags, 2);
    memcpy(d + 14, &next, 2);
    qos_memwrite(q, table + 16ull * i, d, sizeof(d));
}

static uint16_t alloc_desc(QVirtQueue *vq)
{
    uint16_t i = vq->free_head;

    if (vq->num_free == 0) {
        fprintf(stderr, "qvirtqueue: queue %u out of descriptors\n", vq->index);
        abort();
    }
    vq->free_head = vq->next[i];
    vq->num_free--;
    return i;
}

uint16_t qvirtqueue_add(QVirtQueue *vq, uint64_t gpa, uint32_t len, bool write,
                        bool more)
{
    uint16_t i = alloc_desc(vq);
    uint16_t flags =
        (write ? VRING_DESC_F_WRITE : 0) | (more ? VRING_DESC_F_NEXT : 0);

    if (vq->chain_tail == vq->size) {
        vq->chain_head = i;
        vq->chain_len[i] = 0;
        vq->done[i] = false;
    }
    /* Our free list already says which descriptor comes next. */
    qvirtqueue_write_desc(vq->dev->pci.q, vq->desc, i, gpa, len, flags,
                          more ? vq->free_head : 0);
    vq->chain_len[vq->chain_head]++;
    vq->chain_tail = more ? i : vq->size;
    return vq->chain_head;
}

uint16_t qvirtqueue_add_indirect(QVirtQueue *vq, uint64_t table, uint16_t n)
{
    uint16_t head = qvirtqueue_add(vq, table, 16u * n, false, false);

    qvirtqueue_write_desc(vq->dev->pci.q, vq->desc, head, table, 16u * n,
                          VRING_DESC_F_INDIRECT, 0);
    return head;
}

void qvirtqueue_publish(QVirtQueue *vq, uint16_t head)
{
    Qos *q = vq->dev->pci.q;
    uint16_t slot = vq->avail_idx % vq->size;

    qos_memwrite(q, vq->avail + 4 + 2ull * slot, &head, 2);
    vq->avail_idx++;
    /* The entry first, then the index that makes it visible. */
    qos_memwrite(q, vq->avail + 2, &vq->avail_idx, 2);
}

void qvirtqueue_notify(QVirtQueue *vq)
{
    vq->kicked_idx = vq->avail_idx;
    qos_writew(vq->dev->pci.q, vq->notify_addr, vq->index);
}

void qvirtqueue_kick(QVirtQueue *vq)
{
    Qos *q = vq->dev->pci.q;
    uint16_t old = vq->kicked_idx, flags;
    bool need;

    /*
     * Our avail index store must be visible before we read the device's
     * wish (Linux's virtio_mb()): x86 lets a load pass an earlier store, so
     * we could read a stale NO_NOTIFY while the device, which clears it and
     * then reads our index, still sees the old index. Nobody kicks and the
     * request waits forever. In-process transports need this; over qtest it
     * costs nothing.
     */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (vq->event_idx) {
        need = vring_need_event(qvirtqueue_avail_event(vq), vq->avail_idx, old);
    } else {
        qos_memread(q, vq->used, &flags, 2);
        need = !(flags & VRING_USED_F_NO_NOTIFY);
    }
    if (need) {
        vq->kicks++;
        qvirtqueue_notify(vq);
    }
    vq->kicked_idx = vq->avail_idx;
}

uint16_t qvirtqueue_used_idx(QVirtQueue *vq)
{
    uint16_t idx;

    qos_memread(vq->dev->pci.q, vq->used + 2, &idx, 2);
    return idx;
}

uint16_t qvirtqueue_avail_event(QVirtQueue *vq)
{
    uint16_t v;

    qos_memread(vq->dev->pci.q, vq->used + 4 + 8ull * vq->size, &v, 2);
    return v;
}

void qvirtqueue_set_used_event(QVirtQueue *vq, uint16_t idx)
{
    qos_memwrite(vq->dev->pci.q, vq->avail + 4 + 2ull * vq->size, &idx, 2);
}

void qvirtqueue_set_no_interrupt(QVirtQueue *vq, bool on)
{
    uint16_t flags = on ? VRING_AVAIL_F_NO_INTERRUPT : 0;

    qos_memwrite(vq->dev->pci.q, vq->avail, &flags, 2);
}

static void free_chain(QVirtQueue *vq, uint16_t head)
{
    uint16_t tail = head;

    for (uint16_t n = 1; n < vq->chain_len[head]; n++) {
        tail = vq->next[tail];
    }
    vq->next[tail] = vq->free_head;
    vq->free_head = head;
    vq->num_free += vq->chain_len[head];
}

bool qvirtqueue_poll_used(QVirtQueue *vq)
{
    Qos *q = vq->dev->pci.q;
    uint16_t idx = qvirtqueue_used_idx(vq);
    bool any = false;

    while (vq->last_used != idx) {
        uint32_t elem[2];

        qos_memread(q, vq->used + 4 + 8ull * (vq->last_used % vq->size), elem,
                    sizeof(elem));
        vq->last_used++;
        any = true;
        if (elem[0] >= vq->size || vq->chain_len[elem[0]] == 0) {
            fprintf(stderr, "qvirtqueue: queue %u: bogus used id %u\n",
                    vq->index, elem[0]);
            continue;
        }
        vq->done[elem[0]] = true;
        vq->used_len[elem[0]] = elem[1];
        free_chain(vq, elem[0]);
        vq->chain_len[elem[0]] = 0;
    }
    if (any && vq->event_idx && !vq->hold_used_event) {
        /* Interrupt us for the next one, as Linux does. */
        qvirtqueue_set_used_event(vq, vq->last_used);
    }
    return any;
}

typedef struct UsedWait {
    QVirtQueue *vq;
    uint16_t head;
} UsedWait;

static bool head_done(void *opaque)
{
    UsedWait *w = opaque;

    qvirtqueue_poll_used(w->vq);
    return w->vq->done[w->head];
}

bool qvirtqueue_wait(QVirtQueue *vq, uint16_t head, uint32_t *len,
                     int timeout_ms)
{
    UsedWait w = {.vq = vq, .head = head};

    if (!qos_wait(head_done, &w, timeout_ms)) {
        return false;
    }
    vq->done[head] = false;
    if (len) {
        *len = vq->used_len[head];
    }
    return true;
}
