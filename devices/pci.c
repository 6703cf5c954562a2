#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/pci.h"
#include "util/log.h"

#define PCI_CAP_START 0x40

/* ---- Device set-up
 * ------------------------------------------------------------ */

void pci_device_init(PciDevice *dev, const char *name, uint16_t vendor,
                     uint16_t device, uint32_t class_code, uint8_t revision)
{
    memset(dev->config, 0, sizeof(dev->config));
    memset(dev->wmask, 0, sizeof(dev->wmask));
    memset(dev->w1cmask, 0, sizeof(dev->w1cmask));
    memset(dev->bars, 0, sizeof(dev->bars));
    dev->name = name;
    pci_set_word(dev, PCI_VENDOR_ID, vendor);
    pci_set_word(dev, PCI_DEVICE_ID, device);
    pci_set_byte(dev, PCI_REVISION_ID, revision);
    pci_set_byte(dev, PCI_CLASS_PROG, class_code & 0xff);
    pci_set_word(dev, PCI_CLASS_PROG + 1, class_code >> 8);
    pci_set_byte(dev, PCI_INTERRUPT_PIN, 1); /* INTA */

    /* What the guest may change: decode enables, INTx disable, IRQ line. */
    dev->wmask[PCI_COMMAND] =
        PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    dev->wmask[PCI_COMMAND + 1] =
        (PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE) >> 8;
    dev->wmask[PCI_INTERRUPT_LINE] = 0xff;
    dev->next_cap_offset = PCI_CAP_START;
    pthread_mutex_init(&dev->msix_lock, NULL);
}

void pci_device_cleanup(PciDevice *dev)
{
    free(dev->msix_table);
    free(dev->msix_pba);
    dev->msix_table = NULL;
    dev->msix_pba = NULL;
    pthread_mutex_destroy(&dev->msix_lock);
}

void pci_set_subsystem(PciDevice *dev, uint16_t vendor, uint16_t id)
{
    pci_set_word(dev, PCI_SUBSYSTEM_VENDOR_ID, vendor);
    pci_set_word(dev, PCI_SUBSYSTEM_ID, id);
}

void pci_register_bar(PciDevice *dev, int bar, uint64_t size, uint8_t type,
                      const RegionOps *ops, void *opaque)
{
    PciBar *b = &dev->bars[bar];
    unsigned off = PCI_BAR0 + 4 * bar;
    uint64_t mask = ~(size - 1);

    b->size = size;
    b->is_io = type & PCI_BAR_IO;
    b->is_64 = type & PCI_BAR_MEM64;
    b->ops = ops;
    b->opaque = opaque;
    /* Sizing works through wmask: address bits below the size stay 0. */
    pci_set_long(dev, off, type);
    for (int i = 0; i < 4; i++) {
        dev->wmask[off + i] = (uint8_t)(mask >> (8 * i));
    }
    dev->wmask[off] &= b->is_io ? ~0x3 : ~0xf;
    if (b->is_64) {
        for (int i = 0; i < 4; i++) {
            dev->wmask[off + 4 + i] = (uint8_t)(mask >> (32 + 8 * i));
        }
    }
}

uint8_t pci_add_capability(PciDevice *dev, uint8_t id, uint8_t size)
{
    uint8_t off = dev->next_cap_offset;

    /* Link it at the head of the list: the order does not matter. */
    dev->config[off] = id;
    dev->config[off + 1] = dev->config[PCI_CAPABILITY_LIST];
    dev->config[PCI_CAPABILITY_LIST] = off;
    pci_set_word(dev, PCI_STATUS,
                 pci_get_word(dev, PCI_STATUS) | PCI_STATUS_CAP_LIST);
    dev->next_cap_offset = (off + size + 3) & ~3;
    return off;
}

bool pci_bus_master_enabled(const PciDevice *dev)
{
    return pci_get_word(dev, PCI_COMMAND) & PCI_COMMAND_MASTER;
}

/* ---- BAR placement
 * ------------------------------------------------------------- */

/* Where the guest placed @bar, or 0 if it is not decoded. */
static uint64_t bar_address(const PciDevice *dev, int bar)
{
    const PciBar *b = &dev->bars[bar];
    uint16_t cmd = pci_get_word(dev, PCI_COMMAND);
    unsigned off = PCI_BAR0 + 4 * bar;
    uint64_t addr, last;

    if (b->is_io) {
        if (!(cmd & PCI_COMMAND_IO)) {
            return 0;
        }
        addr = pci_get_long(dev, off) & ~(uint64_t)0x3;
        if (addr + b->size > 0x10000) {
            return 0;
        }
    } else {
        if (!(cmd & PCI_COMMAND_MEMORY)) {
            return 0;
        }
        addr = pci_get_long(dev, off) & ~(uint64_t)0xf;
        if (b->is_64) {
            addr |= (uint64_t)pci_get_long(dev, off + 4) << 32;
        }
    }
    addr &= ~(b->size - 1);
    /* The all-ones sizing pattern is not a placement. */
    if (__builtin_add_overflow(addr, b->size - 1, &last) ||
        (!b->is_64 && last > UINT32_MAX) || addr == ~(b->size - 1)) {
        return 0;
    }
    return addr;
}

/* Bring the address space in line with the BARs and the command register. */
static void pci_update_mappings(PciDevice *dev)
{
    AddressSpace *as = dev->host ? dev->host->as : NULL;

    if (!as) {
        return;
    }
    for (int i = 0; i < PCI_NUM_BARS; i++) {
        PciBar *b = &dev->bars[i];
        AsSpace space = b->is_io ? AS_PIO : AS_MMIO;
        uint64_t addr;

        if (!b->size) {
            continue;
        }
        addr = bar_address(dev, i);
        if (b->mapped && b->mapped_addr == addr) {
            continue;
        }
        if (b->mapped) {
            as_remove(as, space, b->mapped_addr, b->opaque);
            b->mapped = false;
        }
        if (addr) {
            if (as_add(as, space, addr, b->size, b->ops, b->opaque,
                       dev->name) == 0) {
                b->mapped = true;
                b->mapped_addr = addr;
            } else {
                log_guest_error("%s: BAR%d at 0x%llx overlaps RAM or another "
                                "device; not mapped",
                                dev->name, i, (unsigned long long)addr);
            }
        }
        if (b->is_64) {
            i++;
        }
    }
}

/* ---- Configuration space
 * ------------------------------------------------------ */

uint32_t pci_config_read(PciDevice *dev, uint32_t offset, unsigned size)
{
    uint32_t v = 0;

    if (offset >= PCI_CONFIG_SIZE || size > PCI_CONFIG_SIZE - offset) {
        return UINT32_MAX;
    }
    for (unsigned i = 0; i < size; i++) {
        v |= (uint32_t)dev->config[offset + i] << (8 * i);
    }
    return v;
}

static void pci_update_intx(PciDevice *dev)
{
    bool disabled = pci_get_word(dev, PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE;

    irq_set(&dev->intx, dev->intx_level && !disabled);
}

void pci_config_write(PciDevice *dev, uint32_t offset, uint32_t value,
                      unsigned size)
{
    bool bars_touched = false;

    if (offset >= PCI_CONFIG_SIZE || size > PCI_CONFIG_SIZE - offset) {
        return;
    }
    /* MSI-X delivery reads config space off the big lock (pci-msix.c). */
    if (dev->msix_cap) {
        pthread_mutex_lock(&dev->msix_lock);
    }
    for (unsigned i = 0; i < size; i++) {
        unsigned a = offset + i;
        uint8_t b = value >> (8 * i);

        dev->config[a] =
            (dev->config[a] & ~dev->wmask[a]) | (b & dev->wmask[a]);
        dev->config[a] &= ~(b & dev->w1cmask[a]);
        if ((a >= PCI_BAR0 && a < PCI_BAR0 + 24) || a == PCI_COMMAND) {
            bars_touched = true;
        }
    }
    if (dev->msix_cap) {
        pthread_mutex_unlock(&dev->msix_lock);
    }
    if (bars_touched) {
        pci_update_mappings(dev);
    }
    if (offset <= PCI_COMMAND + 1 && offset + size > PCI_COMMAND) {
        pci_update_intx(dev);
    }
    if (dev->msix_cap) {
        pci_msix_config_written(dev); /* enable or function mask changed */
    }
    if (dev->ops && dev->ops->config_written) {
        dev->ops->config_written(dev, offset, size);
    }
}

/* ---- Interrupts
 * ----------------------------------------------------------------- */

void pci_set_intx(PciDevice *dev, int level)
{
    uint16_t status = pci_get_word(dev, PCI_STATUS);

    dev->intx_level = level;
    status =
        level ? status | PCI_STATUS_INTERRUPT : status & ~PCI_STATUS_INTERRUPT;
    pci_set_word(dev, PCI_STATUS, status);
    pci_update_intx(dev);
}

void pci_msi_init(PciDevice *dev)
{
    uint8_t cap = pci_add_capability(dev, PCI_CAP_ID_MSI, 14);

    dev->msi_cap = cap;
    pci_set_word(dev, cap + PCI_MSI_FLAGS, PCI_MSI_FLAGS_64BIT);
    dev->wmask[cap + PCI_MSI_FLAGS] = PCI_MSI_FLAGS_ENABLE;
    for (int i = 0; i < 8; i++) {
        dev->wmask[cap + PCI_MSI_ADDRESS_LO + i] = 0xff;
    }
    dev->wmask[cap + PCI_MSI_ADDRESS_LO] = 0xfc; /* dword aligned */
    dev->wmask[cap + PCI_MSI_DATA_64] = 0xff;
    dev->wmask[cap + PCI_MSI_DATA_64 + 1] = 0xff;
}

bool pci_msi_enabled(const PciDevice *dev)
{
    return dev->msi_cap && (pci_get_word(dev, dev->msi_cap + PCI_MSI_FLAGS) &
                            PCI_MSI_FLAGS_ENABLE);
}

void pci_msi_notify(PciDevice *dev)
{
    uint8_t cap = dev->msi_cap;
    uint64_t addr;

    if (!pci_msi_enabled(dev) || !pci_bus_master_enabled(dev)) {
        return;
    }
    addr = pci_get_long(dev, cap + PCI_MSI_ADDRESS_LO) |
           (uint64_t)pci_get_long(dev, cap + PCI_MSI_ADDRESS_HI) << 32;
    msi_send(dev->msi_sink, addr, pci_get_word(dev, cap + PCI_MSI_DATA_64));
}

/* ---- The host bridge: configuration mechanism #1
 * ------------------------------ */

#define PCI_CONFIG_ADDRESS_PORT 0xcf8
#define PCI_CONFIG_DATA_PORT    0xcfc
#define PCI_CONFIG_ENABLE       0x80000000u

/* The function the latch points at and the byte offset within its space. */
static PciDevice *pci_host_target(PciHost *host, unsigned port_offset,
                                  uint32_t *offset)
{
    uint32_t ca = host->config_address;

    if (!(ca & PCI_CONFIG_ENABLE) || ((ca >> 16) & 0xff) != 0) {
        return NULL; /* disabled, or a bus we do not have */
    }
    /*
     * The low two bits of the latch select a byte within the dword, as in
     * QEMU; the data port offset adds to them.
     */
    *offset = ((ca & 0xff) | port_offset) & 0xff;
    return host->devices[(ca >> 8) & 0xff];
}

static uint64_t pci_host_addr_read(void *opaque, uint64_t offset, unsigned size)
{
    PciHost *host = opaque;

    return offset == 0 && size == 4 ? host->config_address : UINT32_MAX;
}

static void pci_host_addr_write(void *opaque, uint64_t offset, uint64_t value,
                                unsigned size)
{
    PciHost *host = opaque;

    /* Only a dword write at 0xCF8 latches; 0xCF9 is another register. */
    if (offset == 0 && size == 4) {
        host->config_address = value;
    }
}

static uint64_t pci_host_data_read(void *opaque, uint64_t offset, unsigned size)
{
    PciHost *host = opaque;
    uint32_t cfg_offset;
    PciDevice *dev = pci_host_target(host, offset, &cfg_offset);

    if (!dev) {
        return size == 4 ? UINT32_MAX : (1u << (8 * size)) - 1;
    }
    return pci_config_read(dev, cfg_offset, size);
}

static void pci_host_data_write(void *opaque, uint64_t offset, uint64_t value,
                                unsigned size)
{
    PciHost *host = opaque;
    uint32_t cfg_offset;
    PciDevice *dev = pci_host_target(host, offset, &cfg_offset);

    if (dev) {
        pci_config_write(dev, cfg_offset, value, size);
    }
}

static const RegionOps pci_host_addr_ops = {
    .read = pci_host_addr_read,
    .write = pci_host_addr_write,
};

static const RegionOps pci_host_data_ops = {
    .read = pci_host_data_read,
    .write = pci_host_data_write,
};

/* ---- The host bridge: ECAM
 * ----------------------------------------------------- */

#define ECAM_BUS_SHIFT   20
#define ECAM_DEVFN_SHIFT 12
#define ECAM_REG_MASK    0xfff
#define ECAM_MAX_BUSES   256

/* The function an ECAM offset names, or NULL; a bus other than 0 is empty. */
static PciDevice *pci_ecam_target(PciHost *host, uint64_t offset, unsigned size,
                                  const char *what)
{
    if ((size != 1 && size != 2 && size != 4) || (offset & (size - 1))) {
        /* ECAM accesses are naturally aligned and at most a dword. */
        log_guest_error("pci: ECAM %s of %u bytes at offset 0x%llx: "
                        "unaligned or too wide, ignored",
                        what, size, (unsigned long long)offset);
        return NULL;
    }
    if (offset >> ECAM_BUS_SHIFT != 0) {
        return NULL;
    }
    return host->devices[(offset >> ECAM_DEVFN_SHIFT) & 0xff];
}

static uint64_t pci_ecam_read(void *opaque, uint64_t offset, unsigned size)
{
    PciDevice *dev = pci_ecam_target(opaque, offset, size, "read");
    uint64_t ones = size >= 8 ? UINT64_MAX : (1ULL << (8 * size)) - 1;

    if (!dev) {
        return ones;
    }
    /* Beyond the 256 bytes of conventional space reads all-ones, too. */
    return pci_config_read(dev, offset & ECAM_REG_MASK, size) & ones;
}

static void pci_ecam_write(void *opaque, uint64_t offset, uint64_t value,
                           unsigned size)
{
    PciDevice *dev = pci_ecam_target(opaque, offset, size, "write");

    if (dev) {
        pci_config_write(dev, offset & ECAM_REG_MASK, value, size);
    }
}

static const RegionOps pci_ecam_ops = {
    .read = pci_ecam_read,
    .write = pci_ecam_write,
};

int pci_host_map_ecam(PciHost *host, uint64_t base, unsigned nbuses)
{
    if (nbuses < 1 || nbuses > ECAM_MAX_BUSES) {
        return -EINVAL;
    }
    return as_add(host->as, AS_MMIO, base, (uint64_t)nbuses << ECAM_BUS_SHIFT,
                  &pci_ecam_ops, host, "pci-ecam");
}

void pci_host_init(PciHost *host, AddressSpace *as)
{
    memset(host, 0, sizeof(*host));
    host->as = as;
    as_add(as, AS_PIO, PCI_CONFIG_ADDRESS_PORT, 4, &pci_host_addr_ops, host,
           "pci-config-address");
    as_add(as, AS_PIO, PCI_CONFIG_DATA_PORT, 4, &pci_host_data_ops, host,
           "pci-config-data");

    /* The host bridge itself, as on Q35: 00:00.0, Intel 82G33 MCH. */
    pci_device_init(&host->bridge, "host-bridge", 0x8086, 0x29c0, 0x060000, 0);
    pci_set_byte(&host->bridge, PCI_INTERRUPT_PIN, 0);
    pci_host_plug(host, &host->bridge, PCI_DEVFN(0, 0));
}

int pci_host_plug(PciHost *host, PciDevice *dev, uint8_t devfn)
{
    if (host->devices[devfn]) {
        return -EBUSY;
    }
    dev->host = host;
    dev->devfn = devfn;
    host->devices[devfn] = dev;
    return 0;
}

void pci_host_unplug(PciHost *host, PciDevice *dev)
{
    for (int b = 0; b < PCI_NUM_BARS; b++) {
        PciBar *bar = &dev->bars[b];

        if (bar->mapped) {
            as_remove(host->as, bar->is_io ? AS_PIO : AS_MMIO, bar->mapped_addr,
                      bar->opaque);
            bar->mapped = false;
        }
    }
    if (host->devices[dev->devfn] == dev) {
        host->devices[dev->devfn] = NULL;
    }
    dev->host = NULL;
}

void pci_host_cleanup(PciHost *host)
{
    for (int i = 0; i < 256; i++) {
        if (host->devices[i]) {
            pci_host_unplug(host, host->devices[i]);
        }
    }
    pci_device_cleanup(&host->bridge);
}
