/*
 * MSI-X: the vector table and the pending-bit array, served from a BAR of
 * their own, and delivery with per-vector and function masking.
 *
 * pci_msix_notify() runs on IOThreads as well as under the big lock, so the
 * table and PBA are guarded by msix_lock, and so are config space stores
 * (the MSI-X flags and the command register it reads).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/pci.h"

static uint64_t msix_pba_offset(const PciDevice *dev)
{
    return ((uint64_t)dev->msix_entries * PCI_MSIX_ENTRY_SIZE + 7) & ~7ULL;
}

bool pci_msix_enabled(const PciDevice *dev)
{
    return dev->msix_cap && (pci_get_word(dev, dev->msix_cap + PCI_MSIX_FLAGS) &
                             PCI_MSIX_FLAGS_ENABLE);
}

static bool msix_masked(const PciDevice *dev, uint16_t vector)
{
    uint16_t flags = pci_get_word(dev, dev->msix_cap + PCI_MSIX_FLAGS);
    const uint8_t *e = dev->msix_table + vector * PCI_MSIX_ENTRY_SIZE;

    return (flags & PCI_MSIX_FLAGS_MASKALL) ||
           (e[12] & PCI_MSIX_ENTRY_CTRL_MASKBIT);
}

/* Deliver or set pending; msix_lock held. */
static void msix_fire_locked(PciDevice *dev, uint16_t vector)
{
    const uint8_t *e = dev->msix_table + vector * PCI_MSIX_ENTRY_SIZE;
    uint64_t addr;
    uint32_t data;

    if (msix_masked(dev, vector)) {
        dev->msix_pba[vector / 64] |= 1ULL << (vector % 64);
        return;
    }
    dev->msix_pba[vector / 64] &= ~(1ULL << (vector % 64));
    memcpy(&addr, e, 8);
    memcpy(&data, e + 8, 4);
    msi_send(dev->msi_sink, addr, data);
}

/*
 * The enable and bus-master bits live in config space, which a vCPU may be
 * rewriting under the big lock while an IOThread gets here without it:
 * pci_config_write() stores under msix_lock, so read them under it too.
 */
void pci_msix_notify(PciDevice *dev, uint16_t vector)
{
    if (vector >= dev->msix_entries) {
        return;
    }
    pthread_mutex_lock(&dev->msix_lock);
    if (pci_msix_enabled(dev) && pci_bus_master_enabled(dev)) {
        msix_fire_locked(dev, vector);
    }
    pthread_mutex_unlock(&dev->msix_lock);
}

/* Unmasking a vector with its pending bit set delivers it now. */
static void msix_deliver_pending_locked(PciDevice *dev)
{
    if (!pci_msix_enabled(dev)) {
        return;
    }
    for (uint16_t v = 0; v < dev->msix_entries; v++) {
        if ((dev->msix_pba[v / 64] & (1ULL << (v % 64))) &&
            !msix_masked(dev, v)) {
            msix_fire_locked(dev, v);
        }
    }
}

static uint64_t msix_bar_read(void *opaque, uint64_t offset, unsigned size)
{
    PciDevice *dev = opaque;
    uint64_t table_size = (uint64_t)dev->msix_entries * PCI_MSIX_ENTRY_SIZE;
    uint64_t pba = msix_pba_offset(dev);
    uint64_t v = 0;

    pthread_mutex_lock(&dev->msix_lock);
    if (offset + size <= table_size) {
        memcpy(&v, dev->msix_table + offset, size);
    } else if (offset >= pba &&
               offset + size <= pba + (dev->msix_entries + 63) / 64 * 8) {
        memcpy(&v, (uint8_t *)dev->msix_pba + (offset - pba), size);
    }
    pthread_mutex_unlock(&dev->msix_lock);
    return v;
}

static void msix_bar_write(void *opaque, uint64_t offset, uint64_t value,
                           unsigned size)
{
    PciDevice *dev = opaque;
    uint64_t table_size = (uint64_t)dev->msix_entries * PCI_MSIX_ENTRY_SIZE;

    if (offset + size > table_size) {
        return; /* the PBA is read-only */
    }
    pthread_mutex_lock(&dev->msix_lock);
    memcpy(dev->msix_table + offset, &value, size);
    /* Only bit 0 of vector control is defined; keep the rest zero. */
    uint8_t *ctrl = dev->msix_table + (offset & ~15ULL) + 12;
    ctrl[0] &= PCI_MSIX_ENTRY_CTRL_MASKBIT;
    ctrl[1] = ctrl[2] = ctrl[3] = 0;
    msix_deliver_pending_locked(dev);
    pthread_mutex_unlock(&dev->msix_lock);
}

static const RegionOps msix_bar_ops = {
    .read = msix_bar_read,
    .write = msix_bar_write,
};

void pci_msix_config_written(PciDevice *dev)
{
    pthread_mutex_lock(&dev->msix_lock);
    msix_deliver_pending_locked(dev);
    pthread_mutex_unlock(&dev->msix_lock);
}

int pci_msix_init(PciDevice *dev, uint16_t entries, int bar)
{
    uint64_t bar_size = 4096;
    uint8_t cap;

    if (entries == 0 || entries > 2048) {
        return -EINVAL;
    }
    dev->msix_entries = entries;
    dev->msix_table = calloc(entries, PCI_MSIX_ENTRY_SIZE);
    dev->msix_pba = calloc((entries + 63) / 64, sizeof(uint64_t));
    if (!dev->msix_table || !dev->msix_pba) {
        return -ENOMEM;
    }
    for (uint16_t v = 0; v < entries; v++) {
        dev->msix_table[v * PCI_MSIX_ENTRY_SIZE + 12] =
            PCI_MSIX_ENTRY_CTRL_MASKBIT; /* masked at reset */
    }
    while (bar_size < msix_pba_offset(dev) + (entries + 63) / 64 * 8) {
        bar_size *= 2;
    }
    pci_register_bar(dev, bar, bar_size, 0, &msix_bar_ops, dev);

    cap = pci_add_capability(dev, PCI_CAP_ID_MSIX, 12);
    dev->msix_cap = cap;
    pci_set_word(dev, cap + PCI_MSIX_FLAGS, entries - 1);
    pci_set_long(dev, cap + PCI_MSIX_TABLE, bar);
    pci_set_long(dev, cap + PCI_MSIX_PBA, msix_pba_offset(dev) | bar);
    dev->wmask[cap + PCI_MSIX_FLAGS + 1] =
        (PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL) >> 8;
    return 0;
}
