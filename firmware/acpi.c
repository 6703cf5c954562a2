/*
 * The ACPI table builder (see acpi.h). Field layouts are the ACPI 6.4
 * specification's: 5.2.5 RSDP, 5.2.6 table header, 5.2.8 XSDT, 5.2.9 FADT,
 * 5.2.12 MADT; MCFG is from the PCI Firmware Specification 3.2, 4.1.2.
 *
 * Why hardware-reduced ACPI (FADT flag HW_REDUCED_ACPI), as Firecracker,
 * cloud-hypervisor and QEMU's microvm do, rather than q35's PM1 blocks:
 * there is no SCI, no PM timer, no GPE block and no FACS to emulate, just
 * three byte-wide registers (devices/acpi-pm.h). What Linux 6.1 does
 * differently when it sees the flag (acpi_generic_reduced_hw_init()):
 *  - no legacy PIC: it never programs the 8259s, and ISA IRQs 0-15 get no
 *    identity mapping, so a legacy device's interrupt must be described.
 *    COM1 therefore has a _CRS with IRQ 4 in the DSDT, and the PCI
 *    devices' INTx come from _PRT (Linux ignores the MP table once it has
 *    ACPI). KVM's in-kernel 8259s stay unprogrammed (vector base 0) yet
 *    routed for GSIs 0-15: in the nested test boots this did no harm
 *    (the serial port's interrupts worked), but it is the one part of
 *    this choice that rests on observation rather than on the spec;
 *  - no PIT or HPET timer set-up: the local APIC timer is the clock
 *    event device from the start (TSC-deadline where CPUID offers it,
 *    else calibrated against the TSC, whose rate kvm-clock gives), and
 *    kvm-clock the clocksource. The PIT stays in KVM, unused.
 * Nothing else changes: IOAPIC, MSI and MSI-X work as on any PC.
 *
 * Interrupt wiring is the MP table's, entry for entry: KVM's routing
 * (vmm/kvm.c) sends GSIs 0-15 to IOAPIC pins 0-15 one to one, so no ISA
 * IRQ needs an Interrupt Source Override. A PC (and QEMU's q35) has one
 * for IRQ 0 -> GSI 2 because its timer is wired to pin 2; here the
 * in-kernel PIT raises GSI 0 = pin 0, and under hardware-reduced ACPI
 * Linux does not use it anyway. There is no SCI to override either.
 */
#include <errno.h>
#include <string.h>

#include "devices/acpi-pm.h"
#include "devices/pci-regs.h"
#include "devices/rtc.h"
#include "firmware/acpi.h"
#include "firmware/aml.h"
#include "firmware/boot.h"

#define ACPI_OEM_ID       "MINIVM"
#define ACPI_OEM_TABLE_ID "MINIVMM "
#define ACPI_CREATOR_ID   "MVMM"
#define ACPI_ALIGN        16
#define ACPI_LAPIC_ADDR   0xFEE00000u

#define RSDP_REVISION 2 /* ACPI 2.0+: with the XSDT and extended checksum */
#define XSDT_REVISION 1
#define FADT_REVISION 6 /* ACPI 6.x: with the sleep registers ... */
#define FADT_MINOR    4 /* ... 6.4 */
#define MADT_REVISION 5
#define MCFG_REVISION 1
#define DSDT_REVISION 2 /* 64-bit AML integers */

/* FADT flags and IA-PC boot architecture flags. */
#define FADT_RESET_REG_SUP   (1u << 10)
#define FADT_HW_REDUCED_ACPI (1u << 20)
#define IAPC_LEGACY_DEVICES  (1u << 0) /* COM1 and the CMOS clock */
#define IAPC_VGA_NOT_PRESENT (1u << 2)

/* Generic Address Structure: the registers are bytes in I/O space. */
#define GAS_SYSTEM_IO   1
#define GAS_ACCESS_BYTE 1

/* MADT entries. */
#define MADT_PCAT_COMPAT (1u << 0) /* KVM does have the two 8259s */
#define MADT_LAPIC       0
#define MADT_IOAPIC      1
#define MADT_LAPIC_NMI   4
#define MADT_LAPIC_ON    (1u << 0)
#define MADT_ALL_CPUS    0xff
#define MADT_LINT1       1
#define MADT_CONFORMING  0 /* polarity and trigger as the bus says */

#define PCI_SLOTS      32
#define PCI_INTX_PINS  4
#define ECAM_BUS_SIZE  (1u << 20)
#define PCI_CONF1_PORT 0xcf8
#define PCI_CONF1_LEN  8

typedef struct __attribute__((packed)) AcpiRsdp {
    char signature[8]; /* "RSD PTR " */
    uint8_t checksum;  /* of the first 20 bytes (the ACPI 1.0 part) */
    char oem_id[6];
    uint8_t revision;
    uint32_t rsdt_addr; /* 0: there is only an XSDT */
    uint32_t length;
    uint64_t xsdt_addr;
    uint8_t ext_checksum; /* of all 36 bytes */
    uint8_t reserved[3];
} AcpiRsdp;

typedef struct __attribute__((packed)) AcpiHeader {
    char signature[4];
    uint32_t length;
    uint8_t revision;
    uint8_t checksum; /* the whole table sums to 0 */
    char oem_id[6];
    char oem_table_id[8];
    uint32_t oem_revision;
    char creator_id[4];
    uint32_t creator_revision;
} AcpiHeader;

typedef struct __attribute__((packed)) AcpiGas {
    uint8_t space_id;
    uint8_t bit_width;
    uint8_t bit_offset;
    uint8_t access_size;
    uint64_t address;
} AcpiGas;

typedef struct __attribute__((packed)) AcpiFadt {
    AcpiHeader h;
    uint32_t firmware_ctrl; /* FACS: none on a hardware-reduced machine */
    uint32_t dsdt;
    uint8_t reserved0;
    uint8_t preferred_pm_profile;
    uint16_t sci_int;
    uint32_t smi_cmd;
    uint8_t acpi_enable, acpi_disable, s4bios_req, pstate_cnt;
    uint32_t pm1a_evt_blk, pm1b_evt_blk, pm1a_cnt_blk, pm1b_cnt_blk;
    uint32_t pm2_cnt_blk, pm_tmr_blk, gpe0_blk, gpe1_blk;
    uint8_t pm1_evt_len, pm1_cnt_len, pm2_cnt_len, pm_tmr_len;
    uint8_t gpe0_blk_len, gpe1_blk_len, gpe1_base, cst_cnt;
    uint16_t p_lvl2_lat, p_lvl3_lat, flush_size, flush_stride;
    uint8_t duty_offset, duty_width, day_alrm, mon_alrm, century;
    uint16_t iapc_boot_arch;
    uint8_t reserved1;
    uint32_t flags;
    AcpiGas reset_reg;
    uint8_t reset_value;
    uint16_t arm_boot_arch;
    uint8_t minor_version;
    uint64_t x_firmware_ctrl;
    uint64_t x_dsdt;
    AcpiGas x_pm1a_evt_blk, x_pm1b_evt_blk, x_pm1a_cnt_blk, x_pm1b_cnt_blk;
    AcpiGas x_pm2_cnt_blk, x_pm_tmr_blk, x_gpe0_blk, x_gpe1_blk;
    AcpiGas sleep_control_reg;
    AcpiGas sleep_status_reg;
    char hypervisor_vendor[8];
} AcpiFadt;

typedef struct __attribute__((packed)) AcpiMadt {
    AcpiHeader h;
    uint32_t lapic_addr;
    uint32_t flags;
} AcpiMadt;

typedef struct __attribute__((packed)) MadtLapic {
    uint8_t type, length;
    uint8_t uid; /* the ACPI processor UID */
    uint8_t apic_id;
    uint32_t flags;
} MadtLapic;

typedef struct __attribute__((packed)) MadtIoApic {
    uint8_t type, length;
    uint8_t id;
    uint8_t reserved;
    uint32_t addr;
    uint32_t gsi_base;
} MadtIoApic;

typedef struct __attribute__((packed)) MadtLapicNmi {
    uint8_t type, length;
    uint8_t uid;
    uint16_t flags;
    uint8_t lint;
} MadtLapicNmi;

typedef struct __attribute__((packed)) AcpiMcfg {
    AcpiHeader h;
    uint64_t reserved;
    uint64_t base; /* one allocation: segment 0 */
    uint16_t segment;
    uint8_t start_bus, end_bus;
    uint32_t reserved1;
} AcpiMcfg;

_Static_assert(sizeof(AcpiRsdp) == 36, "RSDP");
_Static_assert(sizeof(AcpiHeader) == 36, "table header");
_Static_assert(sizeof(AcpiGas) == 12, "generic address");
_Static_assert(sizeof(AcpiFadt) == 276, "FADT of ACPI 6.x");
_Static_assert(sizeof(AcpiMadt) == 44, "MADT header");
_Static_assert(sizeof(MadtLapic) == 8, "MADT local APIC");
_Static_assert(sizeof(MadtIoApic) == 12, "MADT IOAPIC");
_Static_assert(sizeof(MadtLapicNmi) == 6, "MADT local APIC NMI");
_Static_assert(sizeof(AcpiMcfg) == 60, "MCFG with one allocation");

static uint8_t acpi_checksum(const void *p, size_t len)
{
    const uint8_t *b = p;
    uint8_t sum = 0;

    while (len--) {
        sum += *b++;
    }
    return -sum;
}

/* The tables' area in guest RAM, handed out front to back. */
typedef struct AcpiArea {
    uint8_t *base;
    size_t used, cap;
    AcpiTable *tables;
    int ntables;
} AcpiArea;

static uint64_t area_gpa(const AcpiArea *ar, const void *p)
{
    return BOOT_ACPI_ADDR + ((const uint8_t *)p - ar->base);
}

/* @len zeroed bytes, aligned; NULL if the area is full. */
static void *area_alloc(AcpiArea *ar, size_t len)
{
    size_t at = (ar->used + ACPI_ALIGN - 1) & ~(size_t)(ACPI_ALIGN - 1);

    if (at > ar->cap || len > ar->cap - at) {
        return NULL;
    }
    ar->used = at + len;
    return ar->base + at;
}

static void area_record(AcpiArea *ar, const char *name, const void *p,
                        uint32_t len)
{
    AcpiTable *t = &ar->tables[ar->ntables++];

    memcpy(t->name, name, 4);
    t->name[4] = '\0';
    t->addr = area_gpa(ar, p);
    t->len = len;
}

/* Fill in a header of @len bytes and checksum the table it heads. */
static void table_finish(AcpiArea *ar, AcpiHeader *h, const char *sig,
                         uint8_t revision, uint32_t len)
{
    memcpy(h->signature, sig, 4);
    h->length = len;
    h->revision = revision;
    memcpy(h->oem_id, ACPI_OEM_ID, 6);
    memcpy(h->oem_table_id, ACPI_OEM_TABLE_ID, 8);
    h->oem_revision = 1;
    memcpy(h->creator_id, ACPI_CREATOR_ID, 4);
    h->creator_revision = 1;
    h->checksum = 0;
    h->checksum = acpi_checksum(h, len);
    area_record(ar, sig, h, len);
}

static AcpiGas io_byte(uint16_t port)
{
    return (AcpiGas){.space_id = GAS_SYSTEM_IO,
                     .bit_width = 8,
                     .access_size = GAS_ACCESS_BYTE,
                     .address = port};
}

/* ---- DSDT -----------------------------------------------------------------
 *
 * What the encoder writes, as ASL (iasl -d shows the same):
 *
 *   Scope (\_SB) {
 *       Device (PCI0) {                         the host bridge, bus 0
 *           Name (_HID, EisaId ("PNP0A08"))     PCI Express root ...
 *           Name (_CID, EisaId ("PNP0A03"))     ... that is also PCI
 *           Name (_SEG, 0)  Name (_BBN, 0)  Name (_UID, 0)
 *           Name (_CRS, ResourceTemplate () {
 *               WordBusNumber (...)   buses 0..ecam_last_bus
 *               IO (Decode16, 0xCF8, 0xCF8, 1, 8)   configuration ports
 *               WordIO (...)          the I/O window, 0xC000-0xFFFF
 *               DWordMemory (...)     the MMIO window
 *           })
 *           Name (_PRT, Package () {  for each slot S and pin P:
 *               Package () { 0xSSSSFFFF, P, Zero, GSI }, ...
 *           })                        GSI from the board's swizzle
 *       }
 *       Device (COM1) { _HID PNP0501, _UID 1, _CRS: IO 0x3F8/8, IRQ 4 }
 *       Device (RTC)  { _HID PNP0B00, _CRS: IO 0x70/2 }
 *       Device (MRES) { _HID PNP0C02, _CRS: Memory32Fixed (the ECAM) }
 *   }
 *   Name (_S5, Package () { 5, 0 })   SLP_TYP for soft-off
 *
 * The ECAM window is also reserved in e820; the PNP0C02 ("motherboard
 * resources") device is where the PCI Firmware Specification says an OS
 * should find that reservation, and Linux checks both.
 */

static void dsdt_pci_crs(Aml *a, const AcpiConfig *cfg)
{
    uint8_t buf[128];
    Aml res;

    aml_init(&res, buf, sizeof(buf));
    aml_res_bus_window(&res, 0, cfg->ecam_last_bus);
    aml_res_io(&res, PCI_CONF1_PORT, PCI_CONF1_LEN);
    aml_res_io_window(&res, cfg->io_base, cfg->io_size);
    aml_res_mem_window(&res, cfg->mmio_base, cfg->mmio_size);
    aml_res_end(&res);
    aml_name(a, "_CRS");
    aml_buffer(a, res.buf, res.len);
    a->overflow |= res.overflow;
}

/* Returns -EINVAL if the board names a GSI the IOAPIC cannot have. */
static int dsdt_pci_prt(Aml *a, const AcpiConfig *cfg)
{
    size_t prt;

    aml_name(a, "_PRT");
    prt = aml_package(a, PCI_SLOTS * PCI_INTX_PINS);
    for (int slot = 0; slot < PCI_SLOTS; slot++) {
        for (int pin = 0; pin < PCI_INTX_PINS; pin++) {
            int gsi = cfg->gsi_of(cfg->opaque, slot, pin);
            size_t entry;

            if (gsi < 0 || gsi > 255) {
                return -EINVAL;
            }
            entry = aml_package(a, 4);
            aml_integer(a, (uint64_t)slot << 16 | 0xFFFF); /* any function */
            aml_integer(a, pin);
            aml_integer(a, 0); /* no link device: the next is a GSI */
            aml_integer(a, gsi);
            aml_close(a, entry);
        }
    }
    aml_close(a, prt);
    return 0;
}

static void dsdt_com1(Aml *a, const AcpiConfig *cfg)
{
    uint8_t buf[32];
    Aml res;
    size_t dev = aml_device(a, "COM1");

    aml_name(a, "_HID");
    aml_eisaid(a, "PNP0501"); /* 16550A-compatible UART */
    aml_name(a, "_UID");
    aml_integer(a, 1);
    aml_init(&res, buf, sizeof(buf));
    aml_res_io(&res, cfg->serial_port, 8);
    aml_res_irq(&res, cfg->serial_irq);
    aml_res_end(&res);
    aml_name(a, "_CRS");
    aml_buffer(a, res.buf, res.len);
    aml_close(a, dev);
}

/*
 * The CMOS clock, described so that Linux's rtc_cmos driver binds through
 * PNP rather than through the legacy platform device: that one asks for
 * ISA IRQ 8, which has no mapping under hardware-reduced ACPI (no legacy
 * PIC), and its probe fails with -EINVAL. No IRQ here on purpose: the
 * model (devices/rtc.h) raises no interrupts, and without one rtc_cmos
 * runs without alarms instead of waiting for interrupts that never come.
 */
static void dsdt_rtc(Aml *a)
{
    uint8_t buf[16];
    Aml res;
    size_t dev = aml_device(a, "RTC");

    aml_name(a, "_HID");
    aml_eisaid(a, "PNP0B00"); /* AT real-time clock */
    aml_init(&res, buf, sizeof(buf));
    aml_res_io(&res, RTC_PORT, 2);
    aml_res_end(&res);
    aml_name(a, "_CRS");
    aml_buffer(a, res.buf, res.len);
    aml_close(a, dev);
}

static void dsdt_ecam_reservation(Aml *a, const AcpiConfig *cfg)
{
    uint8_t buf[32];
    Aml res;
    size_t dev = aml_device(a, "MRES");

    aml_name(a, "_HID");
    aml_eisaid(a, "PNP0C02");
    aml_init(&res, buf, sizeof(buf));
    aml_res_mem32_fixed(&res, (uint32_t)cfg->ecam_base,
                        (cfg->ecam_last_bus + 1u) * ECAM_BUS_SIZE);
    aml_res_end(&res);
    aml_name(a, "_CRS");
    aml_buffer(a, res.buf, res.len);
    aml_close(a, dev);
}

static int dsdt_body(Aml *a, const AcpiConfig *cfg)
{
    size_t sb = aml_scope(a, "\\_SB");
    size_t pci = aml_device(a, "PCI0"), s5;
    int ret;

    aml_name(a, "_HID");
    aml_eisaid(a, "PNP0A08");
    aml_name(a, "_CID");
    aml_eisaid(a, "PNP0A03");
    aml_name(a, "_SEG");
    aml_integer(a, 0);
    aml_name(a, "_BBN");
    aml_integer(a, 0);
    aml_name(a, "_UID");
    aml_integer(a, 0);
    dsdt_pci_crs(a, cfg);
    ret = dsdt_pci_prt(a, cfg);
    if (ret < 0) {
        return ret;
    }
    aml_close(a, pci);
    dsdt_com1(a, cfg);
    dsdt_rtc(a);
    dsdt_ecam_reservation(a, cfg);
    aml_close(a, sb);

    aml_name(a, "_S5");
    s5 = aml_package(a, 2);
    aml_integer(a, ACPI_S5_SLP_TYP); /* SLP_TYPa: what acpi-pm.c expects */
    aml_integer(a, 0);               /* SLP_TYPb: no PM1b block */
    aml_close(a, s5);
    return 0;
}

static AcpiHeader *build_dsdt(AcpiArea *ar, const AcpiConfig *cfg, int *ret)
{
    AcpiHeader *h = area_alloc(ar, sizeof(*h));
    Aml a;

    *ret = -ENOMEM;
    if (!h) {
        return NULL;
    }
    /* The AML goes right after the header, into the rest of the area. */
    aml_init(&a, h + 1, ar->cap - ar->used);
    *ret = dsdt_body(&a, cfg);
    if (*ret < 0 || a.overflow) {
        *ret = *ret < 0 ? *ret : -ENOMEM;
        return NULL;
    }
    ar->used += a.len;
    table_finish(ar, h, "DSDT", DSDT_REVISION, sizeof(*h) + a.len);
    return h;
}

/* ---- FADT, MADT, MCFG, XSDT, RSDP ----------------------------------------
 */

static AcpiFadt *build_fadt(AcpiArea *ar, uint64_t dsdt)
{
    AcpiFadt *f = area_alloc(ar, sizeof(*f));

    if (!f) {
        return NULL;
    }
    f->dsdt = (uint32_t)dsdt; /* below 1 MiB: both fields can hold it */
    f->x_dsdt = dsdt;
    f->flags = FADT_HW_REDUCED_ACPI | FADT_RESET_REG_SUP;
    f->iapc_boot_arch = IAPC_LEGACY_DEVICES | IAPC_VGA_NOT_PRESENT;
    f->reset_reg = io_byte(ACPI_PM_PORT + ACPI_RESET_REG);
    f->reset_value = ACPI_RESET_VALUE;
    f->minor_version = FADT_MINOR;
    f->sleep_control_reg = io_byte(ACPI_PM_PORT + ACPI_SLEEP_CONTROL);
    f->sleep_status_reg = io_byte(ACPI_PM_PORT + ACPI_SLEEP_STATUS);
    memcpy(f->hypervisor_vendor, "MINIVMM", 8);
    table_finish(ar, &f->h, "FACP", FADT_REVISION, sizeof(*f));
    return f;
}

static AcpiMadt *build_madt(AcpiArea *ar, const AcpiConfig *cfg)
{
    size_t len = sizeof(AcpiMadt) + cfg->ncpus * sizeof(MadtLapic) +
                 sizeof(MadtIoApic) + sizeof(MadtLapicNmi);
    AcpiMadt *madt = area_alloc(ar, len);
    uint8_t *p;

    if (!madt) {
        return NULL;
    }
    madt->lapic_addr = ACPI_LAPIC_ADDR;
    madt->flags = MADT_PCAT_COMPAT;
    p = (uint8_t *)(madt + 1);
    for (int i = 0; i < cfg->ncpus; i++) {
        MadtLapic e = {.type = MADT_LAPIC,
                       .length = sizeof(e),
                       .uid = i,
                       .apic_id = i,
                       .flags = MADT_LAPIC_ON};

        memcpy(p, &e, sizeof(e));
        p += sizeof(e);
    }
    MadtIoApic io = {.type = MADT_IOAPIC,
                     .length = sizeof(io),
                     .id = cfg->ioapic_id,
                     .addr = cfg->ioapic_addr,
                     .gsi_base = 0};
    memcpy(p, &io, sizeof(io));
    p += sizeof(io);
    /* NMI on every CPU's LINT1, as the MP table and kvm-vcpu.c set it. */
    MadtLapicNmi nmi = {.type = MADT_LAPIC_NMI,
                        .length = sizeof(nmi),
                        .uid = MADT_ALL_CPUS,
                        .flags = MADT_CONFORMING,
                        .lint = MADT_LINT1};
    memcpy(p, &nmi, sizeof(nmi));
    table_finish(ar, &madt->h, "APIC", MADT_REVISION, len);
    return madt;
}

static AcpiMcfg *build_mcfg(AcpiArea *ar, const AcpiConfig *cfg)
{
    AcpiMcfg *m = area_alloc(ar, sizeof(*m));

    if (!m) {
        return NULL;
    }
    m->base = cfg->ecam_base;
    m->segment = 0;
    m->start_bus = 0;
    m->end_bus = cfg->ecam_last_bus;
    table_finish(ar, &m->h, "MCFG", MCFG_REVISION, sizeof(*m));
    return m;
}

static AcpiHeader *build_xsdt(AcpiArea *ar, const uint64_t *entries, int n)
{
    size_t len = sizeof(AcpiHeader) + n * sizeof(uint64_t);
    AcpiHeader *h = area_alloc(ar, len);

    if (!h) {
        return NULL;
    }
    memcpy(h + 1, entries, n * sizeof(uint64_t)); /* unaligned is fine */
    table_finish(ar, h, "XSDT", XSDT_REVISION, len);
    return h;
}

static void build_rsdp(AcpiRsdp *r, uint64_t xsdt)
{
    memcpy(r->signature, "RSD PTR ", 8);
    memcpy(r->oem_id, ACPI_OEM_ID, 6);
    r->revision = RSDP_REVISION;
    r->length = sizeof(*r);
    r->xsdt_addr = xsdt;
    r->checksum = acpi_checksum(r, 20);
    r->ext_checksum = acpi_checksum(r, sizeof(*r));
}

static bool config_ok(const AcpiConfig *c)
{
    return c->ncpus >= 1 && c->ncpus <= 254 && c->ioapic_id >= c->ncpus &&
           c->ioapic_id != MADT_ALL_CPUS && c->gsi_of &&
           c->ecam_base + (c->ecam_last_bus + 1ULL) * ECAM_BUS_SIZE <=
               UINT32_MAX + 1ULL &&
           !(c->ecam_base & (ECAM_BUS_SIZE - 1)) && c->mmio_size &&
           c->mmio_base + (uint64_t)c->mmio_size <= UINT32_MAX + 1ULL &&
           /* The Word Address Space Descriptor's length is 16 bits. */
           c->io_size && c->io_size <= 0xFFFF &&
           c->io_base + c->io_size <= 0x10000 && c->serial_irq < 16;
}

int acpi_build(GuestMemory *gm, const AcpiConfig *cfg, AcpiTable *tables)
{
    AcpiArea ar = {.base = gm_ptr(gm, BOOT_ACPI_ADDR, BOOT_ACPI_MAX),
                   .cap = BOOT_ACPI_MAX,
                   .tables = tables};
    AcpiRsdp *rsdp;
    AcpiHeader *dsdt, *xsdt;
    uint64_t entries[3];
    AcpiFadt *fadt;
    AcpiMadt *madt;
    AcpiMcfg *mcfg;
    int ret;

    if (!config_ok(cfg)) {
        return -EINVAL;
    }
    if (!ar.base) {
        return -ENOMEM;
    }
    memset(ar.base, 0, ar.cap); /* RAM may hold an earlier boot's tables */
    /* The RSDP first: 0xE0000 is 16-byte aligned, where the scan looks. */
    rsdp = area_alloc(&ar, sizeof(*rsdp));
    ar.ntables = 1; /* tables[0] is the RSDP, recorded last */
    dsdt = build_dsdt(&ar, cfg, &ret);
    if (!dsdt) {
        return ret;
    }
    fadt = build_fadt(&ar, area_gpa(&ar, dsdt));
    madt = fadt ? build_madt(&ar, cfg) : NULL;
    mcfg = madt ? build_mcfg(&ar, cfg) : NULL;
    if (!mcfg) {
        return -ENOMEM;
    }
    entries[0] = area_gpa(&ar, fadt);
    entries[1] = area_gpa(&ar, madt);
    entries[2] = area_gpa(&ar, mcfg);
    xsdt = build_xsdt(&ar, entries, 3);
    if (!xsdt) {
        return -ENOMEM;
    }
    build_rsdp(rsdp, area_gpa(&ar, xsdt));
    tables[0] = (AcpiTable){
        .name = "RSDP", .addr = area_gpa(&ar, rsdp), .len = sizeof(*rsdp)};
    return ar.ntables;
}
