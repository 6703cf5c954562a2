/*
 * Tests of the device core: guest memory accessors, the address space and
 * PCI (configuration mechanism #1, BARs, capabilities, MSI, MSI-X, INTx),
 * driven through the ports a guest would use.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "devices/address-space.h"
#include "devices/fw-cfg.h"
#include "devices/memory.h"
#include "devices/pci.h"
#include "devices/serial.h"
#include "tests/qos/pci.h"
#include "tests/qos/qos-local.h"
#include "tests/unit/suites.h"

#define RAM_SIZE (16 << 20)

static GuestMemory ram;
static AddressSpace as;
static PciHost host;

/* ---- A device with one register window that records accesses ----------------
 */

typedef struct Recorder {
    uint64_t last_offset;
    uint64_t last_value;
    unsigned last_size;
    unsigned writes;
} Recorder;

static uint64_t rec_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)opaque;
    (void)size;
    return 0x1000 + offset;
}

static void rec_write(void *opaque, uint64_t offset, uint64_t value,
                      unsigned size)
{
    Recorder *r = opaque;

    r->last_offset = offset;
    r->last_value = value;
    r->last_size = size;
    r->writes++;
}

static const RegionOps rec_ops = {.read = rec_read, .write = rec_write};

static void setup(void)
{
    ck_assert_int_eq(gm_init(&ram, RAM_SIZE), 0);
    as_init(&as, &ram);
    pci_host_init(&host, &as);
}

static void teardown(void)
{
    pci_host_cleanup(&host);
    as_cleanup(&as);
    gm_cleanup(&ram);
}

/* ---- Guest memory
 * --------------------------------------------------------------- */

START_TEST(test_gm_bounds)
{
    uint32_t v = 0x12345678;

    ck_assert_int_eq(gm_st32(&ram, RAM_SIZE - 4, v), 0);
    ck_assert_int_eq(gm_ld32(&ram, RAM_SIZE - 4, &v), 0);
    ck_assert_uint_eq(v, 0x12345678);
    /* One byte over the end, far past it, and wrapping around 2^64. */
    ck_assert_int_eq(gm_st32(&ram, RAM_SIZE - 3, v), -EFAULT);
    ck_assert_int_eq(gm_ld32(&ram, UINT64_MAX - 1, &v), -EFAULT);
    ck_assert_ptr_null(gm_ptr(&ram, 16, UINT64_MAX - 8));
    ck_assert_ptr_null(gm_ptr(&ram, RAM_SIZE + 1, 0));
    ck_assert_ptr_nonnull(gm_ptr(&ram, RAM_SIZE, 0));
}
END_TEST

/* ---- The address space
 * ------------------------------------------------------------ */

START_TEST(test_as_add_find_and_dispatch)
{
    Recorder a = {0}, b = {0};
    uint64_t v;

    ck_assert_int_eq(
        as_add(&as, AS_MMIO, 0xfe000000, 0x1000, &rec_ops, &a, "a"), 0);
    ck_assert_int_eq(
        as_add(&as, AS_MMIO, 0xfe002000, 0x1000, &rec_ops, &b, "b"), 0);
    /* Overlaps, RAM, empty and wrapping ranges are refused. */
    ck_assert_int_eq(
        as_add(&as, AS_MMIO, 0xfe000800, 0x1000, &rec_ops, &b, "x"), -EEXIST);
    ck_assert_int_eq(as_add(&as, AS_MMIO, 0x1000, 0x1000, &rec_ops, &b, "x"),
                     -EEXIST);
    ck_assert_int_eq(as_add(&as, AS_MMIO, 0xfe004000, 0, &rec_ops, &b, "x"),
                     -EINVAL);
    ck_assert_int_eq(
        as_add(&as, AS_MMIO, UINT64_MAX - 10, 0x100, &rec_ops, &b, "x"),
        -EINVAL);

    ck_assert(as_write(&as, AS_MMIO, 0xfe002010, 4, 0xabcd));
    ck_assert_uint_eq(b.last_offset, 0x10);
    ck_assert_uint_eq(b.last_value, 0xabcd);
    ck_assert_uint_eq(a.writes, 0);
    ck_assert(as_read(&as, AS_MMIO, 0xfe000ffc, 4, &v));
    ck_assert_uint_eq(v, 0x1000 + 0xffc);

    /* A hole reads all-ones; an access crossing a region's end misses. */
    ck_assert(!as_read(&as, AS_MMIO, 0xfe001000, 4, &v));
    ck_assert_uint_eq(v, 0xffffffff);
    ck_assert(!as_read(&as, AS_MMIO, 0xfe000ffe, 4, &v));
    ck_assert(!as_write(&as, AS_MMIO, 0xfe000ffc, 8, 1));
    ck_assert_uint_eq(a.writes, 0);

    /* MMIO that hits RAM is RAM. */
    ck_assert(as_write(&as, AS_MMIO, 0x2000, 4, 0xdeadbeef));
    ck_assert_uint_eq(*(uint32_t *)gm_ptr(&ram, 0x2000, 4), 0xdeadbeef);

    ck_assert_int_eq(as_remove(&as, AS_MMIO, 0xfe000000, &a), 0);
    ck_assert_ptr_null(as_find(&as, AS_MMIO, 0xfe000000));
    ck_assert_int_eq(as_remove(&as, AS_MMIO, 0xfe000000, &a), -ENOENT);
}
END_TEST

/* ---- PCI through 0xCF8/0xCFC
 * -------------------------------------------------------- */

static uint32_t cfg_addr(uint8_t devfn, uint8_t reg)
{
    return 0x80000000u | (uint32_t)devfn << 8 | reg;
}

static uint32_t cfg_read(uint8_t devfn, uint8_t reg, unsigned size)
{
    uint64_t v;

    as_write(&as, AS_PIO, 0xcf8, 4, cfg_addr(devfn, reg & ~3));
    as_read(&as, AS_PIO, 0xcfc + (reg & 3), size, &v);
    return v;
}

static void cfg_write(uint8_t devfn, uint8_t reg, uint32_t value, unsigned size)
{
    as_write(&as, AS_PIO, 0xcf8, 4, cfg_addr(devfn, reg & ~3));
    as_write(&as, AS_PIO, 0xcfc + (reg & 3), size, value);
}

typedef struct MsiLog {
    uint64_t addr;
    uint32_t data;
    int count;
} MsiLog;

static void msi_record(void *opaque, uint64_t addr, uint32_t data)
{
    MsiLog *l = opaque;

    l->addr = addr;
    l->data = data;
    l->count++;
}

typedef struct IrqLog {
    int level;
    int gsi;
} IrqLog;

static void irq_record(void *opaque, int gsi, int level)
{
    IrqLog *l = opaque;

    l->gsi = gsi;
    l->level = level;
}

typedef struct TestDev {
    PciDevice pci;
    Recorder mem, io, mem64;
    MsiLog msi;
    MsiSink sink;
    IrqLog irq;
} TestDev;

#define TESTDEV_DEVFN PCI_DEVFN(3, 0)

static void testdev_init(TestDev *t)
{
    memset(t, 0, sizeof(*t));
    pci_device_init(&t->pci, "testdev", 0x1234, 0x5678, 0x018000, 2);
    pci_register_bar(&t->pci, 0, 0x1000, 0, &rec_ops, &t->mem);
    pci_register_bar(&t->pci, 1, 0x20, PCI_BAR_IO, &rec_ops, &t->io);
    pci_register_bar(&t->pci, 2, 0x4000, PCI_BAR_MEM64, &rec_ops, &t->mem64);
    pci_msi_init(&t->pci);
    ck_assert_int_eq(pci_msix_init(&t->pci, 4, 4), 0);
    t->sink = (MsiSink){.send = msi_record, .opaque = &t->msi};
    t->pci.msi_sink = &t->sink;
    t->pci.intx =
        (IrqLine){.set_level = irq_record, .opaque = &t->irq, .gsi = 11};
    ck_assert_int_eq(pci_host_plug(&host, &t->pci, TESTDEV_DEVFN), 0);
}

/* The device lives on the test's stack: take it off the bus before return. */
static void testdev_fini(TestDev *t)
{
    pci_host_unplug(&host, &t->pci);
    pci_device_cleanup(&t->pci);
}

START_TEST(test_pci_enumeration_and_reset_values)
{
    TestDev t;

    testdev_init(&t);
    /* The host bridge at 00:00.0, our device at 00:03.0, nothing else. */
    ck_assert_uint_eq(cfg_read(0, 0, 4), 0x29c08086);
    ck_assert_uint_eq(cfg_read(TESTDEV_DEVFN, 0, 4), 0x56781234);
    ck_assert_uint_eq(cfg_read(TESTDEV_DEVFN, PCI_REVISION_ID, 4), 0x01800002);
    ck_assert_uint_eq(cfg_read(PCI_DEVFN(4, 0), 0, 4), 0xffffffff);
    ck_assert_uint_eq(cfg_read(PCI_DEVFN(4, 0), 0, 2), 0xffff);
    /* Firmware-less reset state: decoding off, BARs zero (type bits only). */
    ck_assert_uint_eq(cfg_read(TESTDEV_DEVFN, PCI_COMMAND, 2), 0);
    ck_assert_uint_eq(cfg_read(TESTDEV_DEVFN, PCI_BAR0, 4), 0);
    ck_assert_uint_eq(cfg_read(TESTDEV_DEVFN, PCI_BAR0 + 4, 4), PCI_BAR_IO);
    ck_assert_uint_eq(cfg_read(TESTDEV_DEVFN, PCI_BAR0 + 8, 4), PCI_BAR_MEM64);
    /* IDs are read-only; the interrupt line register is not. */
    cfg_write(TESTDEV_DEVFN, 0, 0, 4);
    ck_assert_uint_eq(cfg_read(TESTDEV_DEVFN, 0, 4), 0x56781234);
    cfg_write(TESTDEV_DEVFN, PCI_INTERRUPT_LINE, 11, 1);
    ck_assert_uint_eq(cfg_read(TESTDEV_DEVFN, PCI_INTERRUPT_LINE, 1), 11);
    ck_assert_uint_eq(cfg_read(TESTDEV_DEVFN, PCI_INTERRUPT_PIN, 1), 1);
    /* Bus 1 does not exist; the enable bit matters. */
    as_write(&as, AS_PIO, 0xcf8, 4, 0x80010000);
    uint64_t v;
    as_read(&as, AS_PIO, 0xcfc, 4, &v);
    ck_assert_uint_eq(v, 0xffffffff);
    as_write(&as, AS_PIO, 0xcf8, 4, (uint32_t)TESTDEV_DEVFN << 8);
    as_read(&as, AS_PIO, 0xcfc, 4, &v);
    ck_assert_uint_eq(v, 0xffffffff);
    testdev_fini(&t);
}
END_TEST

START_TEST(test_pci_config_address_low_bits_select_byte)
{
    TestDev t;
    uint64_t v;

    testdev_init(&t);
    /* CONFIG_ADDRESS with low bits 2: CFC reads from byte 2 of the dword. */
    as_write(&as, AS_PIO, 0xcf8, 4, cfg_addr(TESTDEV_DEVFN, 0) | 2);
    as_read(&as, AS_PIO, 0xcfc, 2, &v);
    ck_assert_uint_eq(v, 0x5678);
    as_read(&as, AS_PIO, 0xcf8, 4, &v);
    ck_assert_uint_eq(v, cfg_addr(TESTDEV_DEVFN, 0) | 2);
    /* Byte accesses at CFC+n. */
    ck_assert_uint_eq(cfg_read(TESTDEV_DEVFN, 1, 1), 0x12);
    ck_assert_uint_eq(cfg_read(TESTDEV_DEVFN, 3, 1), 0x56);
    /* A word write to 0xCF8 does not move the latch. */
    as_write(&as, AS_PIO, 0xcf8, 4, cfg_addr(TESTDEV_DEVFN, 0) | 2);
    as_write(&as, AS_PIO, 0xcf8, 2, 0);
    as_read(&as, AS_PIO, 0xcf8, 4, &v);
    ck_assert_uint_eq(v, cfg_addr(TESTDEV_DEVFN, 0) | 2);
    testdev_fini(&t);
}
END_TEST

START_TEST(test_pci_bar_sizing_and_placement)
{
    TestDev t;
    uint64_t v;

    testdev_init(&t);
    /* Sizing: write all-ones, read back the mask. */
    cfg_write(TESTDEV_DEVFN, PCI_BAR0, 0xffffffff, 4);
    ck_assert_uint_eq(cfg_read(TESTDEV_DEVFN, PCI_BAR0, 4), 0xfffff000);
    cfg_write(TESTDEV_DEVFN, PCI_BAR0 + 4, 0xffffffff, 4);
    ck_assert_uint_eq(cfg_read(TESTDEV_DEVFN, PCI_BAR0 + 4, 4), 0xffffffe1);
    cfg_write(TESTDEV_DEVFN, PCI_BAR0 + 8, 0xffffffff, 4);
    cfg_write(TESTDEV_DEVFN, PCI_BAR0 + 12, 0xffffffff, 4);
    ck_assert_uint_eq(cfg_read(TESTDEV_DEVFN, PCI_BAR0 + 8, 4), 0xffffc004);
    ck_assert_uint_eq(cfg_read(TESTDEV_DEVFN, PCI_BAR0 + 12, 4), 0xffffffff);

    /* Placed but not decoded: nothing answers. */
    cfg_write(TESTDEV_DEVFN, PCI_BAR0, 0xfebf0000, 4);
    cfg_write(TESTDEV_DEVFN, PCI_BAR0 + 4, 0xc000, 4);
    cfg_write(TESTDEV_DEVFN, PCI_BAR0 + 8, 0x00000000, 4);
    cfg_write(TESTDEV_DEVFN, PCI_BAR0 + 12, 0x1, 4); /* 4 GiB + 0 */
    ck_assert(!as_write(&as, AS_MMIO, 0xfebf0004, 4, 7));
    ck_assert(!as_write(&as, AS_PIO, 0xc004, 1, 7));

    /* Memory decode on: both memory BARs answer; I/O still does not. */
    cfg_write(TESTDEV_DEVFN, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
    ck_assert(as_write(&as, AS_MMIO, 0xfebf0004, 4, 7));
    ck_assert_uint_eq(t.mem.last_offset, 4);
    ck_assert(as_read(&as, AS_MMIO, 0x100000010ULL, 4, &v));
    ck_assert_uint_eq(v, 0x1010);
    ck_assert(!as_write(&as, AS_PIO, 0xc004, 1, 7));

    /* I/O on, then move BAR0: the old address goes dead. */
    cfg_write(TESTDEV_DEVFN, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO,
              2);
    ck_assert(as_write(&as, AS_PIO, 0xc004, 1, 9));
    ck_assert_uint_eq(t.io.last_value, 9);
    cfg_write(TESTDEV_DEVFN, PCI_BAR0, 0xfebe0000, 4);
    ck_assert(!as_write(&as, AS_MMIO, 0xfebf0004, 4, 7));
    ck_assert(as_write(&as, AS_MMIO, 0xfebe0008, 4, 7));
    ck_assert_uint_eq(t.mem.last_offset, 8);

    /* A BAR placed over RAM is refused, not mapped over it. */
    cfg_write(TESTDEV_DEVFN, PCI_BAR0, 0x100000, 4);
    ck_assert(as_write(&as, AS_MMIO, 0x100000, 4, 0x55));
    ck_assert_uint_eq(*(uint32_t *)gm_ptr(&ram, 0x100000, 4), 0x55);

    /* Decode off: everything unmapped. */
    cfg_write(TESTDEV_DEVFN, PCI_COMMAND, 0, 2);
    ck_assert(!as_read(&as, AS_MMIO, 0x100000010ULL, 4, &v));
    ck_assert(!as_read(&as, AS_PIO, 0xc004, 1, &v));
    testdev_fini(&t);
}
END_TEST

START_TEST(test_pci_capabilities_msi_intx)
{
    TestDev t;
    uint8_t cap;
    int found_msi = 0, found_msix = 0, hops = 0;

    testdev_init(&t);
    ck_assert(cfg_read(TESTDEV_DEVFN, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
    for (cap = cfg_read(TESTDEV_DEVFN, PCI_CAPABILITY_LIST, 1); cap;
         cap = cfg_read(TESTDEV_DEVFN, cap + 1, 1)) {
        ck_assert_int_lt(++hops, 48);
        found_msi += cfg_read(TESTDEV_DEVFN, cap, 1) == PCI_CAP_ID_MSI;
        found_msix += cfg_read(TESTDEV_DEVFN, cap, 1) == PCI_CAP_ID_MSIX;
    }
    ck_assert_int_eq(found_msi, 1);
    ck_assert_int_eq(found_msix, 1);

    /* MSI: nothing until enabled and bus mastering is on. */
    cap = t.pci.msi_cap;
    cfg_write(TESTDEV_DEVFN, cap + PCI_MSI_ADDRESS_LO, 0xfee00000, 4);
    cfg_write(TESTDEV_DEVFN, cap + PCI_MSI_ADDRESS_HI, 0, 4);
    cfg_write(TESTDEV_DEVFN, cap + PCI_MSI_DATA_64, 0x4041, 2);
    pci_msi_notify(&t.pci);
    ck_assert_int_eq(t.msi.count, 0);
    cfg_write(TESTDEV_DEVFN, cap + PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE, 2);
    pci_msi_notify(&t.pci);
    ck_assert_int_eq(t.msi.count, 0);
    cfg_write(TESTDEV_DEVFN, PCI_COMMAND, PCI_COMMAND_MASTER, 2);
    pci_msi_notify(&t.pci);
    ck_assert_int_eq(t.msi.count, 1);
    ck_assert_uint_eq(t.msi.addr, 0xfee00000);
    ck_assert_uint_eq(t.msi.data, 0x4041);

    /* INTx follows the level unless disabled; the status bit always does. */
    pci_set_intx(&t.pci, 1);
    ck_assert_int_eq(t.irq.level, 1);
    ck_assert_int_eq(t.irq.gsi, 11);
    ck_assert(cfg_read(TESTDEV_DEVFN, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT);
    cfg_write(TESTDEV_DEVFN, PCI_COMMAND,
              PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE, 2);
    ck_assert_int_eq(t.irq.level, 0);
    cfg_write(TESTDEV_DEVFN, PCI_COMMAND, PCI_COMMAND_MASTER, 2);
    ck_assert_int_eq(t.irq.level, 1);
    pci_set_intx(&t.pci, 0);
    ck_assert_int_eq(t.irq.level, 0);
    ck_assert(!(cfg_read(TESTDEV_DEVFN, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT));
    testdev_fini(&t);
}
END_TEST

START_TEST(test_pci_msix_mask_pending_unmask)
{
    TestDev t;
    uint8_t cap;
    uint64_t table = 0xfebd0000, v;

    testdev_init(&t);
    cap = t.pci.msix_cap;
    ck_assert_uint_eq(cfg_read(TESTDEV_DEVFN, cap + PCI_MSIX_FLAGS, 2) &
                          PCI_MSIX_FLAGS_QSIZE,
                      3);
    cfg_write(TESTDEV_DEVFN, PCI_BAR0 + 16, table, 4);
    cfg_write(TESTDEV_DEVFN, PCI_COMMAND,
              PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
    cfg_write(TESTDEV_DEVFN, cap + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE, 2);

    /* Vector 2: address and data, still masked (the reset state). */
    as_write(&as, AS_MMIO, table + 2 * 16, 4, 0xfee01000);
    as_write(&as, AS_MMIO, table + 2 * 16 + 4, 4, 0);
    as_write(&as, AS_MMIO, table + 2 * 16 + 8, 4, 0x31);
    pci_msix_notify(&t.pci, 2);
    ck_assert_int_eq(t.msi.count, 0);
    uint64_t pba = table + ((4 * 16 + 7) & ~7);
    ck_assert(as_read(&as, AS_MMIO, pba, 8, &v));
    ck_assert_uint_eq(v, 1 << 2);

    /* Unmasking delivers the pending message and clears the PBA bit. */
    as_write(&as, AS_MMIO, table + 2 * 16 + 12, 4, 0);
    ck_assert_int_eq(t.msi.count, 1);
    ck_assert_uint_eq(t.msi.addr, 0xfee01000);
    ck_assert_uint_eq(t.msi.data, 0x31);
    as_read(&as, AS_MMIO, pba, 8, &v);
    ck_assert_uint_eq(v, 0);

    /* Function mask holds everything back until cleared. */
    cfg_write(TESTDEV_DEVFN, cap + PCI_MSIX_FLAGS,
              PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL, 2);
    pci_msix_notify(&t.pci, 2);
    ck_assert_int_eq(t.msi.count, 1);
    cfg_write(TESTDEV_DEVFN, cap + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE, 2);
    ck_assert_int_eq(t.msi.count, 2);

    /* Out-of-range vectors and writes to the PBA are ignored. */
    pci_msix_notify(&t.pci, 4);
    pci_msix_notify(&t.pci, 0xffff);
    ck_assert_int_eq(t.msi.count, 2);
    as_write(&as, AS_MMIO, pba, 8, ~0ULL);
    as_read(&as, AS_MMIO, pba, 8, &v);
    ck_assert_uint_eq(v, 0);
    testdev_fini(&t);
}
END_TEST

/* The test drivers' PCI layer, over the in-process transport. */
START_TEST(test_qos_pci_driver)
{
    TestDev t;
    Qos q;
    QPciDevice d;
    uint64_t size, mem, io, mem64;

    testdev_init(&t);
    qos_local_init(&q, &as);
    ck_assert(qpci_find(&q, 0x8086, 0x29c0, 0, &d));
    ck_assert_uint_eq(d.devfn, 0);
    ck_assert(!qpci_find(&q, 0x1234, 0x5678, 1, &d));
    ck_assert(qpci_find(&q, 0x1234, 0x5678, 0, &d));
    ck_assert_uint_eq(d.devfn, TESTDEV_DEVFN);
    ck_assert_uint_eq(qpci_find_capability(&d, PCI_CAP_ID_MSIX, 0),
                      t.pci.msix_cap);
    ck_assert_uint_eq(qpci_find_capability(&d, 0x42, 0), 0);

    mem = qpci_map_bar(&d, 0, &size);
    ck_assert_uint_eq(size, 0x1000);
    io = qpci_map_bar(&d, 1, &size);
    ck_assert_uint_eq(size, 0x20);
    ck_assert(qpci_bar_is_io(&d, 1));
    mem64 = qpci_map_bar(&d, 2, &size);
    ck_assert_uint_eq(size, 0x4000);
    qpci_enable(&d);
    qos_writel(&q, mem + 0x40, 0x77);
    ck_assert_uint_eq(t.mem.last_offset, 0x40);
    ck_assert_uint_eq(t.mem.last_value, 0x77);
    qos_outb(&q, io + 3, 0x5);
    ck_assert_uint_eq(t.io.last_offset, 3);
    ck_assert_uint_eq(qos_readl(&q, mem64 + 8), 0x1008);
    testdev_fini(&t);
}
END_TEST

/* ---- 8250 UART and fw_cfg
 * --------------------------------------------------------- */

static uint64_t pio_in(uint16_t port)
{
    uint64_t v;

    as_read(&as, AS_PIO, port, 1, &v);
    return v;
}

static void pio_out(uint16_t port, uint8_t v)
{
    as_write(&as, AS_PIO, port, 1, v);
}

START_TEST(test_serial)
{
    IrqLog irq = {0};
    Serial uart;
    int fds[2];
    char c;

    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(
        serial_init(
            &uart, &as, 0x3f8,
            (IrqLine){.set_level = irq_record, .opaque = &irq, .gsi = 4},
            fds[1]),
        0);
    /* Output goes straight out; the transmitter is always empty. */
    pio_out(0x3f8, 'K');
    ck_assert_int_eq(read(fds[0], &c, 1), 1);
    ck_assert_int_eq(c, 'K');
    ck_assert_uint_eq(pio_in(0x3fd) & 0x60, 0x60);
    /* Enabling the THR-empty interrupt raises IRQ 4; reading IIR acks it. */
    pio_out(0x3f9, 0x02);
    ck_assert_int_eq(irq.gsi, 4);
    ck_assert_int_eq(irq.level, 1);
    ck_assert_uint_eq(pio_in(0x3fa) & 0x0f, 0x02);
    ck_assert_int_eq(irq.level, 0);
    ck_assert_uint_eq(pio_in(0x3fa) & 0x0f, 0x01);
    /* Divisor latch and scratch registers hold what is written. */
    pio_out(0x3fb, 0x80);
    pio_out(0x3f8, 0x01);
    pio_out(0x3f9, 0x00);
    ck_assert_uint_eq(pio_in(0x3f8), 0x01);
    pio_out(0x3fb, 0x03);
    pio_out(0x3ff, 0xa5);
    ck_assert_uint_eq(pio_in(0x3ff), 0xa5);
    /* Loopback: what is sent comes back as received data, with an IRQ. */
    pio_out(0x3f9, 0x01);
    pio_out(0x3fc, 0x10);
    pio_out(0x3f8, 'x');
    ck_assert_uint_eq(pio_in(0x3fd) & 0x01, 0x01);
    ck_assert_int_eq(irq.level, 1);
    ck_assert_uint_eq(pio_in(0x3fa) & 0x0f, 0x04);
    ck_assert_uint_eq(pio_in(0x3f8), 'x');
    ck_assert_uint_eq(pio_in(0x3fd) & 0x01, 0);
    ck_assert_int_eq(irq.level, 0);
    /* Input from the board; a full FIFO takes no more. */
    uint8_t many[40];
    memset(many, 'i', sizeof(many));
    ck_assert_uint_eq(serial_receive(&uart, many, sizeof(many)),
                      SERIAL_RX_FIFO);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

START_TEST(test_fw_cfg)
{
    FwCfg fw;
    uint64_t ram_size = 0;
    char sig[5] = {0};

    ck_assert_int_eq(fw_cfg_init(&fw, &as, RAM_SIZE, 2), 0);
    as_write(&as, AS_PIO, 0x510, 2, FW_CFG_SIGNATURE);
    for (int i = 0; i < 4; i++) {
        sig[i] = pio_in(0x511);
    }
    ck_assert_str_eq(sig, "QEMU");
    ck_assert_uint_eq(pio_in(0x511), 0); /* past the end */
    as_write(&as, AS_PIO, 0x510, 2, FW_CFG_RAM_SIZE);
    for (int i = 0; i < 8; i++) {
        ram_size |= pio_in(0x511) << (8 * i);
    }
    ck_assert_uint_eq(ram_size, RAM_SIZE);
    as_write(&as, AS_PIO, 0x510, 2, FW_CFG_NB_CPUS);
    ck_assert_uint_eq(pio_in(0x511), 2);
    as_write(&as, AS_PIO, 0x510, 2, 0x4242); /* unknown key: no data */
    ck_assert_uint_eq(pio_in(0x511), 0);
}
END_TEST

Suite *pci_suite(void)
{
    Suite *s = suite_create("devices-core");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_gm_bounds);
    tcase_add_test(tc, test_as_add_find_and_dispatch);
    tcase_add_test(tc, test_pci_enumeration_and_reset_values);
    tcase_add_test(tc, test_pci_config_address_low_bits_select_byte);
    tcase_add_test(tc, test_pci_bar_sizing_and_placement);
    tcase_add_test(tc, test_pci_capabilities_msi_intx);
    tcase_add_test(tc, test_pci_msix_mask_pending_unmask);
    tcase_add_test(tc, test_qos_pci_driver);
    tcase_add_test(tc, test_serial);
    tcase_add_test(tc, test_fw_cfg);
    suite_add_tcase(s, tc);
    return s;
}
