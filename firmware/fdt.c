/*
 * The machine's device tree (layout in fdt.h), written with libfdt's
 * sequential-write API: nodes go out in the order they appear in the blob.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <libfdt.h>

#include "firmware/boot.h"
#include "firmware/fdt.h"

#define IOAPIC_PHANDLE 1
#define IOAPIC_SIZE    0x1000
#define UART_CLOCK     1843200
#define UART_PORTS     8
#define FW_CFG_PORTS   2
#define TEST_EXIT_SIZE 4
#define PCI_CONF_PORT  0xcf8
#define PCI_CONF_PORTS 8

/* phys.hi of the IEEE 1275 PCI bus binding. */
#define PHYS_NONRELOC 0x80000000u
#define PHYS_PREFETCH 0x40000000u
#define PHYS_IO       0x01000000u
#define PHYS_MEM32    0x02000000u
#define PHYS_MEM64    0x03000000u
#define BAR_PREFETCH  0x8
#define MAX_CAPS      48 /* a 256-byte space holds no more: stops loops */
#define PCI_NAME_MAX  32
#define PCI_REG_CELLS 5
#define MAX_REG_CELLS (PCI_REG_CELLS * (1 + PCI_NUM_BARS))

/* Stop at the first libfdt error; fdt_err() turns it into -errno. */
#define TRY(call)                                                              \
    do {                                                                       \
        int ret_ = (call);                                                     \
        if (ret_ < 0) {                                                        \
            return ret_;                                                       \
        }                                                                      \
    } while (0)

static int fdt_err(int err)
{
    return err == -FDT_ERR_NOSPACE ? -ENOSPC : -EINVAL;
}

static int prop_cells(void *fdt, const char *name, const uint32_t *cells, int n)
{
    fdt32_t be[MAX_REG_CELLS];

    if (n > MAX_REG_CELLS) {
        return -FDT_ERR_BADVALUE;
    }
    for (int i = 0; i < n; i++) {
        be[i] = cpu_to_fdt32(cells[i]);
    }
    return fdt_property(fdt, name, be, n * sizeof(be[0]));
}

static int add_io_port(void *fdt, uint32_t port, uint32_t count)
{
    return prop_cells(fdt, "minivmm,io-port", (uint32_t[]){port, count}, 2);
}

static int add_memory(void *fdt, uint64_t ram_size)
{
    BootE820Entry map[BOOT_E820_MAX];
    uint32_t reg[4 * BOOT_E820_MAX];
    int n = boot_e820_map(ram_size, map), cells = 0;

    for (int i = 0; i < n; i++) {
        if (map[i].type != BOOT_E820_RAM) {
            continue;
        }
        reg[cells++] = map[i].addr >> 32;
        reg[cells++] = (uint32_t)map[i].addr;
        reg[cells++] = map[i].size >> 32;
        reg[cells++] = (uint32_t)map[i].size;
    }
    TRY(fdt_begin_node(fdt, "memory@0"));
    TRY(fdt_property_string(fdt, "device_type", "memory"));
    TRY(prop_cells(fdt, "reg", reg, cells));
    return fdt_end_node(fdt);
}

static int add_cpus(void *fdt, int ncpus)
{
    char name[16];

    TRY(fdt_begin_node(fdt, "cpus"));
    TRY(fdt_property_u32(fdt, "#address-cells", 1));
    TRY(fdt_property_u32(fdt, "#size-cells", 0));
    for (int i = 0; i < ncpus; i++) {
        snprintf(name, sizeof(name), "cpu@%x", i);
        TRY(fdt_begin_node(fdt, name));
        TRY(fdt_property_string(fdt, "device_type", "cpu"));
        TRY(fdt_property_u32(fdt, "reg", i));
        TRY(fdt_end_node(fdt));
    }
    return fdt_end_node(fdt);
}

static int add_ioapic(void *fdt, uint32_t addr)
{
    char name[48];

    snprintf(name, sizeof(name), "interrupt-controller@%x", addr);
    TRY(fdt_begin_node(fdt, name));
    TRY(fdt_property_string(fdt, "compatible", "minivmm,ioapic"));
    TRY(prop_cells(fdt, "reg", (uint32_t[]){0, addr, 0, IOAPIC_SIZE}, 4));
    TRY(fdt_property(fdt, "interrupt-controller", NULL, 0));
    TRY(fdt_property_u32(fdt, "#interrupt-cells", 1));
    TRY(fdt_property_u32(fdt, "#address-cells", 0)); /* dtc wants it said */
    TRY(fdt_property_u32(fdt, "phandle", IOAPIC_PHANDLE));
    return fdt_end_node(fdt);
}

/* ---- PCI ------------------------------------------------------------------
 */

/* "virtio-blk@02.0" -> "virtio-blk@2"; "ahci" at 1f.2 -> "ahci@1f,2". */
static void pci_node_name(PciDevice *dev, char *buf, size_t len)
{
    char base[PCI_NAME_MAX];
    const char *s = dev->name ? dev->name : "";
    size_t n = 0;
    uint8_t slot = dev->devfn >> 3, fn = dev->devfn & 7;

    for (; s[n] && s[n] != '@' && n + 1 < sizeof(base); n++) {
        char c = s[n];

        base[n] = isalnum((unsigned char)c) || strchr(",._+-", c) ? c : '-';
    }
    base[n] = '\0';
    if (!n) {
        snprintf(base, sizeof(base), "pci%x,%x",
                 pci_config_read(dev, PCI_VENDOR_ID, 2),
                 pci_config_read(dev, PCI_DEVICE_ID, 2));
    }
    if (fn) {
        snprintf(buf, len, "%s@%x,%x", base, slot, fn);
    } else {
        snprintf(buf, len, "%s@%x", base, slot);
    }
}

/* True if @dev's capability list has @id. */
static bool pci_has_cap(PciDevice *dev, uint8_t id)
{
    uint8_t ptr;

    if (!(pci_config_read(dev, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST)) {
        return false;
    }
    ptr = pci_config_read(dev, PCI_CAPABILITY_LIST, 1);
    for (int i = 0; i < MAX_CAPS && ptr >= 0x40; i++) {
        ptr &= ~3;
        if (pci_config_read(dev, ptr, 1) == id) {
            return true;
        }
        ptr = pci_config_read(dev, ptr + 1, 1);
    }
    return false;
}

/* BAR @i's phys.hi and the address it holds (0: none). */
static uint32_t pci_bar_phys(PciDevice *dev, int i, uint64_t *addr)
{
    unsigned off = PCI_BAR0 + 4 * i;
    uint32_t lo = pci_config_read(dev, off, 4);
    uint32_t hi = dev->devfn << 8 | off;

    if (dev->bars[i].is_io) {
        *addr = lo & ~0x3u;
        return hi | PHYS_IO;
    }
    *addr = lo & ~0xfu;
    hi |= lo & BAR_PREFETCH ? PHYS_PREFETCH : 0;
    if (dev->bars[i].is_64) {
        *addr |= (uint64_t)pci_config_read(dev, off + 4, 4) << 32;
        return hi | PHYS_MEM64;
    }
    return hi | PHYS_MEM32;
}

static int add_pci_function(void *fdt, PciDevice *dev)
{
    uint32_t reg[MAX_REG_CELLS], assigned[MAX_REG_CELLS];
    int nreg = 0, nassigned = 0;
    char name[PCI_NAME_MAX + 16];

    reg[nreg++] = dev->devfn << 8;
    for (int k = 0; k < 4; k++) {
        reg[nreg++] = 0;
    }
    for (int i = 0; i < PCI_NUM_BARS; i++) {
        const PciBar *b = &dev->bars[i];
        uint64_t addr;
        uint32_t hi;

        if (!b->size) {
            continue;
        }
        hi = pci_bar_phys(dev, i, &addr);
        uint32_t e[PCI_REG_CELLS] = {hi, 0, 0, b->size >> 32,
                                     (uint32_t)b->size};
        memcpy(reg + nreg, e, sizeof(e));
        nreg += PCI_REG_CELLS;
        if (addr) {
            e[0] |= PHYS_NONRELOC;
            e[1] = addr >> 32;
            e[2] = (uint32_t)addr;
            memcpy(assigned + nassigned, e, sizeof(e));
            nassigned += PCI_REG_CELLS;
        }
        if (b->is_64) {
            i++;
        }
    }

    pci_node_name(dev, name, sizeof(name));
    TRY(fdt_begin_node(fdt, name));
    TRY(prop_cells(fdt, "reg", reg, nreg));
    if (nassigned) {
        TRY(prop_cells(fdt, "assigned-addresses", assigned, nassigned));
    }
    TRY(fdt_property_u32(fdt, "vendor-id",
                         pci_config_read(dev, PCI_VENDOR_ID, 2)));
    TRY(fdt_property_u32(fdt, "device-id",
                         pci_config_read(dev, PCI_DEVICE_ID, 2)));
    TRY(fdt_property_u32(fdt, "revision-id",
                         pci_config_read(dev, PCI_REVISION_ID, 1)));
    TRY(fdt_property_u32(fdt, "class-code",
                         pci_config_read(dev, PCI_CLASS_PROG, 3)));
    TRY(fdt_property_u32(fdt, "subsystem-vendor-id",
                         pci_config_read(dev, PCI_SUBSYSTEM_VENDOR_ID, 2)));
    TRY(fdt_property_u32(fdt, "subsystem-id",
                         pci_config_read(dev, PCI_SUBSYSTEM_ID, 2)));
    if (pci_config_read(dev, PCI_INTERRUPT_PIN, 1)) {
        TRY(fdt_property_u32(fdt, "interrupts",
                             pci_config_read(dev, PCI_INTERRUPT_LINE, 1)));
    }
    if (pci_has_cap(dev, PCI_CAP_ID_MSI)) {
        TRY(fdt_property(fdt, "msi", NULL, 0));
    }
    if (pci_has_cap(dev, PCI_CAP_ID_MSIX)) {
        TRY(fdt_property(fdt, "msi-x", NULL, 0));
    }
    return fdt_end_node(fdt);
}

static int add_pci(void *fdt, const FdtMachineInfo *info)
{
    uint32_t ranges[] = {
        PHYS_IO,
        0,
        info->pci_io_base,
        0,
        info->pci_io_base,
        0,
        info->pci_io_size,
        PHYS_MEM32,
        info->pci_mmio_base >> 32,
        (uint32_t)info->pci_mmio_base,
        info->pci_mmio_base >> 32,
        (uint32_t)info->pci_mmio_base,
        info->pci_mmio_size >> 32,
        (uint32_t)info->pci_mmio_size,
    };

    TRY(fdt_begin_node(fdt, "pci"));
    TRY(fdt_property_string(fdt, "device_type", "pci"));
    TRY(fdt_property_string(fdt, "compatible", "minivmm,pci-conf1"));
    TRY(fdt_property_u32(fdt, "#address-cells", 3));
    TRY(fdt_property_u32(fdt, "#size-cells", 2));
    TRY(prop_cells(fdt, "bus-range", (uint32_t[]){0, 0}, 2));
    TRY(add_io_port(fdt, PCI_CONF_PORT, PCI_CONF_PORTS));
    TRY(prop_cells(fdt, "ranges", ranges, 14));
    for (int devfn = 0; devfn < 256; devfn++) {
        if (info->pci->devices[devfn]) {
            TRY(add_pci_function(fdt, info->pci->devices[devfn]));
        }
    }
    return fdt_end_node(fdt);
}

/* ---- Port I/O devices ------------------------------------------------------
 */

static int add_serial(void *fdt, const FdtMachineInfo *info)
{
    char name[32];

    snprintf(name, sizeof(name), "serial@%x", info->serial_port);
    TRY(fdt_begin_node(fdt, name));
    TRY(fdt_property_string(fdt, "compatible", "ns16550a"));
    TRY(add_io_port(fdt, info->serial_port, UART_PORTS));
    TRY(fdt_property_u32(fdt, "interrupts", info->serial_irq));
    TRY(fdt_property_u32(fdt, "clock-frequency", UART_CLOCK));
    return fdt_end_node(fdt);
}

/* @width: the one access size the device takes, 0 to say nothing. */
static int add_port_device(void *fdt, const char *base, uint16_t port,
                           const char *compatible, uint32_t count,
                           uint32_t width)
{
    char name[32];

    snprintf(name, sizeof(name), "%s@%x", base, port);
    TRY(fdt_begin_node(fdt, name));
    TRY(fdt_property_string(fdt, "compatible", compatible));
    TRY(add_io_port(fdt, port, count));
    if (width) {
        TRY(fdt_property_u32(fdt, "reg-io-width", width));
    }
    return fdt_end_node(fdt);
}

static int build(void *fdt, const FdtMachineInfo *info)
{
    uint32_t ioapic = info->ioapic_addr ? info->ioapic_addr : FDT_IOAPIC_ADDR;
    char path[32];

    TRY(fdt_add_reservemap_entry(fdt, 0, FDT_RESERVED_LOW));
    TRY(fdt_finish_reservemap(fdt));
    TRY(fdt_begin_node(fdt, ""));
    TRY(fdt_property_u32(fdt, "#address-cells", 2));
    TRY(fdt_property_u32(fdt, "#size-cells", 2));
    TRY(fdt_property_string(fdt, "compatible", "minivmm,pc"));
    TRY(fdt_property_string(fdt, "model", "minivmm"));
    TRY(fdt_property_u32(fdt, "interrupt-parent", IOAPIC_PHANDLE));

    TRY(fdt_begin_node(fdt, "chosen"));
    if (info->cmdline) {
        TRY(fdt_property_string(fdt, "bootargs", info->cmdline));
    }
    if (info->serial_port) {
        snprintf(path, sizeof(path), "/serial@%x", info->serial_port);
        TRY(fdt_property_string(fdt, "stdout-path", path));
    }
    TRY(fdt_end_node(fdt));

    TRY(add_memory(fdt, info->ram_size));
    TRY(add_cpus(fdt, info->ncpus));
    TRY(add_ioapic(fdt, ioapic));
    if (info->pci) {
        TRY(add_pci(fdt, info));
    }
    if (info->serial_port) {
        TRY(add_serial(fdt, info));
    }
    if (info->test_exit_port) {
        TRY(add_port_device(fdt, "test-exit", info->test_exit_port,
                            "minivmm,test-exit", TEST_EXIT_SIZE,
                            TEST_EXIT_SIZE));
    }
    if (info->fw_cfg_port) {
        TRY(add_port_device(fdt, "fw-cfg", info->fw_cfg_port,
                            "minivmm,fw-cfg-ioport", FW_CFG_PORTS, 0));
    }
    TRY(fdt_end_node(fdt));
    return fdt_finish(fdt);
}

int fdt_build_machine(void *buf, size_t size, const FdtMachineInfo *info)
{
    int ret;

    if (info->ncpus < 1 || info->ncpus > 255 || !info->ram_size) {
        return -EINVAL;
    }
    ret = fdt_create(buf, size > INT_MAX ? INT_MAX : (int)size);
    if (ret == 0) {
        ret = build(buf, info);
    }
    return ret < 0 ? fdt_err(ret) : 0;
}
