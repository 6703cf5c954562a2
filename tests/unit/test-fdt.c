/*
 * Tests of how the VMM describes the machine to the guest: PCI resource
 * assignment on a bus with AHCI and virtio-blk, the MP table (found by
 * scanning the BIOS area as Linux does) and the device tree (read back with
 * libfdt, as the bare-metal tests will).
 */
#include <check.h>
#include <string.h>

#include <libfdt.h>

#include "aio/main-loop.h"
#include "block/block.h"
#include "devices/ahci.h"
#include "devices/virtio-blk.h"
#include "firmware/boot.h"
#include "firmware/fdt.h"
#include "firmware/pci-assign.h"
#include "tests/unit/suites.h"

#define RAM_SIZE    (64ULL << 20)
#define AHCI_DEVFN  PCI_DEVFN(0x1f, 2)
#define VBLK_DEVFN  PCI_DEVFN(2, 0)
#define VBLK2_DEVFN PCI_DEVFN(3, 0)
#define MAX_IRQS    8

static GuestMemory gm;
static AddressSpace as;
static PciHost host;
static BlockBackend *blk[2];
static AhciState *ahci;
static VirtioBlk *vblk[2];
static MpPciIrq irqs[MAX_IRQS];
static int nirqs;

static const PciAssignConfig pc_windows = {
    .mmio_base = PCI_ASSIGN_MMIO_BASE,
    .mmio_size = PCI_ASSIGN_MMIO_SIZE,
    .io_base = PCI_ASSIGN_IO_BASE,
    .io_size = PCI_ASSIGN_IO_SIZE,
};

/* RAM, a PCI host, AHCI at 1f.2, virtio-blk at 02.0 and 03.0. */
static void machine_setup(void)
{
    char err[128];

    ck_assert_int_eq(gm_init(&gm, RAM_SIZE), 0);
    as_init(&as, &gm);
    pci_host_init(&host, &as);
    ck_assert_int_eq(
        main_loop_init(&(MainLoopOptions){.fdmon = AIO_FDMON_POLL}), 0);
    ck_assert_int_eq(
        ahci_create(&ahci, &host, AHCI_DEVFN, &gm, NULL, (IrqLine){0}), 0);
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(
            blk_open_string("null://4M", NULL, &blk[i], err, sizeof(err)) == 0,
            "%s", err);
        ck_assert_int_eq(virtio_blk_create(&vblk[i], &host,
                                           i ? VBLK2_DEVFN : VBLK_DEVFN, &gm,
                                           NULL, (IrqLine){0}, blk[i],
                                           &(VirtioBlkOptions){0}),
                         0);
    }
}

static void machine_teardown(void)
{
    for (int i = 0; i < 2; i++) {
        virtio_blk_destroy(vblk[i]);
        blk_close(blk[i]);
    }
    ahci_destroy(ahci);
    main_loop_cleanup();
    pci_host_cleanup(&host);
    as_cleanup(&as);
    gm_cleanup(&gm);
}

/* The GSI of @slot's @pin: a recognisable pattern. */
static int test_gsi(void *opaque, int slot, int pin)
{
    (void)opaque;
    return 5 + (slot + pin) % 7;
}

static uint64_t bar_addr(PciDevice *d, int i)
{
    uint32_t lo = pci_config_read(d, PCI_BAR0 + 4 * i, 4);

    if (d->bars[i].is_io) {
        return lo & ~3u;
    }
    return (lo & ~0xfu) |
           (d->bars[i].is_64
                ? (uint64_t)pci_config_read(d, PCI_BAR0 + 4 * i + 4, 4) << 32
                : 0);
}

/* ---- PCI resource assignment -------------------------------------------- */

START_TEST(test_pci_assign)
{
    PciAssignConfig cfg = pc_windows;
    struct {
        uint64_t addr, size;
        bool io;
    } seen[32];
    int nseen = 0, nfuncs = 0;

    cfg.gsi_of = test_gsi;
    nirqs = pci_assign_resources(&host, &cfg, irqs, MAX_IRQS);
    ck_assert_int_eq(nirqs, 3); /* the host bridge has no INTx */

    for (int devfn = 0; devfn < 256; devfn++) {
        PciDevice *d = host.devices[devfn];
        uint8_t pin;

        if (!d) {
            continue;
        }
        nfuncs++;
        ck_assert_uint_eq(pci_config_read(d, PCI_COMMAND, 2) & 7, 7);
        for (int i = 0; i < PCI_NUM_BARS; i++) {
            const PciBar *b = &d->bars[i];
            uint64_t a = bar_addr(d, i);

            if (!b->size) {
                continue;
            }
            ck_assert_msg(a % b->size == 0, "%s BAR%d 0x%llx unaligned",
                          d->name, i, (unsigned long long)a);
            if (b->is_io) {
                ck_assert_uint_ge(a, cfg.io_base);
                ck_assert_uint_le(a + b->size, cfg.io_base + cfg.io_size);
            } else {
                ck_assert_uint_ge(a, cfg.mmio_base);
                ck_assert_uint_le(a + b->size, cfg.mmio_base + cfg.mmio_size);
            }
            /* The device mapped it, as for a guest's own config writes. */
            ck_assert_msg(b->mapped && b->mapped_addr == a, "%s BAR%d", d->name,
                          i);
            ck_assert_ptr_nonnull(
                as_find(&as, b->is_io ? AS_PIO : AS_MMIO, a + b->size - 1));
            for (int j = 0; j < nseen; j++) {
                ck_assert(seen[j].io != b->is_io ||
                          a + b->size <= seen[j].addr ||
                          seen[j].addr + seen[j].size <= a);
            }
            seen[nseen].addr = a;
            seen[nseen].size = b->size;
            seen[nseen++].io = b->is_io;
            i += b->is_64;
        }
        pin = pci_config_read(d, PCI_INTERRUPT_PIN, 1);
        if (pin) {
            int gsi = test_gsi(NULL, devfn >> 3, pin - 1), k;

            ck_assert_uint_eq(pci_config_read(d, PCI_INTERRUPT_LINE, 1), gsi);
            for (k = 0; k < nirqs; k++) {
                if (irqs[k].slot == devfn >> 3) {
                    break;
                }
            }
            ck_assert_int_lt(k, nirqs);
            ck_assert_uint_eq(irqs[k].pin, pin - 1);
            ck_assert_uint_eq(irqs[k].gsi, gsi);
        }
    }
    ck_assert_int_eq(nfuncs, 4);
    ck_assert_int_eq(nseen, 1 + 2 * 2); /* ABAR; MSI-X and modern BARs */
    /* Largest first: a virtio modern BAR (16 KiB) opens the window. */
    ck_assert_uint_eq(bar_addr(host.devices[VBLK_DEVFN], VIRTIO_PCI_MODERN_BAR),
                      cfg.mmio_base);
}
END_TEST

START_TEST(test_pci_assign_default_gsi)
{
    nirqs = pci_assign_resources(&host, &pc_windows, irqs, MAX_IRQS);
    ck_assert_int_eq(nirqs, 3);
    for (int k = 0; k < nirqs; k++) {
        ck_assert_uint_eq(irqs[k].gsi, 16 + (irqs[k].slot + irqs[k].pin) % 4);
    }
    ck_assert_uint_eq(
        pci_config_read(host.devices[AHCI_DEVFN], PCI_INTERRUPT_LINE, 1),
        16 + 0x1f % 4);
}
END_TEST

START_TEST(test_pci_assign_no_space)
{
    PciAssignConfig cfg = pc_windows;

    cfg.mmio_size = 0x8000; /* two 16 KiB BARs fill it: no room left */
    ck_assert_int_eq(pci_assign_resources(&host, &cfg, irqs, MAX_IRQS),
                     -ENOSPC);
    ck_assert_int_eq(pci_assign_resources(&host, &pc_windows, irqs, 2),
                     -ENOSPC);
    cfg = pc_windows;
    cfg.mmio_base = 0xfff00000; /* runs past 4 GiB */
    ck_assert_int_eq(pci_assign_resources(&host, &cfg, irqs, MAX_IRQS),
                     -EINVAL);
}
END_TEST

/* ---- MP table -------------------------------------------------------------
 */

static uint8_t sum(const uint8_t *p, size_t len)
{
    uint8_t s = 0;

    while (len--) {
        s += *p++;
    }
    return s;
}

/* Linux's smp_scan_config() over the BIOS area: the floating pointer. */
static const uint8_t *mp_scan(void)
{
    for (uint64_t a = 0xF0000; a < 0x100000; a += 16) {
        const uint8_t *p = gm.host + a;

        if (!memcmp(p, "_MP_", 4) && p[8] == 1 && sum(p, 16) == 0 &&
            (p[9] == 1 || p[9] == 4)) {
            return p;
        }
    }
    return NULL;
}

START_TEST(test_mptable)
{
    const MpPciIrq pci[] = {{2, 0, 18}, {3, 1, 20}, {0x1f, 3, 23}};
    MpTableConfig cfg = {.ncpus = 3,
                         .ioapic_addr = 0xfec00000,
                         .ioapic_id = 3,
                         .pci = pci,
                         .npci = 3};
    const uint8_t *mpf, *hdr, *e;
    uint32_t phys;
    uint16_t len, count;
    int cpus = 0, buses = 0, ioapics = 0, isa = 0, npci = 0, lint = 0;

    ck_assert_int_eq(mptable_write(&gm, &cfg), 0);
    mpf = mp_scan();
    ck_assert_ptr_nonnull(mpf);
    memcpy(&phys, mpf + 4, 4);
    ck_assert_uint_ge(phys, 0xF0000);
    hdr = gm.host + phys;
    ck_assert(!memcmp(hdr, "PCMP", 4));
    memcpy(&len, hdr + 4, 2);
    memcpy(&count, hdr + 34, 2);
    ck_assert_uint_le(phys + len, 0x100000);
    ck_assert_uint_eq(sum(hdr, len), 0);
    ck_assert_uint_eq(hdr[6], 4);
    ck_assert_uint_eq(count, 3 + 2 + 1 + 16 + 3 + 2);

    e = hdr + 44;
    for (int i = 0; i < count; i++) {
        switch (e[0]) {
        case 0:
            ck_assert_uint_eq(e[1], cpus);
            ck_assert_uint_eq(e[2], 0x14);
            ck_assert_uint_eq(e[3], cpus == 0 ? 3 : 1);
            cpus++;
            e += 20;
            continue;
        case 1:
            ck_assert(!memcmp(e + 2, e[1] == 0 ? "PCI   " : "ISA   ", 6));
            buses++;
            break;
        case 2:
            ck_assert_uint_eq(e[1], 3);
            ck_assert_uint_eq(e[2], 0x11);
            ck_assert_uint_eq(e[3], 1);
            ck_assert_uint_eq(e[4] | e[5] << 8 | e[6] << 16 |
                                  (uint32_t)e[7] << 24,
                              0xfec00000);
            ioapics++;
            break;
        case 3:
            ck_assert_uint_eq(e[1], 0); /* INT */
            ck_assert_uint_eq(e[6], 3);
            if (e[4] == 1) { /* ISA: identity, conforming */
                ck_assert_uint_eq(e[5], e[7]);
                ck_assert_uint_eq(e[5], isa);
                ck_assert_uint_eq(e[2] | e[3] << 8, 0);
                isa++;
            } else {
                ck_assert_uint_eq(e[4], 0);
                ck_assert_uint_eq(e[2] | e[3] << 8, 0x0f); /* low, level */
                ck_assert_uint_eq(e[5], pci[npci].slot << 2 | pci[npci].pin);
                ck_assert_uint_eq(e[7], pci[npci].gsi);
                npci++;
            }
            break;
        case 4:
            ck_assert_uint_eq(e[1], lint == 0 ? 3 : 1); /* ExtINT, NMI */
            ck_assert_uint_eq(e[6], 0xff);
            ck_assert_uint_eq(e[7], lint);
            lint++;
            break;
        default:
            ck_abort_msg("entry type %u", e[0]);
        }
        e += 8;
    }
    ck_assert_int_eq(e - hdr, len);
    ck_assert_int_eq(cpus, 3);
    ck_assert_int_eq(buses, 2);
    ck_assert_int_eq(ioapics, 1);
    ck_assert_int_eq(isa, 16);
    ck_assert_int_eq(npci, 3);
    ck_assert_int_eq(lint, 2);
}
END_TEST

START_TEST(test_mptable_bad_config)
{
    MpTableConfig cfg = {.ncpus = 0, .ioapic_addr = 0xfec00000};

    ck_assert_int_eq(mptable_write(&gm, &cfg), -EINVAL);
    cfg.ncpus = 4;
    cfg.ioapic_id = 2; /* collides with CPU 2's APIC ID */
    ck_assert_int_eq(mptable_write(&gm, &cfg), -EINVAL);
    cfg.ioapic_id = 4;
    cfg.npci = 1; /* and no entries */
    ck_assert_int_eq(mptable_write(&gm, &cfg), -EINVAL);
    ck_assert_ptr_null(mp_scan());
}
END_TEST

/* ---- Device tree --------------------------------------------------------- */

static uint8_t dtb[BOOT_FDT_MAX];

static FdtMachineInfo full_info(void)
{
    return (FdtMachineInfo){.ram_size = RAM_SIZE,
                            .ncpus = 3,
                            .cmdline = "console=ttyS0 quiet",
                            .pci = &host,
                            .pci_mmio_base = pc_windows.mmio_base,
                            .pci_mmio_size = pc_windows.mmio_size,
                            .pci_io_base = pc_windows.io_base,
                            .pci_io_size = pc_windows.io_size,
                            .serial_port = 0x3f8,
                            .serial_irq = 4,
                            .test_exit_port = FDT_TEST_EXIT_PORT,
                            .fw_cfg_port = FDT_FW_CFG_PORT};
}

static int node(const char *path)
{
    int off = fdt_path_offset(dtb, path);

    ck_assert_msg(off >= 0, "no node %s", path);
    return off;
}

/* Property @name of @path as cells; returns the count. */
static int cells(const char *path, const char *name, uint32_t *out, int max)
{
    int len;
    const fdt32_t *p = fdt_getprop(dtb, node(path), name, &len);

    ck_assert_msg(p && len % 4 == 0 && len / 4 <= max, "%s:%s", path, name);
    for (int i = 0; i < len / 4; i++) {
        out[i] = fdt32_to_cpu(p[i]);
    }
    return len / 4;
}

static uint32_t u32(const char *path, const char *name)
{
    uint32_t v;

    ck_assert_int_eq(cells(path, name, &v, 1), 1);
    return v;
}

static void str(const char *path, const char *name, const char *want)
{
    const char *v = fdt_getprop(dtb, node(path), name, NULL);

    ck_assert_msg(v && !strcmp(v, want), "%s:%s is %s", path, name, v);
}

static bool has(const char *path, const char *name)
{
    return fdt_getprop(dtb, node(path), name, NULL) != NULL;
}

/* reg and assigned-addresses of @path agree with @d's BARs. */
static void check_pci_node(const char *path, PciDevice *d)
{
    uint32_t reg[40], as_[40];
    int nreg = cells(path, "reg", reg, 40) / 5;
    int nas = cells(path, "assigned-addresses", as_, 40) / 5, nbars = 0;

    ck_assert_uint_eq(reg[0], d->devfn << 8); /* config space first */
    for (int i = 0; i < PCI_NUM_BARS; i++) {
        const PciBar *b = &d->bars[i];
        uint32_t hi = d->devfn << 8 | (0x10 + 4 * i);
        uint64_t a = bar_addr(d, i);
        bool in_reg = false, in_as = false;

        if (!b->size) {
            continue;
        }
        hi |= b->is_io ? 0x01000000 : b->is_64 ? 0x03000000 : 0x02000000;
        for (int k = 1; k < nreg; k++) {
            uint32_t *e = reg + 5 * k;

            in_reg |= (e[0] & ~0x40000000u) == hi &&
                      ((uint64_t)e[3] << 32 | e[4]) == b->size;
        }
        for (int k = 0; k < nas; k++) {
            uint32_t *e = as_ + 5 * k;

            in_as |= (e[0] & ~0x40000000u) == (hi | 0x80000000u) &&
                     ((uint64_t)e[1] << 32 | e[2]) == a &&
                     ((uint64_t)e[3] << 32 | e[4]) == b->size;
        }
        ck_assert_msg(in_reg && in_as, "%s BAR%d", path, i);
        nbars++;
        i += b->is_64;
    }
    ck_assert_int_eq(nreg, 1 + nbars);
    ck_assert_int_eq(nas, nbars);
    ck_assert_uint_eq(u32(path, "vendor-id"),
                      pci_config_read(d, PCI_VENDOR_ID, 2));
    ck_assert_uint_eq(u32(path, "device-id"),
                      pci_config_read(d, PCI_DEVICE_ID, 2));
    ck_assert_uint_eq(u32(path, "class-code"),
                      pci_config_read(d, PCI_CLASS_PROG, 3));
    ck_assert_uint_eq(u32(path, "interrupts"),
                      pci_config_read(d, PCI_INTERRUPT_LINE, 1));
}

START_TEST(test_fdt_machine)
{
    FdtMachineInfo info = full_info();
    uint32_t c[16];
    uint64_t rsv_addr, rsv_size;
    int ioapic, n = 0, child;

    PciAssignConfig cfg = pc_windows;
    cfg.gsi_of = test_gsi;
    ck_assert_int_eq(pci_assign_resources(&host, &cfg, irqs, MAX_IRQS), 3);
    ck_assert_int_eq(fdt_build_machine(dtb, sizeof(dtb), &info), 0);
    ck_assert_int_eq(fdt_check_header(dtb), 0);
    ck_assert_uint_le(fdt_totalsize(dtb), sizeof(dtb));
    ck_assert_int_eq(fdt_num_mem_rsv(dtb), 1);
    ck_assert_int_eq(fdt_get_mem_rsv(dtb, 0, &rsv_addr, &rsv_size), 0);
    ck_assert_uint_eq(rsv_addr, 0);
    ck_assert_uint_eq(rsv_size, FDT_RESERVED_LOW);
    ck_assert_uint_ge(rsv_size, BOOT_FDT_ADDR + BOOT_FDT_MAX);

    str("/", "compatible", "minivmm,pc");
    ck_assert_uint_eq(u32("/", "#address-cells"), 2);
    ck_assert_uint_eq(u32("/", "#size-cells"), 2);
    str("/chosen", "bootargs", "console=ttyS0 quiet");
    str("/chosen", "stdout-path", "/serial@3f8");
    str("/memory@0", "device_type", "memory");
    ck_assert_int_eq(cells("/memory@0", "reg", c, 16), 8);
    ck_assert_uint_eq(c[3], 0x9fc00);
    ck_assert_uint_eq(c[5], 0x100000);
    ck_assert_uint_eq((uint64_t)c[6] << 32 | c[7], RAM_SIZE - 0x100000);
    ck_assert_uint_eq(u32("/cpus/cpu@2", "reg"), 2);
    str("/cpus/cpu@0", "device_type", "cpu");
    ck_assert_int_lt(fdt_path_offset(dtb, "/cpus/cpu@3"), 0);

    ioapic = fdt_node_offset_by_compatible(dtb, -1, "minivmm,ioapic");
    ck_assert_int_eq(ioapic, node("/interrupt-controller@fec00000"));
    ck_assert_uint_eq(fdt_get_phandle(dtb, ioapic),
                      u32("/", "interrupt-parent"));
    ck_assert(has("/interrupt-controller@fec00000", "interrupt-controller"));
    ck_assert_uint_eq(u32("/interrupt-controller@fec00000", "#interrupt-cells"),
                      1);
    ck_assert_int_eq(cells("/interrupt-controller@fec00000", "reg", c, 16), 4);
    ck_assert_uint_eq(c[1], 0xfec00000);

    str("/pci", "device_type", "pci");
    str("/pci", "compatible", "minivmm,pci-conf1");
    ck_assert_uint_eq(u32("/pci", "#address-cells"), 3);
    ck_assert_uint_eq(u32("/pci", "#size-cells"), 2);
    ck_assert_int_eq(cells("/pci", "ranges", c, 16), 14);
    ck_assert_uint_eq(c[0], 0x01000000);
    ck_assert_uint_eq(c[2], 0xc000);
    ck_assert_uint_eq(c[6], 0x4000);
    ck_assert_uint_eq(c[7], 0x02000000);
    ck_assert_uint_eq(c[9], 0xc0000000);
    ck_assert_uint_eq(c[13], 0xe0000000 - 0xc0000000);
    fdt_for_each_subnode(child, dtb, node("/pci"))
    {
        n++;
    }
    ck_assert_int_eq(n, 4);
    ck_assert_int_ge(fdt_path_offset(dtb, "/pci/host-bridge@0"), 0);
    check_pci_node("/pci/ahci@1f,2", host.devices[AHCI_DEVFN]);
    check_pci_node("/pci/virtio-blk@2", host.devices[VBLK_DEVFN]);
    check_pci_node("/pci/virtio-blk@3", host.devices[VBLK2_DEVFN]);
    ck_assert_uint_eq(u32("/pci/ahci@1f,2", "class-code"), 0x010601);
    ck_assert(has("/pci/ahci@1f,2", "msi"));
    ck_assert(!has("/pci/ahci@1f,2", "msi-x"));
    ck_assert(has("/pci/virtio-blk@2", "msi-x"));
    ck_assert(!has("/pci/host-bridge@0", "interrupts"));

    str("/serial@3f8", "compatible", "ns16550a");
    ck_assert_int_eq(cells("/serial@3f8", "minivmm,io-port", c, 16), 2);
    ck_assert_uint_eq(c[0], 0x3f8);
    ck_assert_uint_eq(c[1], 8);
    ck_assert_uint_eq(u32("/serial@3f8", "interrupts"), 4);
    ck_assert_uint_eq(u32("/serial@3f8", "clock-frequency"), 1843200);
    str("/test-exit@f4", "compatible", "minivmm,test-exit");
    ck_assert_int_eq(cells("/test-exit@f4", "minivmm,io-port", c, 16), 2);
    ck_assert_uint_eq(c[0], 0xf4);
    ck_assert_uint_eq(u32("/test-exit@f4", "reg-io-width"), 4);
    ck_assert_int_eq(cells("/fw-cfg@510", "minivmm,io-port", c, 16), 2);
    ck_assert_uint_eq(c[0], 0x510);
}
END_TEST

START_TEST(test_fdt_minimal)
{
    FdtMachineInfo info = {.ram_size = RAM_SIZE, .ncpus = 1};

    ck_assert_int_eq(fdt_build_machine(dtb, sizeof(dtb), &info), 0);
    ck_assert_int_eq(fdt_check_header(dtb), 0);
    ck_assert(!has("/chosen", "bootargs"));
    ck_assert(!has("/chosen", "stdout-path"));
    ck_assert_int_lt(fdt_path_offset(dtb, "/pci"), 0);
    ck_assert_int_lt(fdt_path_offset(dtb, "/serial@3f8"), 0);
    ck_assert_int_ge(fdt_path_offset(dtb, "/cpus/cpu@0"), 0);
    info.ncpus = 0;
    ck_assert_int_eq(fdt_build_machine(dtb, sizeof(dtb), &info), -EINVAL);
}
END_TEST

START_TEST(test_fdt_no_space)
{
    FdtMachineInfo info = full_info();

    ck_assert_int_eq(fdt_build_machine(dtb, 16, &info), -ENOSPC);
    ck_assert_int_eq(fdt_build_machine(dtb, 1024, &info), -ENOSPC);
    ck_assert_int_eq(fdt_build_machine(dtb, sizeof(dtb), &info), 0);
}
END_TEST

Suite *fdt_suite(void)
{
    Suite *s = suite_create("machine-description");
    TCase *tc = tcase_create("pci-assign");

    tcase_add_checked_fixture(tc, machine_setup, machine_teardown);
    tcase_add_test(tc, test_pci_assign);
    tcase_add_test(tc, test_pci_assign_default_gsi);
    tcase_add_test(tc, test_pci_assign_no_space);
    suite_add_tcase(s, tc);

    tc = tcase_create("mptable");
    tcase_add_checked_fixture(tc, machine_setup, machine_teardown);
    tcase_add_test(tc, test_mptable);
    tcase_add_test(tc, test_mptable_bad_config);
    suite_add_tcase(s, tc);

    tc = tcase_create("fdt");
    tcase_add_checked_fixture(tc, machine_setup, machine_teardown);
    tcase_add_test(tc, test_fdt_machine);
    tcase_add_test(tc, test_fdt_minimal);
    tcase_add_test(tc, test_fdt_no_space);
    suite_add_tcase(s, tc);
    return s;
}
