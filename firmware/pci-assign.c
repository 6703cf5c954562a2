/*
 * PCI resource assignment, the BIOS's job (see pci-assign.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "firmware/pci-assign.h"

#define BAR_IO_MASK  (~0x3ULL)
#define BAR_MEM_MASK (~0xfULL)
#define BAR_MEM_TYPE 0x6 /* bits 1-2 of a memory BAR */
#define MAX_BARS     (256 * PCI_NUM_BARS)

typedef struct BarReq {
    PciDevice *dev;
    int bar;
    uint64_t size;
    bool is_io, is_64;
} BarReq;

/*
 * Size BAR @bar of @dev the standard way: write all-ones, read back the
 * writable bits, put the old value back. Returns the BAR slots it uses: 2
 * for a 64-bit BAR, else 1. req->size is 0 for an unimplemented BAR.
 */
static int size_bar(PciDevice *dev, int bar, BarReq *req)
{
    unsigned off = PCI_BAR0 + 4 * bar;
    uint32_t old = pci_config_read(dev, off, 4), lo, hi = UINT32_MAX;
    uint64_t mask;

    pci_config_write(dev, off, UINT32_MAX, 4);
    lo = pci_config_read(dev, off, 4);
    pci_config_write(dev, off, old, 4);
    req->dev = dev;
    req->bar = bar;
    req->is_io = lo & PCI_BAR_IO;
    req->is_64 = !req->is_io && (lo & BAR_MEM_TYPE) == PCI_BAR_MEM64 &&
                 bar + 1 < PCI_NUM_BARS;
    if (req->is_64) {
        uint32_t old_hi = pci_config_read(dev, off + 4, 4);

        pci_config_write(dev, off + 4, UINT32_MAX, 4);
        hi = pci_config_read(dev, off + 4, 4);
        pci_config_write(dev, off + 4, old_hi, 4);
    }
    mask =
        ((uint64_t)hi << 32 | lo) & (req->is_io ? BAR_IO_MASK : BAR_MEM_MASK);
    if (!mask || (!req->is_64 && !(uint32_t)mask)) {
        req->size = 0; /* no writable address bit: not implemented */
    } else {
        if (req->is_io) {
            mask |= 0xffffffffffff0000ULL; /* some decode only 16 port bits */
        }
        req->size = ~mask + 1;
        if (req->size & (req->size - 1)) {
            req->size = 0; /* not a BAR a device may have: leave it alone */
        }
    }
    return req->is_64 ? 2 : 1;
}

static int cmp_size_desc(const void *a, const void *b)
{
    const BarReq *x = a, *y = b;

    if (x->size != y->size) {
        return x->size > y->size ? -1 : 1;
    }
    /* Equal sizes keep bus order, so the layout is the same every run. */
    if (x->dev->devfn != y->dev->devfn) {
        return x->dev->devfn < y->dev->devfn ? -1 : 1;
    }
    return x->bar - y->bar;
}

/* Next naturally aligned spot for @size in [*next, end), or false. */
static bool place(uint64_t *next, uint64_t end, uint64_t size, uint64_t *addr)
{
    uint64_t a = (*next + size - 1) & ~(size - 1);

    if (a < *next || a > end || size > end - a) {
        return false;
    }
    *addr = a;
    *next = a + size;
    return true;
}

static void write_bar(const BarReq *r, uint64_t addr)
{
    unsigned off = PCI_BAR0 + 4 * r->bar;

    pci_config_write(r->dev, off, (uint32_t)addr, 4);
    if (r->is_64) {
        pci_config_write(r->dev, off + 4, (uint32_t)(addr >> 32), 4);
    }
}

static int default_gsi(void *opaque, int slot, int pin)
{
    (void)opaque;
    return 16 + (slot + pin) % 4;
}

static int assign_bars(PciHost *host, const PciAssignConfig *cfg)
{
    BarReq *reqs = calloc(MAX_BARS, sizeof(*reqs));
    uint64_t mmio = cfg->mmio_base, io = cfg->io_base;
    int n = 0, ret = 0;

    if (!reqs) {
        return -ENOMEM;
    }
    for (int devfn = 0; devfn < 256; devfn++) {
        PciDevice *dev = host->devices[devfn];
        uint16_t cmd;

        if (!dev) {
            continue;
        }
        /* No decoding while the BARs hold sizing patterns. */
        cmd = pci_config_read(dev, PCI_COMMAND, 2);
        pci_config_write(dev, PCI_COMMAND,
                         cmd & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY), 2);
        for (int bar = 0; bar < PCI_NUM_BARS;) {
            int used = size_bar(dev, bar, &reqs[n]);

            if (reqs[n].size) {
                n++;
            }
            bar += used;
        }
    }
    qsort(reqs, n, sizeof(*reqs), cmp_size_desc);
    for (int i = 0; i < n; i++) {
        uint64_t addr;
        bool ok = reqs[i].is_io
                      ? place(&io, (uint64_t)cfg->io_base + cfg->io_size,
                              reqs[i].size, &addr)
                      : place(&mmio, cfg->mmio_base + cfg->mmio_size,
                              reqs[i].size, &addr);

        if (!ok) {
            ret = -ENOSPC;
            break;
        }
        write_bar(&reqs[i], addr);
    }
    free(reqs);
    return ret;
}

int pci_assign_resources(PciHost *host, const PciAssignConfig *cfg,
                         MpPciIrq *irqs, int max_irqs)
{
    int (*gsi_of)(void *, int, int) = cfg->gsi_of ? cfg->gsi_of : default_gsi;
    int nirqs = 0, ret;

    if (!cfg->mmio_size || cfg->mmio_base + cfg->mmio_size < cfg->mmio_base ||
        cfg->mmio_base + cfg->mmio_size > (1ULL << 32) || !cfg->io_size ||
        (uint64_t)cfg->io_base + cfg->io_size > 0x10000) {
        return -EINVAL;
    }
    ret = assign_bars(host, cfg);
    if (ret < 0) {
        return ret;
    }
    for (int devfn = 0; devfn < 256; devfn++) {
        PciDevice *dev = host->devices[devfn];
        uint8_t pin;
        uint16_t cmd;
        int gsi;

        if (!dev) {
            continue;
        }
        cmd = pci_config_read(dev, PCI_COMMAND, 2);
        pci_config_write(
            dev, PCI_COMMAND,
            cmd | PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
        pin = pci_config_read(dev, PCI_INTERRUPT_PIN, 1);
        if (pin < 1 || pin > 4) {
            continue; /* no INTx (or a pin value no device may have) */
        }
        gsi = gsi_of(cfg->opaque, devfn >> 3, pin - 1);
        if (gsi < 0 || gsi > 0xfe) {
            return -EINVAL;
        }
        pci_config_write(dev, PCI_INTERRUPT_LINE, gsi, 1);
        if (nirqs >= max_irqs) {
            return -ENOSPC;
        }
        irqs[nirqs++] = (MpPciIrq){devfn >> 3, pin - 1, gsi};
    }
    return nirqs;
}
