#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>

#include "firmware/tests/lib/dt.h"
#include "firmware/tests/lib/fw.h"
#include "firmware/tests/lib/irq.h"
#include "firmware/tests/lib/pci.h"
#include "firmware/tests/lib/timer.h"
#include "firmware/tests/lib/virtio-blk.h"

#define MSIX_ENTRY_SIZE  16
#define MSIX_VECTOR_CTRL 12
#define RESET_TIMEOUT_MS 1000

static uint8_t common_r8(VirtioBlk *b, unsigned off)
{
    return readb(b->common + off);
}

static uint16_t common_r16(VirtioBlk *b, unsigned off)
{
    return readw(b->common + off);
}

static uint32_t common_r32(VirtioBlk *b, unsigned off)
{
    return readl(b->common + off);
}

static void common_w8(VirtioBlk *b, unsigned off, uint8_t v)
{
    writeb(b->common + off, v);
}

static void common_w16(VirtioBlk *b, unsigned off, uint16_t v)
{
    writew(b->common + off, v);
}

static void common_w32(VirtioBlk *b, unsigned off, uint32_t v)
{
    writel(b->common + off, v);
}

static void common_w64(VirtioBlk *b, unsigned lo, uint64_t v)
{
    common_w32(b, lo, (uint32_t)v);
    common_w32(b, lo + 4, v >> 32);
}

uint8_t vblk_status(VirtioBlk *b)
{
    return common_r8(b, VIRTIO_PCI_COMMON_STATUS);
}

static uint64_t bar_addr(VirtioBlk *b, unsigned bar)
{
    uint64_t addr, size;

    return bar < 6 && dt_pci_bar(b->node, bar, &addr, &size) ? addr : 0;
}

/* The four structures a modern device must have; the first of each wins. */
static bool find_caps(VirtioBlk *b)
{
    uint8_t cap = 0;

    while ((cap = pci_find_cap(b->devfn, PCI_CAP_ID_VENDOR, cap))) {
        uint8_t type = pci_read8(b->devfn, cap + VIRTIO_PCI_CAP_CFG_TYPE);
        uint8_t bar = pci_read8(b->devfn, cap + VIRTIO_PCI_CAP_BAR);
        uint32_t off = pci_read32(b->devfn, cap + VIRTIO_PCI_CAP_OFFSET);
        uint64_t *where = NULL, base = bar_addr(b, bar);

        switch (type) {
        case VIRTIO_PCI_CAP_COMMON_CFG:
            where = &b->common;
            break;
        case VIRTIO_PCI_CAP_NOTIFY_CFG:
            where = &b->notify;
            break;
        case VIRTIO_PCI_CAP_ISR_CFG:
            where = &b->isr;
            break;
        case VIRTIO_PCI_CAP_DEVICE_CFG:
            where = &b->device;
            break;
        }
        if (!where || *where || !base) {
            continue;
        }
        *where = base + off;
        if (type == VIRTIO_PCI_CAP_NOTIFY_CFG) {
            b->notify_mult = pci_read32(b->devfn, cap + 16);
        }
    }
    b->msix_cap = pci_find_cap(b->devfn, PCI_CAP_ID_MSIX, 0);
    if (b->msix_cap) {
        uint32_t table = pci_read32(b->devfn, b->msix_cap + PCI_MSIX_TABLE);
        uint32_t pba = pci_read32(b->devfn, b->msix_cap + PCI_MSIX_PBA);

        b->msix_entries = (pci_read16(b->devfn, b->msix_cap + PCI_MSIX_FLAGS) &
                           PCI_MSIX_FLAGS_QSIZE) +
                          1;
        b->msix_table = bar_addr(b, table & 7) + (table & ~7u);
        b->msix_pba = bar_addr(b, pba & 7) + (pba & ~7u);
    }
    return b->common && b->notify && b->isr && b->device;
}

void vblk_msix_set(VirtioBlk *b, uint16_t entry, uint32_t addr, uint32_t data)
{
    uint64_t e = b->msix_table + (uint64_t)entry * MSIX_ENTRY_SIZE;

    writel(e, addr);
    writel(e + 4, 0);
    writel(e + 8, data);
}

void vblk_msix_mask(VirtioBlk *b, uint16_t entry, bool masked)
{
    writel(b->msix_table + (uint64_t)entry * MSIX_ENTRY_SIZE + MSIX_VECTOR_CTRL,
           masked ? 1 : 0);
}

bool vblk_msix_pending(VirtioBlk *b, uint16_t entry)
{
    return readl(b->msix_pba + entry / 32 * 4) & (1u << (entry % 32));
}

static void enable_msix(VirtioBlk *b, const VblkOptions *o)
{
    uint32_t addr = lapic_msi_address();
    uint16_t ctrl;

    vblk_msix_set(b, 0, addr, o->config_irq);
    vblk_msix_mask(b, 0, false);
    vblk_msix_set(b, 1, addr, o->queue_irq);
    vblk_msix_mask(b, 1, false);
    ctrl = pci_read16(b->devfn, b->msix_cap + PCI_MSIX_FLAGS);
    pci_write16(b->devfn, b->msix_cap + PCI_MSIX_FLAGS,
                (ctrl | PCI_MSIX_FLAGS_ENABLE) & ~PCI_MSIX_FLAGS_MASKALL);
}

static bool setup_queue(VirtioBlk *b, bool msix)
{
    common_w16(b, VIRTIO_PCI_COMMON_Q_SELECT, 0);
    b->max_qsize = common_r16(b, VIRTIO_PCI_COMMON_Q_SIZE);
    if (!b->max_qsize) {
        return false;
    }
    b->qsize = b->max_qsize < VBLK_QSIZE ? b->max_qsize : VBLK_QSIZE;
    common_w16(b, VIRTIO_PCI_COMMON_Q_SIZE, b->qsize);
    b->queue_vector = VBLK_NO_VECTOR;
    if (msix) {
        common_w16(b, VIRTIO_PCI_COMMON_Q_MSIX, 1);
        b->queue_vector = common_r16(b, VIRTIO_PCI_COMMON_Q_MSIX);
    }
    common_w64(b, VIRTIO_PCI_COMMON_Q_DESCLO, (uintptr_t)b->desc);
    common_w64(b, VIRTIO_PCI_COMMON_Q_AVAILLO, (uintptr_t)&b->avail);
    common_w64(b, VIRTIO_PCI_COMMON_Q_USEDLO, (uintptr_t)&b->used);
    b->notify_addr =
        b->notify +
        (uint64_t)common_r16(b, VIRTIO_PCI_COMMON_Q_NOFF) * b->notify_mult;
    for (uint16_t i = 0; i < b->qsize; i++) {
        b->next[i] = i + 1;
    }
    b->free_head = 0;
    b->num_free = b->qsize;
    common_w16(b, VIRTIO_PCI_COMMON_Q_ENABLE, 1);
    return true;
}

static uint64_t device_features(VirtioBlk *b)
{
    uint64_t f;

    common_w32(b, VIRTIO_PCI_COMMON_DFSELECT, 0);
    f = common_r32(b, VIRTIO_PCI_COMMON_DF);
    common_w32(b, VIRTIO_PCI_COMMON_DFSELECT, 1);
    return f | (uint64_t)common_r32(b, VIRTIO_PCI_COMMON_DF) << 32;
}

int vblk_init(VirtioBlk *b, int index, const VblkOptions *o)
{
    static const VblkOptions none;
    uint64_t want = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_BLK_F_FLUSH;
    uint8_t s;

    o = o ? o : &none;
    memset(b, 0, sizeof(*b));
    b->node = dt_pci_find(VBLK_VENDOR, VBLK_DEVICE, index);
    if (b->node < 0) {
        report_info("virtio-blk: no %04x:%04x #%d in the device tree",
                    VBLK_VENDOR, VBLK_DEVICE, index);
        return -1;
    }
    b->devfn = dt_pci_devfn(b->node);
    pci_write16(b->devfn, PCI_COMMAND,
                pci_read16(b->devfn, PCI_COMMAND) | PCI_COMMAND_MEMORY |
                    PCI_COMMAND_MASTER);
    if (!find_caps(b)) {
        report_info("virtio-blk: %s lacks a common/notify/ISR/device "
                    "capability in a placed BAR",
                    dt_name(b->node));
        return -1;
    }
    common_w8(b, VIRTIO_PCI_COMMON_STATUS, 0);
    if (!WAIT_FOR(vblk_status(b) == 0, RESET_TIMEOUT_MS)) {
        report_info("virtio-blk: reset did not complete");
        return -1;
    }
    s = VIRTIO_CONFIG_S_ACKNOWLEDGE;
    common_w8(b, VIRTIO_PCI_COMMON_STATUS, s);
    s |= VIRTIO_CONFIG_S_DRIVER;
    common_w8(b, VIRTIO_PCI_COMMON_STATUS, s);
    b->device_features = device_features(b);
    if (!(b->device_features & (1ull << VIRTIO_F_VERSION_1))) {
        report_info("virtio-blk: no VERSION_1 (features 0x%lx)",
                    (unsigned long)b->device_features);
        return -1;
    }
    b->features = b->device_features & want;
    common_w32(b, VIRTIO_PCI_COMMON_GFSELECT, 0);
    common_w32(b, VIRTIO_PCI_COMMON_GF, (uint32_t)b->features);
    common_w32(b, VIRTIO_PCI_COMMON_GFSELECT, 1);
    common_w32(b, VIRTIO_PCI_COMMON_GF, b->features >> 32);
    s |= VIRTIO_CONFIG_S_FEATURES_OK;
    common_w8(b, VIRTIO_PCI_COMMON_STATUS, s);
    if (!(vblk_status(b) & VIRTIO_CONFIG_S_FEATURES_OK)) {
        report_info("virtio-blk: FEATURES_OK refused");
        return -1;
    }
    b->config_vector = VBLK_NO_VECTOR;
    if (o->msix) {
        if (!b->msix_cap || b->msix_entries < 2) {
            report_info("virtio-blk: no MSI-X with 2 entries");
            return -1;
        }
        enable_msix(b, o);
        common_w16(b, VIRTIO_PCI_COMMON_MSIX, 0);
        b->config_vector = common_r16(b, VIRTIO_PCI_COMMON_MSIX);
    }
    if (!setup_queue(b, o->msix)) {
        report_info("virtio-blk: queue 0 does not exist");
        return -1;
    }
    s |= VIRTIO_CONFIG_S_DRIVER_OK;
    common_w8(b, VIRTIO_PCI_COMMON_STATUS, s);
    /* Two dword reads, as Linux does: 8-byte MMIO is not universal. */
    b->capacity =
        readl(b->device + offsetof(struct virtio_blk_config, capacity)) |
        (uint64_t)readl(b->device +
                        offsetof(struct virtio_blk_config, capacity) + 4)
            << 32;
    b->size_max =
        readl(b->device + offsetof(struct virtio_blk_config, size_max));
    b->seg_max = readl(b->device + offsetof(struct virtio_blk_config, seg_max));
    b->blk_size =
        readl(b->device + offsetof(struct virtio_blk_config, blk_size));
    return 0;
}

static uint16_t add_desc(VirtioBlk *b, uint64_t addr, uint32_t len,
                         uint16_t flags)
{
    uint16_t i = b->free_head;

    b->free_head = b->next[i];
    b->num_free--;
    b->desc[i] = (struct vring_desc){
        .addr = addr, .len = len, .flags = flags, .next = b->free_head};
    return i;
}

void vblk_submit(VirtioBlk *b, VblkReq *r)
{
    bool in = r->type == VIRTIO_BLK_T_IN || r->type == VIRTIO_BLK_T_GET_ID;
    unsigned need = r->data ? 3 : 2;
    VblkSlot *s;
    uint16_t head;

    if (b->num_free < need) {
        fw_abort("virtio-blk: ring full (%u free, %u needed)", b->num_free,
                 need);
    }
    head = b->free_head;
    s = &b->slot[head];
    s->hdr = (struct virtio_blk_outhdr){.type = r->type, .sector = r->sector};
    s->status = 0xff; /* the device must overwrite it */
    r->done = false;
    r->head = head;
    b->req[head] = r;
    add_desc(b, (uintptr_t)&s->hdr, sizeof(s->hdr), VRING_DESC_F_NEXT);
    if (r->data) {
        add_desc(b, (uintptr_t)r->data, r->len,
                 VRING_DESC_F_NEXT | (in ? VRING_DESC_F_WRITE : 0));
    }
    add_desc(b, (uintptr_t)&s->status, 1, VRING_DESC_F_WRITE);
    b->avail.ring[b->avail_idx % b->qsize] = head;
    barrier(); /* the ring entry before the index that publishes it */
    b->avail_idx++;
    *(volatile uint16_t *)&b->avail.idx = b->avail_idx;
}

void vblk_kick(VirtioBlk *b)
{
    mb(); /* avail.idx visible before the device looks */
    writew(b->notify_addr, 0);
}

unsigned vblk_reap(VirtioBlk *b)
{
    unsigned n = 0;

    while (b->last_used != *(volatile uint16_t *)&b->used.idx) {
        struct vring_used_elem *e;
        uint16_t head, i;
        VblkReq *r;

        barrier(); /* read the entry after the index */
        e = &b->used.ring[b->last_used % b->qsize];
        head = e->id;
        if (head >= b->qsize || !b->req[head]) {
            fw_abort("virtio-blk: used ring names head %u, not in flight",
                     head);
        }
        r = b->req[head];
        b->req[head] = NULL;
        r->used_len = e->len;
        r->status = b->slot[head].status;
        /* Give the chain back: follow it to its last descriptor. */
        for (i = head; b->desc[i].flags & VRING_DESC_F_NEXT;
             i = b->desc[i].next) {
            b->num_free++;
        }
        b->num_free++;
        b->next[i] = b->free_head;
        b->free_head = head;
        b->last_used++;
        r->done = true;
        n++;
    }
    return n;
}

int vblk_wait(VirtioBlk *b, VblkReq *r, unsigned timeout_ms)
{
    if (!WAIT_FOR((vblk_reap(b), r->done), timeout_ms)) {
        report_info("virtio-blk: request (type %u sector %lu) not done after "
                    "%u ms (used.idx=%u, status 0x%x)",
                    r->type, (unsigned long)r->sector, timeout_ms,
                    *(volatile uint16_t *)&b->used.idx, vblk_status(b));
        return -1;
    }
    return 0;
}

int vblk_rw(VirtioBlk *b, uint32_t type, uint64_t sector, void *data,
            uint32_t len)
{
    VblkReq r = {.type = type, .sector = sector, .data = data, .len = len};

    vblk_submit(b, &r);
    vblk_kick(b);
    return vblk_wait(b, &r, 5000) < 0 ? -1 : r.status;
}
