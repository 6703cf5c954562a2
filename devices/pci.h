/*
 * PCI: a host bridge with configuration mechanism #1 (ports 0xCF8/0xCFC)
 * and, when the board asks for it, ECAM (memory-mapped configuration), one
 * bus, and the parts every PCI function shares: type-0 configuration
 * space, BARs that the guest sizes and places, a capability list, MSI, MSI-X
 * and INTx.
 *
 * A device embeds a PciDevice, fills in IDs, BARs and capabilities, and is
 * plugged into a PciHost at a devfn. The host maps and unmaps the BARs in the
 * address space as the guest programs them (command register gating included).
 */
#ifndef MINIVMM_DEVICES_PCI_H
#define MINIVMM_DEVICES_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/address-space.h"
#include "devices/irq.h"
#include "devices/pci-regs.h"

typedef struct PciDevice PciDevice;
typedef struct PciHost PciHost;

typedef struct PciBar {
    uint64_t size; /* 0: not implemented; else a power of two */
    bool is_io;
    bool is_64; /* uses this slot and the next */
    const RegionOps *ops;
    void *opaque;
    bool mapped;
    uint64_t mapped_addr;
} PciBar;

typedef struct PciDeviceOps {
    /* Called after the guest wrote configuration space (optional). */
    void (*config_written)(PciDevice *dev, uint32_t offset, unsigned size);
} PciDeviceOps;

struct PciDevice {
    const char *name;
    uint8_t config[PCI_CONFIG_SIZE];
    uint8_t wmask[PCI_CONFIG_SIZE];   /* bits the guest may change */
    uint8_t w1cmask[PCI_CONFIG_SIZE]; /* bits the guest clears by writing 1 */
    PciBar bars[PCI_NUM_BARS];
    const PciDeviceOps *ops;
    PciHost *host;
    uint8_t devfn;
    uint8_t next_cap_offset; /* where the next capability goes */

    IrqLine intx;
    int intx_level;
    const MsiSink *msi_sink;

    uint8_t msi_cap;

    /* MSI-X: the table and PBA live in their own BAR, served by pci.c. */
    uint8_t msix_cap;
    uint16_t msix_entries;
    uint8_t *msix_table;
    uint64_t *msix_pba;
    pthread_mutex_t msix_lock; /* notify runs on IOThreads too */
};

struct PciHost {
    AddressSpace *as;
    uint32_t config_address; /* the 0xCF8 latch */
    PciDevice *devices[256]; /* bus 0, by devfn */
    PciDevice bridge;        /* 00:00.0 */
};

void pci_host_init(PciHost *host, AddressSpace *as);
/*
 * ECAM (PCIe's enhanced configuration access mechanism, "MMCONFIG"): the
 * configuration space of bus B, device D, function F at @base + (B << 20 |
 * D << 15 | F << 12), 4 KiB each, for buses 0..@nbuses-1 (1..256). It
 * reaches the same pci_config_read()/pci_config_write() as 0xCFC, in one
 * access instead of two. Buses without devices (all but 0) read all-ones.
 */
int pci_host_map_ecam(PciHost *host, uint64_t base, unsigned nbuses);
/* Plug @dev in at @devfn; -EBUSY if taken. */
int pci_host_plug(PciHost *host, PciDevice *dev, uint8_t devfn);
/* Unmap @dev's BARs and take it off the bus. */
void pci_host_unplug(PciHost *host, PciDevice *dev);
/* Unplug every device (machine teardown). */
void pci_host_cleanup(PciHost *host);

/* Configuration space as the guest sees it (mechanism #1 uses these). */
uint32_t pci_config_read(PciDevice *dev, uint32_t offset, unsigned size);
void pci_config_write(PciDevice *dev, uint32_t offset, uint32_t value,
                      unsigned size);

/* ---- For device models -------------------------------------------------- */

void pci_device_init(PciDevice *dev, const char *name, uint16_t vendor,
                     uint16_t device, uint32_t class_code, uint8_t revision);
void pci_device_cleanup(PciDevice *dev);
void pci_set_subsystem(PciDevice *dev, uint16_t vendor, uint16_t id);
void pci_register_bar(PciDevice *dev, int bar, uint64_t size, uint8_t type,
                      const RegionOps *ops, void *opaque);
/* Add a capability of @size bytes; returns its offset. */
uint8_t pci_add_capability(PciDevice *dev, uint8_t id, uint8_t size);

bool pci_bus_master_enabled(const PciDevice *dev);

/* INTx: drive the device's interrupt pin (INTA). */
void pci_set_intx(PciDevice *dev, int level);

/* MSI with one vector, 64-bit address. */
void pci_msi_init(PciDevice *dev);
bool pci_msi_enabled(const PciDevice *dev);
void pci_msi_notify(PciDevice *dev);

/* MSI-X with @entries vectors; table at offset 0 of @bar, PBA after it. */
int pci_msix_init(PciDevice *dev, uint16_t entries, int bar);
bool pci_msix_enabled(const PciDevice *dev);
/* Send vector @vector, or mark it pending if masked. Any thread. */
void pci_msix_notify(PciDevice *dev, uint16_t vector);
/* For pci.c: the guest changed the MSI-X capability (enable, mask). */
void pci_msix_config_written(PciDevice *dev);

/* Little-endian config helpers for device models. */
static inline void pci_set_byte(PciDevice *d, unsigned off, uint8_t v)
{
    d->config[off] = v;
}
static inline void pci_set_word(PciDevice *d, unsigned off, uint16_t v)
{
    d->config[off] = v;
    d->config[off + 1] = v >> 8;
}
static inline void pci_set_long(PciDevice *d, unsigned off, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        d->config[off + i] = v >> (8 * i);
    }
}
static inline uint16_t pci_get_word(const PciDevice *d, unsigned off)
{
    return d->config[off] | d->config[off + 1] << 8;
}
static inline uint32_t pci_get_long(const PciDevice *d, unsigned off)
{
    return (uint32_t)pci_get_word(d, off) | (uint32_t)pci_get_word(d, off + 2)
                                                << 16;
}

#endif
