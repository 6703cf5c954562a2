/*
 * pci: bus 0 as configuration mechanism #1 shows it agrees with the device
 * tree the VMM wrote. Every function in config space has a node and every
 * node a function; IDs, class, revision, subsystem and INTx routing match;
 * each BAR sits at its assigned address with the size "reg" gives (sized
 * the standard way, decoding off meanwhile); the AHCI and virtio-blk
 * functions are where the board puts them, with decoding and bus mastering
 * on.
 */
#include "firmware/tests/lib/dt.h"
#include "firmware/tests/lib/fw.h"
#include "firmware/tests/lib/pci.h"

#define AHCI_DEVFN    PCI_DEVFN(0x1f, 2)
#define VIRTIO_DEVFN  PCI_DEVFN(2, 0)
#define MAX_FUNCTIONS 256

static bool present(unsigned devfn)
{
    return pci_read16(devfn, PCI_VENDOR_ID) != 0xffff;
}

/* Size BAR @bar by writing all-ones; 0 if it does not exist. */
static uint64_t size_bar(unsigned devfn, int bar, bool *is64, bool *is_io)
{
    unsigned off = PCI_BAR0 + 4 * bar;
    uint32_t old = pci_read32(devfn, off), lo, hi = 0;
    uint64_t mask;

    pci_write32(devfn, off, UINT32_MAX);
    lo = pci_read32(devfn, off);
    pci_write32(devfn, off, old);
    *is_io = lo & PCI_BAR_IO;
    *is64 = !*is_io && (lo & 0x6) == PCI_BAR_MEM64;
    if (*is64) {
        uint32_t old_hi = pci_read32(devfn, off + 4);

        pci_write32(devfn, off + 4, UINT32_MAX);
        hi = pci_read32(devfn, off + 4);
        pci_write32(devfn, off + 4, old_hi);
    }
    mask = ((uint64_t)hi << 32 | lo) & (*is_io ? ~0x3ull : ~0xfull);
    if (!mask) {
        return 0; /* no writable address bit: not implemented */
    }
    if (*is_io) {
        mask |= 0xffffffffffff0000ull; /* some decode only 16 port bits */
    } else if (!*is64) {
        mask |= 0xffffffff00000000ull;
    }
    return ~mask + 1;
}

static uint64_t bar_address(unsigned devfn, int bar, bool is64, bool is_io)
{
    uint32_t lo = pci_read32(devfn, PCI_BAR0 + 4 * bar);

    if (is_io) {
        return lo & ~0x3u;
    }
    return (lo & ~0xfu) |
           (is64 ? (uint64_t)pci_read32(devfn, PCI_BAR0 + 4 * bar + 4) << 32
                 : 0);
}

static bool check_u32(int node, const char *prop, uint32_t want)
{
    uint32_t v;

    if (!dt_u32(node, prop, &v)) {
        printf("  %s: no %s\n", dt_name(node), prop);
        return false;
    }
    if (v != want) {
        printf("  %s: %s = 0x%x, config space says 0x%x\n", dt_name(node), prop,
               v, want);
        return false;
    }
    return true;
}

static void check_ids(unsigned devfn, int node)
{
    uint32_t class_rev = pci_read32(devfn, PCI_REVISION_ID);
    bool ok = check_u32(node, "vendor-id", pci_read16(devfn, PCI_VENDOR_ID));

    ok &= check_u32(node, "device-id", pci_read16(devfn, PCI_DEVICE_ID));
    ok &= check_u32(node, "class-code", class_rev >> 8);
    ok &= check_u32(node, "revision-id", class_rev & 0xff);
    ok &= check_u32(node, "subsystem-vendor-id",
                    pci_read16(devfn, PCI_SUBSYSTEM_VENDOR_ID));
    ok &= check_u32(node, "subsystem-id", pci_read16(devfn, PCI_SUBSYSTEM_ID));
    report(ok, "%s: IDs, class and revision match", dt_name(node));
}

static void check_irq(unsigned devfn, int node)
{
    uint8_t pin = pci_read8(devfn, PCI_INTERRUPT_PIN);
    int gsi = dt_pci_irq(node);

    if (!pin) {
        report(gsi < 0, "%s: no INTx pin, no interrupts property",
               dt_name(node));
        return;
    }
    report(gsi >= 0 && gsi == pci_read8(devfn, PCI_INTERRUPT_LINE),
           "%s: INTx GSI %d in the tree, INTERRUPT_LINE %u", dt_name(node), gsi,
           pci_read8(devfn, PCI_INTERRUPT_LINE));
}

static void check_caps(unsigned devfn, int node)
{
    bool msi = pci_find_cap(devfn, PCI_CAP_ID_MSI, 0) != 0;
    bool msix = pci_find_cap(devfn, PCI_CAP_ID_MSIX, 0) != 0;

    report(msi == dt_has_prop(node, "msi") &&
               msix == dt_has_prop(node, "msi-x"),
           "%s: msi %d msi-x %d as the tree says", dt_name(node), msi, msix);
}

static void check_bars(unsigned devfn, int node)
{
    uint16_t cmd = pci_read16(devfn, PCI_COMMAND);
    int nbars = (pci_read8(devfn, PCI_HEADER_TYPE) & 0x7f) == 0 ? 6 : 2;
    uint64_t addr[6] = {0}, size[6] = {0};
    bool is64[6] = {0}, is_io[6] = {0};

    /* No decoding while a BAR holds the sizing pattern. */
    pci_write16(devfn, PCI_COMMAND,
                cmd & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY));
    for (int bar = 0; bar < nbars; bar++) {
        size[bar] = size_bar(devfn, bar, &is64[bar], &is_io[bar]);
        addr[bar] = bar_address(devfn, bar, is64[bar], is_io[bar]);
        if (is64[bar]) {
            bar++;
        }
    }
    pci_write16(devfn, PCI_COMMAND, cmd);

    for (int bar = 0; bar < nbars; bar++) {
        uint64_t dt_addr, dt_size, reg_size;
        uint32_t hi;
        bool assigned = dt_pci_bar(node, bar, &dt_addr, &dt_size);
        bool in_reg = dt_pci_bar_reg(node, bar, &hi, &reg_size);

        if (!size[bar]) {
            report(!assigned && !in_reg, "%s: BAR%d absent, not in the tree",
                   dt_name(node), bar);
            continue;
        }
        report(assigned && in_reg && dt_addr == addr[bar] &&
                   dt_size == size[bar] && reg_size == size[bar] &&
                   ((hi >> 24) & 3) == (is_io[bar]  ? 1u
                                        : is64[bar] ? 3u
                                                    : 2u),
               "%s: BAR%d %s at 0x%lx size 0x%lx (tree: 0x%lx size 0x%lx)",
               dt_name(node), bar,
               is_io[bar]  ? "I/O"
               : is64[bar] ? "mem64"
                           : "mem32",
               (unsigned long)addr[bar], (unsigned long)size[bar],
               assigned ? (unsigned long)dt_addr : 0ul,
               assigned ? (unsigned long)dt_size : 0ul);
        if (is64[bar]) {
            bar++;
        }
    }
}

static void check_function(unsigned devfn)
{
    int node = dt_pci_find_devfn(devfn);

    if (!report(node >= 0, "%02x.%u %04x:%04x has a device tree node",
                PCI_SLOT(devfn), PCI_FUNC(devfn),
                pci_read16(devfn, PCI_VENDOR_ID),
                pci_read16(devfn, PCI_DEVICE_ID))) {
        return;
    }
    check_ids(devfn, node);
    check_irq(devfn, node);
    check_caps(devfn, node);
    check_bars(devfn, node);
}

static void check_board_device(const char *what, unsigned devfn,
                               uint32_t vendor_device, uint32_t class_code)
{
    uint16_t cmd = pci_read16(devfn, PCI_COMMAND);
    uint16_t want = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;

    report(pci_read32(devfn, PCI_VENDOR_ID) == vendor_device &&
               pci_read32(devfn, PCI_REVISION_ID) >> 8 == class_code,
           "%s at %02x.%u (%04x:%04x class %06x)", what, PCI_SLOT(devfn),
           PCI_FUNC(devfn), vendor_device & 0xffff, vendor_device >> 16,
           class_code);
    report((cmd & want) == want,
           "%s: memory decoding and bus master on "
           "(COMMAND 0x%x)",
           what, cmd);
}

int main(const void *fdt)
{
    int nconfig = 0, ntree = 0, orphans = 0, headless = 0;
    uint32_t first, count;

    (void)fdt;
    report_prefix_push("pci");
    report(dt_pci_root() >= 0, "the tree has /pci");
    report(dt_io_port("/pci", &first, &count) && first == 0xcf8 && count == 8,
           "/pci says configuration mechanism #1 at 0xcf8");
    /* Every function of every slot: the board may leave out function 0. */
    for (unsigned devfn = 0; devfn < MAX_FUNCTIONS; devfn++) {
        if (!present(devfn)) {
            continue;
        }
        nconfig++;
        if (PCI_FUNC(devfn) && !present(devfn & ~7u)) {
            headless++;
            printf("  %02x.%u exists but %02x.0 does not\n", PCI_SLOT(devfn),
                   PCI_FUNC(devfn), PCI_SLOT(devfn));
        }
        check_function(devfn);
    }
    /*
     * PCI requires function 0 in a populated slot, and Linux's
     * pci_scan_slot() stops at an empty function 0 (unless on s390 or
     * Jailhouse): a function without it is invisible to a Linux guest.
     */
    report(headless == 0,
           "every populated slot has a function 0 "
           "(%d functions without)",
           headless);
    for (int n = dt_pci_next(-1); n >= 0; n = dt_pci_next(n)) {
        int devfn = dt_pci_devfn(n);

        ntree++;
        if (devfn < 0 || !present(devfn)) {
            printf("  %s: devfn %d has no function in config space\n",
                   dt_name(n), devfn);
            orphans++;
        }
    }
    report(orphans == 0 && ntree == nconfig,
           "%d functions in config space, %d nodes, %d without a function",
           nconfig, ntree, orphans);
    check_board_device("AHCI", AHCI_DEVFN, 0x29228086, 0x010601);
    check_board_device("virtio-blk", VIRTIO_DEVFN, 0x10421af4, 0x018000);
    return report_summary();
}
