/*
 * Tests of the ACPI tables (firmware/acpi.c) and of the registers they
 * describe (devices/acpi-pm.c).
 *
 * The tables are read back from guest RAM at the offsets the specifications
 * give (ACPI 6.4: 5.2.5 RSDP, 5.2.6 header, 5.2.8 XSDT, 5.2.9 FADT, 5.2.12
 * MADT, 20 AML, 6.4 resource descriptors; PCI Firmware 3.2: 4.1.2 MCFG),
 * never through the builder's structures or encoder: a layout mistake in
 * acpi.c must show up here instead of being mirrored. The DSDT is walked
 * object by object, so a wrong PkgLength anywhere fails too.
 *
 * The configuration is not the board's: every value is distinct (the
 * IOAPIC ID is not ncpus, the ECAM has 64 buses, each _PRT entry has its
 * own GSI), so a field filled from the wrong source is caught.
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "devices/acpi-pm.h"
#include "devices/address-space.h"
#include "devices/memory.h"
#include "firmware/acpi.h"
#include "firmware/boot.h"
#include "tests/unit/suites.h"

#define RAM_SIZE    (2ULL << 20) /* the ACPI area is below 1 MiB */
#define STALE_BYTE  0xA5         /* what an earlier boot left in RAM */
#define HEADER_LEN  36
#define LAPIC_ADDR  0xFEE00000u
#define IOAPIC_ADDR 0xFEC00000u
#define ECAM_BASE   0xB0000000ULL
#define ECAM_BUSES  64
#define MMIO_BASE   0xC0000000u
#define MMIO_SIZE   0x10000000u
#define IO_BASE     0xC000
#define IO_SIZE     0x4000
#define COM1_PORT   0x3F8
#define COM1_IRQ    4
#define PCI_SLOTS   32
#define PCI_PINS    4
#define MAX_CPUS    254 /* 255 would leave the IOAPIC no 8-bit ID */

/* The vCPU counts the table tests run with: the smallest, the largest. */
static const int cpu_counts[] = {1, 2, 4, 64, MAX_CPUS};
#define NCOUNTS (int)(sizeof(cpu_counts) / sizeof(cpu_counts[0]))

static GuestMemory gm;
static AcpiConfig cfg;
static AcpiTable tables[ACPI_MAX_TABLES];
static int ntables;

/* Each (slot, pin) its own GSI, so a _PRT entry cannot be swapped unseen. */
static int test_gsi_of(void *opaque, int slot, int pin)
{
    (void)opaque;
    return 16 + slot * PCI_PINS + pin;
}

static AcpiConfig test_config(int ncpus)
{
    return (AcpiConfig){
        .ncpus = ncpus,
        /* Not simply ncpus, so the MADT test tells the two apart. */
        .ioapic_id = ncpus < MAX_CPUS ? ncpus + 1 : MAX_CPUS,
        .ioapic_addr = IOAPIC_ADDR,
        .ecam_base = ECAM_BASE,
        .ecam_last_bus = ECAM_BUSES - 1,
        .mmio_base = MMIO_BASE,
        .mmio_size = MMIO_SIZE,
        .io_base = IO_BASE,
        .io_size = IO_SIZE,
        .gsi_of = test_gsi_of,
        .serial_port = COM1_PORT,
        .serial_irq = COM1_IRQ,
    };
}

static void ram(uint64_t size)
{
    ck_assert_int_eq(gm_init(&gm, size), 0);
}

/* Build into RAM that is not zero: the builder must clear what it uses. */
static void build(int ncpus)
{
    ram(RAM_SIZE);
    memset(gm.host + BOOT_ACPI_ADDR, STALE_BYTE, BOOT_ACPI_MAX);
    cfg = test_config(ncpus);
    ntables = acpi_build(&gm, &cfg, tables);
    ck_assert_int_eq(ntables, ACPI_MAX_TABLES);
}

static void teardown(void)
{
    gm_cleanup(&gm);
    memset(tables, 0, sizeof(tables));
}

/* @len bytes at @gpa, which must be RAM. */
static const uint8_t *bytes_at(uint64_t gpa, uint64_t len)
{
    const uint8_t *p = gm_ptr(&gm, gpa, len);

    ck_assert_msg(p, "0x%llx+%llu is not RAM", (unsigned long long)gpa,
                  (unsigned long long)len);
    return p;
}

/* A little-endian field of @len bytes, at most 8. */
static uint64_t le(const uint8_t *p, unsigned len)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < len; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

static bool all_zero(const uint8_t *p, size_t len)
{
    while (len--) {
        if (*p++) {
            return false;
        }
    }
    return true;
}

static uint8_t byte_sum(const uint8_t *p, size_t len)
{
    uint8_t sum = 0;

    while (len--) {
        sum += *p++;
    }
    return sum;
}

/* The one table acpi_build() reported as @name. */
static const AcpiTable *reported(const char *name)
{
    const AcpiTable *found = NULL;

    for (int i = 0; i < ntables; i++) {
        if (!strcmp(tables[i].name, name)) {
            ck_assert_msg(!found, "%s reported twice", name);
            found = &tables[i];
        }
    }
    ck_assert_msg(found, "%s not reported", name);
    return found;
}

/* The bytes of a reported table, at most its reported length. */
static const uint8_t *table_bytes(const char *name, uint32_t *len)
{
    const AcpiTable *t = reported(name);

    *len = t->len;
    return bytes_at(t->addr, t->len);
}

/* ---- RSDP, headers, XSDT --------------------------------------------------
 */

START_TEST(test_rsdp)
{
    const AcpiTable *t;
    const uint8_t *r;

    build(4);
    t = reported("RSDP");
    /* Linux scans the BIOS area on 16-byte boundaries for the signature. */
    ck_assert_uint_eq(t->addr, BOOT_ACPI_ADDR);
    ck_assert_uint_eq(t->len, 36);
    r = bytes_at(t->addr, 36);
    ck_assert(!memcmp(r, "RSD PTR ", 8));
    ck_assert_uint_eq(r[15], 2); /* revision: ACPI 2.0+, with the XSDT */
    ck_assert_uint_eq(le(r + 20, 4), 36);
    ck_assert_uint_eq(byte_sum(r, 20), 0);
    ck_assert_uint_eq(byte_sum(r, 36), 0);
    ck_assert_uint_eq(le(r + 24, 8), reported("XSDT")->addr);
}
END_TEST

/* Every table's header agrees with what was reported, and they all fit. */
START_TEST(test_headers)
{
    static const char *const names[] = {"RSDP", "XSDT", "FACP",
                                        "APIC", "MCFG", "DSDT"};

    build(cpu_counts[_i]);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        reported(names[i]); /* each exactly once */
    }
    for (int i = 0; i < ntables; i++) {
        const AcpiTable *t = &tables[i];
        const uint8_t *h;

        ck_assert_msg(t->addr >= BOOT_ACPI_ADDR &&
                          t->len <= BOOT_ACPI_ADDR + BOOT_ACPI_MAX - t->addr,
                      "%s outside the ACPI area", t->name);
        for (int j = 0; j < i; j++) {
            const AcpiTable *u = &tables[j];

            ck_assert_msg(t->addr + t->len <= u->addr ||
                              u->addr + u->len <= t->addr,
                          "%s overlaps %s", t->name, u->name);
        }
        if (!strcmp(t->name, "RSDP")) {
            continue; /* no common header: test_rsdp */
        }
        ck_assert_uint_ge(t->len, HEADER_LEN);
        h = bytes_at(t->addr, t->len);
        ck_assert_msg(!memcmp(h, t->name, 4), "%s has signature %.4s", t->name,
                      (const char *)h);
        ck_assert_uint_eq(le(h + 4, 4), t->len);
        ck_assert_msg(byte_sum(h, t->len) == 0, "%s checksum", t->name);
    }
}
END_TEST

START_TEST(test_xsdt)
{
    static const char *const want[] = {"FACP", "APIC", "MCFG"};
    bool seen[3] = {false};
    uint32_t len;
    const uint8_t *x;

    build(4);
    x = table_bytes("XSDT", &len);
    ck_assert_uint_eq(x[8], 1); /* revision */
    ck_assert_uint_eq(len, HEADER_LEN + 3 * 8);
    for (unsigned e = 0; e < 3; e++) {
        uint64_t addr = le(x + HEADER_LEN + 8 * e, 8);
        const uint8_t *sig = bytes_at(addr, 4);
        unsigned w;

        for (w = 0; w < 3 && memcmp(sig, want[w], 4); w++) {
        }
        ck_assert_msg(w < 3, "XSDT entry %u is %.4s", e, (const char *)sig);
        ck_assert_msg(!seen[w], "XSDT lists %s twice", want[w]);
        seen[w] = true;
        ck_assert_uint_eq(addr, reported(want[w])->addr);
    }
}
END_TEST

/* ---- FADT -----------------------------------------------------------------
 */

/* Field offsets (ACPI 6.4, table 5.9). */
#define FADT_FIRMWARE_CTRL   36
#define FADT_DSDT            40
#define FADT_SCI_INT         46
#define FADT_SMI_CMD         48
#define FADT_PM1A_EVT_BLK    56 /* the first of eight 32-bit blocks */
#define FADT_FLAGS           112
#define FADT_RESET_REG       116
#define FADT_RESET_VALUE     128
#define FADT_MINOR_VERSION   131
#define FADT_X_FIRMWARE_CTRL 132
#define FADT_X_DSDT          140
#define FADT_X_PM1A_EVT_BLK  148 /* the first of eight GASes */
#define FADT_SLEEP_CONTROL   244
#define FADT_SLEEP_STATUS    256
#define FADT_LEN             276 /* up to the hypervisor vendor identity */

#define FADT_HW_REDUCED_ACPI (1u << 20)
#define FADT_RESET_REG_SUP   (1u << 10)

/* Generic Address Structure (5.2.3.2). */
#define GAS_LEN         12
#define GAS_BIT_WIDTH   1
#define GAS_ADDRESS     4
#define GAS_SYSTEM_IO   1
#define GAS_ACCESS_BYTE 1

/* A Generic Address Structure that is one I/O port. */
static void check_io_byte(const uint8_t *gas, uint16_t port, const char *what)
{
    ck_assert_msg(gas[0] == GAS_SYSTEM_IO, "%s: space %u", what, gas[0]);
    ck_assert_msg(gas[GAS_BIT_WIDTH] == 8, "%s: %u bits", what,
                  gas[GAS_BIT_WIDTH]);
    ck_assert_msg(gas[2] == 0, "%s: bit offset %u", what, gas[2]);
    ck_assert_msg(gas[3] == GAS_ACCESS_BYTE, "%s: access %u", what, gas[3]);
    ck_assert_msg(le(gas + GAS_ADDRESS, 8) == port, "%s: at 0x%llx", what,
                  (unsigned long long)le(gas + GAS_ADDRESS, 8));
}

START_TEST(test_fadt)
{
    uint64_t dsdt;
    uint32_t len;
    const uint8_t *f;

    build(4);
    dsdt = reported("DSDT")->addr;
    f = table_bytes("FACP", &len);
    ck_assert_uint_eq(len, FADT_LEN);
    ck_assert_uint_eq(f[8], 6);                  /* revision: ACPI 6.x ... */
    ck_assert_uint_eq(f[FADT_MINOR_VERSION], 4); /* ... 6.4 */
    ck_assert(le(f + FADT_FLAGS, 4) & FADT_HW_REDUCED_ACPI);
    ck_assert(le(f + FADT_FLAGS, 4) & FADT_RESET_REG_SUP);
    /* Both DSDT fields may be set; an OS uses X_DSDT when it is non-zero. */
    ck_assert_uint_eq(le(f + FADT_X_DSDT, 8), dsdt);
    ck_assert(le(f + FADT_DSDT, 4) == 0 || le(f + FADT_DSDT, 4) == dsdt);
    check_io_byte(f + FADT_SLEEP_CONTROL, ACPI_PM_PORT + ACPI_SLEEP_CONTROL,
                  "sleep control");
    check_io_byte(f + FADT_SLEEP_STATUS, ACPI_PM_PORT + ACPI_SLEEP_STATUS,
                  "sleep status");
    check_io_byte(f + FADT_RESET_REG, ACPI_PM_PORT + ACPI_RESET_REG,
                  "reset register");
    ck_assert_uint_eq(f[FADT_RESET_VALUE], ACPI_RESET_VALUE);
    /*
     * Hardware-reduced means none of the fixed hardware: a stray PM1 block,
     * PM timer, GPE block, SCI or SMI port would send an OS looking for it.
     */
    ck_assert_uint_eq(le(f + FADT_FIRMWARE_CTRL, 4), 0); /* no FACS */
    ck_assert_uint_eq(le(f + FADT_X_FIRMWARE_CTRL, 8), 0);
    ck_assert_uint_eq(le(f + FADT_SCI_INT, 2), 0);
    ck_assert_uint_eq(le(f + FADT_SMI_CMD, 4), 0);
    for (unsigned i = 0; i < 8; i++) {
        ck_assert_msg(le(f + FADT_PM1A_EVT_BLK + 4 * i, 4) == 0,
                      "FADT block %u", i);
        ck_assert_msg(all_zero(f + FADT_X_PM1A_EVT_BLK + GAS_LEN * i, GAS_LEN),
                      "FADT X_ block %u", i);
    }
}
END_TEST

/* ---- MADT -----------------------------------------------------------------
 */

#define MADT_PCAT_COMPAT 1u
#define MADT_LAPIC       0
#define MADT_IOAPIC      1
#define MADT_LAPIC_NMI   4
#define MADT_X2APIC      9
#define MADT_ENABLED     1u
#define MADT_ALL_CPUS    0xFF

START_TEST(test_madt)
{
    int ncpus = cpu_counts[_i], cpus = 0, ioapics = 0, nmis = 0;
    uint32_t len, off;
    const uint8_t *m;

    build(ncpus);
    m = table_bytes("APIC", &len);
    ck_assert_uint_eq(le(m + 36, 4), LAPIC_ADDR);
    /* KVM has the two 8259s: an OS should mask them before using APICs. */
    ck_assert(le(m + 40, 4) & MADT_PCAT_COMPAT);
    for (off = 44; off < len; off += m[off + 1]) {
        const uint8_t *e = m + off;

        ck_assert_msg(len - off >= 2 && e[1] >= 2 && e[1] <= len - off,
                      "MADT entry at %u: length %u", off, e[1]);
        switch (e[0]) {
        case MADT_LAPIC: /* 5.2.12.2 */
            ck_assert_uint_eq(e[1], 8);
            ck_assert_int_eq(e[3], cpus); /* APIC ID = vCPU index */
            ck_assert_int_eq(e[2], cpus); /* so is the processor UID */
            ck_assert(le(e + 4, 4) & MADT_ENABLED);
            cpus++;
            break;
        case MADT_X2APIC: /* 5.2.12.12 */
            ck_assert_uint_eq(e[1], 16);
            ck_assert_int_eq(le(e + 4, 4), cpus);
            ck_assert_int_eq(le(e + 12, 4), cpus);
            ck_assert(le(e + 8, 4) & MADT_ENABLED);
            cpus++;
            break;
        case MADT_IOAPIC: /* 5.2.12.3 */
            ck_assert_uint_eq(e[1], 12);
            ck_assert_uint_eq(e[2], cfg.ioapic_id);
            ck_assert_uint_eq(le(e + 4, 4), IOAPIC_ADDR);
            ck_assert_uint_eq(le(e + 8, 4), 0); /* GSI base */
            ioapics++;
            break;
        case MADT_LAPIC_NMI: /* 5.2.12.7 */
            ck_assert_uint_eq(e[1], 6);
            ck_assert_uint_eq(e[2], MADT_ALL_CPUS);
            ck_assert_uint_eq(e[5], 1); /* LINT1 */
            nmis++;
            break;
        default:
            ck_abort_msg("MADT entry type %u at %u", e[0], off);
        }
    }
    ck_assert_uint_eq(off, len); /* the entries fill the table exactly */
    ck_assert_int_eq(cpus, ncpus);
    ck_assert_int_eq(ioapics, 1);
    ck_assert_int_eq(nmis, 1);
}
END_TEST

/* ---- MCFG -----------------------------------------------------------------
 */

START_TEST(test_mcfg)
{
    uint32_t len;
    const uint8_t *m;

    build(4);
    m = table_bytes("MCFG", &len);
    ck_assert_uint_eq(len, 44 + 16); /* one allocation */
    ck_assert_uint_eq(le(m + 44, 8), ECAM_BASE);
    ck_assert_uint_eq(le(m + 52, 2), 0); /* segment */
    ck_assert_uint_eq(m[54], 0);         /* start bus */
    ck_assert_uint_eq(m[55], ECAM_BUSES - 1);
}
END_TEST

/* ---- DSDT: a reader for the AML the builder writes ------------------------
 *
 * A cursor over one object's body; reading past its end fails the test, so
 * every PkgLength is checked by the walk itself.
 */

#define AML_NAME_OP      0x08
#define AML_SCOPE_OP     0x10
#define AML_BUFFER_OP    0x11
#define AML_PACKAGE_OP   0x12
#define AML_EXT_PREFIX   0x5B
#define AML_DEVICE_OP    0x82
#define AML_ROOT_CHAR    0x5C
#define RES_IO           0x47
#define RES_IRQ_NO_FLAGS 0x22
#define RES_END_TAG      0x79
#define RES_MEM32_FIXED  0x86
#define RES_DWORD_ADDR   0x87
#define RES_WORD_ADDR    0x88

typedef struct Cursor {
    const uint8_t *buf;
    size_t pos, end;
} Cursor;

static uint8_t next(Cursor *c)
{
    ck_assert_msg(c->pos < c->end, "AML runs past its object at %zu", c->end);
    return c->buf[c->pos++];
}

static uint8_t peek(const Cursor *c)
{
    ck_assert_msg(c->pos < c->end, "AML runs past its object at %zu", c->end);
    return c->buf[c->pos];
}

static void expect(Cursor *c, uint8_t b)
{
    size_t at = c->pos;
    uint8_t got = next(c);

    ck_assert_msg(got == b, "AML 0x%02x at %zu, wanted 0x%02x", got, at, b);
}

static void expect_seg(Cursor *c, const char *seg)
{
    for (int i = 0; i < 4; i++) {
        expect(c, (uint8_t)seg[i]);
    }
}

/*
 * A PkgLength (20.2.4) counts itself and the body after it: one byte up
 * to 63, else bits 7-6 say how many bytes follow the lead byte, whose bits
 * 3-0 are the lowest. Returns the body; @c moves past the object.
 */
static Cursor open_pkg(Cursor *c)
{
    size_t start = c->pos, len;
    uint8_t lead = next(c);
    unsigned follow = lead >> 6;
    Cursor body;

    len = follow ? lead & 0x0F : lead & 0x3F;
    for (unsigned i = 0; i < follow; i++) {
        len |= (size_t)next(c) << (4 + 8 * i);
    }
    ck_assert_msg(len > follow && len <= c->end - start, "PkgLength %zu at %zu",
                  len, start);
    body = (Cursor){c->buf, c->pos, start + len};
    c->pos = start + len;
    return body;
}

/* ComputationalData integers (20.2.3): what aml.c may choose among. */
static uint64_t integer(Cursor *c)
{
    size_t at = c->pos;
    uint8_t op = next(c);
    unsigned n;
    uint64_t v = 0;

    switch (op) {
    case 0x00:
        return 0;
    case 0x01:
        return 1;
    case 0xFF:
        return UINT64_MAX;
    case 0x0A:
        n = 1;
        break;
    case 0x0B:
        n = 2;
        break;
    case 0x0C:
        n = 4;
        break;
    case 0x0E:
        n = 8;
        break;
    default:
        ck_abort_msg("AML 0x%02x at %zu is not an integer", op, at);
    }
    for (unsigned i = 0; i < n; i++) {
        v |= (uint64_t)next(c) << (8 * i);
    }
    return v;
}

static void skip_value(Cursor *c)
{
    uint8_t op = peek(c);

    if (op == AML_BUFFER_OP || op == AML_PACKAGE_OP) {
        c->pos++;
        open_pkg(c);
    } else {
        integer(c);
    }
}

/*
 * Walk a device's body, which must hold only Name()s, and return a cursor
 * at the value of @seg.
 */
static Cursor named(Cursor dev, const char *seg)
{
    Cursor found = {0};

    while (dev.pos < dev.end) {
        bool match;

        expect(&dev, AML_NAME_OP);
        ck_assert_uint_ge(dev.end - dev.pos, 4);
        match = !memcmp(dev.buf + dev.pos, seg, 4);
        dev.pos += 4;
        if (match) {
            ck_assert_msg(!found.buf, "%s named twice", seg);
            found = dev;
        }
        skip_value(&dev);
    }
    ck_assert_msg(found.buf, "no Name (%s)", seg);
    return found;
}

/* The ASL EisaId() of @id ("PNP0A08"): the 32-bit compressed EISA ID
 * (three 5-bit letters, 'A' = 1, then four hex digits) is stored most
 * significant byte first, so as an AML integer it reads byte-swapped. */
static uint32_t eisa_id(const char *id)
{
    uint32_t v = (uint32_t)(id[0] - '@') << 26 | (uint32_t)(id[1] - '@') << 21 |
                 (uint32_t)(id[2] - '@') << 16;

    for (int i = 3; i < 7; i++) {
        char c = id[i];

        v |= (uint32_t)(c <= '9' ? c - '0' : c - 'A' + 10) << (4 * (6 - i));
    }
    return __builtin_bswap32(v);
}

/* The DSDT's devices in \_SB, and where _S5 is. */
typedef struct Dsdt {
    Cursor pci0, com1, rtc, mres;
    Cursor s5; /* the package's body */
} Dsdt;

/*
 * The whole table, object by object: Scope (\_SB) holding only devices,
 * then Name (_S5, Package), and nothing after it.
 */
static Dsdt read_dsdt(void)
{
    uint32_t len;
    const uint8_t *d = table_bytes("DSDT", &len);
    Cursor top = {d, HEADER_LEN, len}, sb;
    Dsdt out = {0};

    expect(&top, AML_SCOPE_OP);
    sb = open_pkg(&top);
    expect(&sb, AML_ROOT_CHAR);
    expect_seg(&sb, "_SB_");
    while (sb.pos < sb.end) {
        Cursor dev, *slot = NULL;

        expect(&sb, AML_EXT_PREFIX);
        expect(&sb, AML_DEVICE_OP);
        dev = open_pkg(&sb);
        ck_assert_uint_le(dev.pos + 4, dev.end);
        if (!memcmp(d + dev.pos, "PCI0", 4)) {
            slot = &out.pci0;
        } else if (!memcmp(d + dev.pos, "COM1", 4)) {
            slot = &out.com1;
        } else if (!memcmp(d + dev.pos, "RTC_", 4)) {
            slot = &out.rtc;
        } else if (!memcmp(d + dev.pos, "MRES", 4)) {
            slot = &out.mres;
        }
        ck_assert_msg(slot, "unexpected device %.4s",
                      (const char *)d + dev.pos);
        ck_assert_msg(!slot->buf, "device %.4s twice",
                      (const char *)d + dev.pos);
        dev.pos += 4;
        *slot = dev;
    }
    ck_assert(out.pci0.buf && out.com1.buf && out.rtc.buf && out.mres.buf);
    expect(&top, AML_NAME_OP);
    expect_seg(&top, "_S5_");
    expect(&top, AML_PACKAGE_OP);
    out.s5 = open_pkg(&top);
    ck_assert_uint_eq(top.pos, len);
    return out;
}

/* The resource template of Name (_CRS, Buffer), checked to end in an end
 * tag exactly at the buffer's end; returns the descriptors before it. */
static Cursor crs(Cursor dev)
{
    Cursor c = named(dev, "_CRS"), buf, res;
    uint64_t size;

    expect(&c, AML_BUFFER_OP);
    buf = open_pkg(&c);
    size = integer(&buf);
    ck_assert_uint_eq(size, buf.end - buf.pos);
    res = buf;
    ck_assert_uint_ge(buf.end - buf.pos, 2);
    ck_assert_uint_eq(buf.buf[buf.end - 2], RES_END_TAG);
    res.end = buf.end - 2;
    return res;
}

/* The next resource descriptor (6.4.1): small items have their length in
 * the tag, large ones a 16-bit length after it. */
static const uint8_t *descriptor(Cursor *c, uint8_t *tag, size_t *len)
{
    const uint8_t *start = c->buf + c->pos;
    size_t hdr;

    *tag = next(c);
    if (*tag & 0x80) {
        hdr = 3;
        *len = next(c);
        *len |= (size_t)next(c) << 8;
    } else {
        hdr = 1;
        *len = *tag & 7;
    }
    ck_assert_uint_le(*len, c->end - c->pos);
    c->pos += *len;
    *len += hdr;
    return start;
}

/* Fixed I/O ports (6.4.2.5): IO (Decode16, base, base, 1, len). */
static void check_io(const uint8_t *r, uint16_t base, uint8_t len)
{
    ck_assert_uint_eq(r[1] & 1, 1); /* 16-bit decode */
    ck_assert_uint_eq(le(r + 2, 2), base);
    ck_assert_uint_eq(le(r + 4, 2), base);
    ck_assert_uint_eq(r[7], len);
}

/* A Word (6.4.3.5.3) or DWord (6.4.3.5.2) address space window of
 * @w-byte fields, @size bytes long with its tag and length. */
static void check_window(const uint8_t *r, size_t size, unsigned w,
                         uint64_t min, uint64_t len)
{
    ck_assert_uint_eq(size, 6 + 5 * w);
    ck_assert_uint_eq(le(r + 6 + w, w), min);
    ck_assert_uint_eq(le(r + 6 + 2 * w, w), min + len - 1);
    ck_assert_uint_eq(le(r + 6 + 3 * w, w), 0); /* no translation */
    ck_assert_uint_eq(le(r + 6 + 4 * w, w), len);
}

START_TEST(test_eisa_id)
{
    /* The test's own encoder against values seen in every PC's DSDT. */
    ck_assert_uint_eq(eisa_id("PNP0A03"), 0x030AD041);
    ck_assert_uint_eq(eisa_id("PNP0A08"), 0x080AD041);
    ck_assert_uint_eq(eisa_id("PNP0501"), 0x0105D041);
    ck_assert_uint_eq(eisa_id("PNP0B00"), 0x000BD041);
    ck_assert_uint_eq(eisa_id("PNP0C02"), 0x020CD041);
}
END_TEST

START_TEST(test_dsdt_devices)
{
    Dsdt d;
    Cursor v;

    build(4);
    d = read_dsdt();
    v = named(d.pci0, "_HID");
    ck_assert_uint_eq(integer(&v), eisa_id("PNP0A08"));
    v = named(d.pci0, "_CID");
    ck_assert_uint_eq(integer(&v), eisa_id("PNP0A03"));
    v = named(d.pci0, "_SEG");
    ck_assert_uint_eq(integer(&v), 0);
    v = named(d.pci0, "_BBN");
    ck_assert_uint_eq(integer(&v), 0);
    v = named(d.com1, "_HID");
    ck_assert_uint_eq(integer(&v), eisa_id("PNP0501"));
    v = named(d.rtc, "_HID");
    ck_assert_uint_eq(integer(&v), eisa_id("PNP0B00"));
    v = named(d.mres, "_HID");
    ck_assert_uint_eq(integer(&v), eisa_id("PNP0C02"));
    /* \_S5: SLP_TYPa is what devices/acpi-pm.c powers off on. */
    ck_assert_uint_ge(next(&d.s5), 1); /* NumElements */
    ck_assert_uint_eq(integer(&d.s5), ACPI_S5_SLP_TYP);
}
END_TEST

START_TEST(test_dsdt_resources)
{
    bool bus = false, conf = false, io = false, mem = false, irq = false;
    Cursor r;
    uint8_t tag;
    size_t len;
    const uint8_t *p;
    Dsdt d;

    build(4);
    d = read_dsdt();
    /* The host bridge: its buses, the 0xCF8 ports and both windows. */
    for (r = crs(d.pci0); r.pos < r.end;) {
        p = descriptor(&r, &tag, &len);
        if (tag == RES_WORD_ADDR && p[3] == 2) { /* bus numbers */
            check_window(p, len, 2, 0, ECAM_BUSES);
            bus = true;
        } else if (tag == RES_WORD_ADDR && p[3] == 1) { /* I/O */
            check_window(p, len, 2, IO_BASE, IO_SIZE);
            io = true;
        } else if (tag == RES_DWORD_ADDR && p[3] == 0) { /* memory */
            check_window(p, len, 4, MMIO_BASE, MMIO_SIZE);
            mem = true;
        } else if (tag == RES_IO) {
            check_io(p, 0xCF8, 8);
            conf = true;
        } else {
            ck_abort_msg("PCI0 _CRS: descriptor 0x%02x", tag);
        }
    }
    ck_assert(bus && conf && io && mem);

    /* COM1: its ports and ISA IRQ, with no legacy PIC to assume them. */
    for (r = crs(d.com1), io = false; r.pos < r.end;) {
        p = descriptor(&r, &tag, &len);
        if (tag == RES_IO) {
            check_io(p, COM1_PORT, 8);
            io = true;
        } else {
            ck_assert_uint_eq(tag, RES_IRQ_NO_FLAGS);
            ck_assert_uint_eq(le(p + 1, 2), 1u << COM1_IRQ);
            irq = true;
        }
    }
    ck_assert(io && irq);

    /* The CMOS clock: ports only, as the model raises no interrupt. */
    r = crs(d.rtc);
    p = descriptor(&r, &tag, &len);
    ck_assert_uint_eq(tag, RES_IO);
    check_io(p, 0x70, 2);
    ck_assert_uint_eq(r.pos, r.end);

    /* The ECAM window, reserved as motherboard resources. */
    r = crs(d.mres);
    p = descriptor(&r, &tag, &len);
    ck_assert_uint_eq(tag, RES_MEM32_FIXED);
    ck_assert_uint_eq(le(p + 4, 4), ECAM_BASE);
    ck_assert_uint_eq(le(p + 8, 4), ECAM_BUSES << 20);
    ck_assert_uint_eq(r.pos, r.end);
}
END_TEST

/* _PRT (6.2.13): Package { Package { 0xSSSSFFFF, pin, 0, GSI }, ... }. */
START_TEST(test_dsdt_prt)
{
    bool seen[PCI_SLOTS][PCI_PINS] = {{false}};
    Cursor v, prt;
    Dsdt d;

    build(4);
    d = read_dsdt();
    v = named(d.pci0, "_PRT");
    expect(&v, AML_PACKAGE_OP);
    prt = open_pkg(&v);
    ck_assert_uint_eq(next(&prt), PCI_SLOTS * PCI_PINS);
    for (int n = 0; n < PCI_SLOTS * PCI_PINS; n++) {
        Cursor e;
        uint64_t addr, pin;
        int slot;

        expect(&prt, AML_PACKAGE_OP);
        e = open_pkg(&prt);
        expect(&e, 4);
        addr = integer(&e);
        pin = integer(&e);
        ck_assert_uint_eq(addr & 0xFFFF, 0xFFFF); /* any function */
        slot = (int)(addr >> 16);
        ck_assert_int_lt(slot, PCI_SLOTS);
        ck_assert_uint_lt(pin, PCI_PINS);
        ck_assert_msg(!seen[slot][pin], "slot %d pin %d twice", slot, (int)pin);
        seen[slot][pin] = true;
        ck_assert_uint_eq(integer(&e), 0); /* a GSI, not a link device */
        ck_assert_uint_eq(integer(&e), test_gsi_of(NULL, slot, (int)pin));
        ck_assert_uint_eq(e.pos, e.end);
    }
    ck_assert_uint_eq(prt.pos, prt.end);
}
END_TEST

/* ---- Errors ---------------------------------------------------------------
 */

static int build_with(uint64_t ram_size, int ncpus)
{
    ram(ram_size);
    cfg = test_config(ncpus);
    return acpi_build(&gm, &cfg, tables);
}

START_TEST(test_bad_cpus)
{
    static const int bad[] = {0, -1, MAX_CPUS + 1, 256, 1000};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cfg = test_config(bad[i]);
        ram(RAM_SIZE);
        ck_assert_msg(acpi_build(&gm, &cfg, tables) == -EINVAL, "ncpus %d",
                      bad[i]);
        gm_cleanup(&gm);
    }
}
END_TEST

static int bad_gsi_of(void *opaque, int slot, int pin)
{
    (void)pin;
    return slot == 7 ? *(int *)opaque : 16;
}

START_TEST(test_bad_gsi)
{
    int gsi;

    ram(RAM_SIZE);
    cfg = test_config(1);
    cfg.gsi_of = bad_gsi_of;
    cfg.opaque = &gsi;
    gsi = -1;
    ck_assert_int_eq(acpi_build(&gm, &cfg, tables), -EINVAL);
    gsi = 256; /* the IOAPIC's inputs are 8-bit in the MP table too */
    ck_assert_int_eq(acpi_build(&gm, &cfg, tables), -EINVAL);
    gsi = 255;
    ck_assert_int_eq(acpi_build(&gm, &cfg, tables), ACPI_MAX_TABLES);
}
END_TEST

START_TEST(test_small_ram)
{
    ck_assert_int_eq(build_with(64 << 10, 1), -ENOMEM);
    gm_cleanup(&gm);
    /* One page short of the area's end, then just enough. */
    ck_assert_int_eq(build_with(BOOT_ACPI_ADDR + BOOT_ACPI_MAX - 4096, 1),
                     -ENOMEM);
    gm_cleanup(&gm);
    ck_assert_int_eq(build_with(BOOT_ACPI_ADDR + BOOT_ACPI_MAX, MAX_CPUS),
                     ACPI_MAX_TABLES);
}
END_TEST

/* ---- The registers: devices/acpi-pm.c -------------------------------------
 */

typedef struct Exits {
    int calls;
    int status;
} Exits;

static GuestMemory no_ram;
static AddressSpace as;
static AcpiPm pm;
static Exits exits;

static void record_exit(void *opaque, int status)
{
    Exits *e = opaque;

    e->calls++;
    e->status = status;
}

static void pm_setup(void)
{
    as_init(&as, &no_ram);
    memset(&exits, 0, sizeof(exits));
    ck_assert_int_eq(acpi_pm_init(&pm, &as, record_exit, &exits), 0);
}

static void pm_teardown(void)
{
    as_cleanup(&as);
    teardown();
}

static void outb(uint16_t port, uint8_t v)
{
    ck_assert_msg(as_write(&as, AS_PIO, port, 1, v), "port 0x%x unclaimed",
                  port);
}

static uint8_t inb(uint16_t port)
{
    uint64_t v;

    ck_assert_msg(as_read(&as, AS_PIO, port, 1, &v), "port 0x%x unclaimed",
                  port);
    return (uint8_t)v;
}

#define SLEEP_CONTROL (ACPI_PM_PORT + ACPI_SLEEP_CONTROL)
#define SLEEP_STATUS  (ACPI_PM_PORT + ACPI_SLEEP_STATUS)
#define RESET_REG     (ACPI_PM_PORT + ACPI_RESET_REG)
#define SLP_TYP(t)    ((t) << ACPI_SLP_TYP_SHIFT)

START_TEST(test_pm_ports)
{
    /* Exactly the three ports the FADT names. */
    ck_assert_ptr_null(as_find(&as, AS_PIO, ACPI_PM_PORT - 1));
    for (int i = 0; i < 3; i++) {
        ck_assert_ptr_nonnull(as_find(&as, AS_PIO, ACPI_PM_PORT + i));
    }
    ck_assert_ptr_null(as_find(&as, AS_PIO, ACPI_PM_PORT + 3));
    ck_assert_uint_eq(inb(SLEEP_STATUS), 0); /* never slept, never woke */
    outb(SLEEP_STATUS, ACPI_WAK_STS);        /* clearing it is harmless */
    ck_assert_uint_eq(inb(SLEEP_STATUS), 0);
    ck_assert_int_eq(exits.calls, 0);
}
END_TEST

START_TEST(test_pm_poweroff)
{
    outb(SLEEP_CONTROL, SLP_TYP(ACPI_S5_SLP_TYP)); /* the type alone */
    ck_assert_int_eq(exits.calls, 0);
    exits.status = -1;
    outb(SLEEP_CONTROL, ACPI_SLP_EN | SLP_TYP(ACPI_S5_SLP_TYP));
    ck_assert_int_eq(exits.calls, 1);
    ck_assert_int_eq(exits.status, 0);
}
END_TEST

START_TEST(test_pm_other_sleep_types)
{
    for (unsigned t = 0; t < 8; t++) {
        if (t != ACPI_S5_SLP_TYP) {
            outb(SLEEP_CONTROL, ACPI_SLP_EN | SLP_TYP(t));
        }
    }
    /* S5 with reserved bits set is not a clean request either. */
    outb(SLEEP_CONTROL, ACPI_SLP_EN | SLP_TYP(ACPI_S5_SLP_TYP) | 0x01);
    outb(SLEEP_CONTROL, ACPI_SLP_EN | SLP_TYP(ACPI_S5_SLP_TYP) | 0x80);
    ck_assert_int_eq(exits.calls, 0);
}
END_TEST

START_TEST(test_pm_reset)
{
    static const uint8_t wrong[] = {0x00, 0x02, 0x06, 0x0E, 0xFE, 0xFF};

    for (size_t i = 0; i < sizeof(wrong); i++) {
        outb(RESET_REG, wrong[i]);
    }
    ck_assert_int_eq(exits.calls, 0);
    exits.status = -1;
    outb(RESET_REG, ACPI_RESET_VALUE);
    ck_assert_int_eq(exits.calls, 1);
    ck_assert_int_eq(exits.status, 0);
}
END_TEST

/* A wider access is taken byte by byte: the reset byte of a word write. */
START_TEST(test_pm_word_write)
{
    exits.status = -1;
    ck_assert(as_write(&as, AS_PIO, SLEEP_STATUS, 2, ACPI_RESET_VALUE << 8));
    ck_assert_int_eq(exits.calls, 1);
    ck_assert_int_eq(exits.status, 0);
}
END_TEST

/*
 * What Linux does, with nothing but the tables: the FADT's registers and
 * the DSDT's _S5 value, written through the address space, reach the
 * device. This ties the two halves together.
 */
START_TEST(test_pm_from_tables)
{
    uint32_t len;
    const uint8_t *f, *sleep_reg, *reset_reg;
    uint64_t typ;
    Dsdt d;

    build(2);
    f = table_bytes("FACP", &len);
    d = read_dsdt();
    next(&d.s5); /* NumElements */
    typ = integer(&d.s5);
    sleep_reg = f + FADT_SLEEP_CONTROL;
    reset_reg = f + FADT_RESET_REG;
    ck_assert(as_write(&as, AS_PIO, le(sleep_reg + GAS_ADDRESS, 8),
                       sleep_reg[GAS_BIT_WIDTH] / 8,
                       ACPI_SLP_EN | typ << ACPI_SLP_TYP_SHIFT));
    ck_assert_int_eq(exits.calls, 1);
    ck_assert(as_write(&as, AS_PIO, le(reset_reg + GAS_ADDRESS, 8),
                       reset_reg[GAS_BIT_WIDTH] / 8, f[FADT_RESET_VALUE]));
    ck_assert_int_eq(exits.calls, 2);
}
END_TEST

Suite *acpi_suite(void)
{
    Suite *s = suite_create("acpi");
    TCase *tc = tcase_create("tables");

    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_rsdp);
    tcase_add_loop_test(tc, test_headers, 0, NCOUNTS);
    tcase_add_test(tc, test_xsdt);
    tcase_add_test(tc, test_fadt);
    tcase_add_loop_test(tc, test_madt, 0, NCOUNTS);
    tcase_add_test(tc, test_mcfg);
    suite_add_tcase(s, tc);

    tc = tcase_create("dsdt");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_eisa_id);
    tcase_add_test(tc, test_dsdt_devices);
    tcase_add_test(tc, test_dsdt_resources);
    tcase_add_test(tc, test_dsdt_prt);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_bad_cpus);
    tcase_add_test(tc, test_bad_gsi);
    tcase_add_test(tc, test_small_ram);
    suite_add_tcase(s, tc);

    tc = tcase_create("acpi-pm");
    tcase_add_checked_fixture(tc, pm_setup, pm_teardown);
    tcase_add_test(tc, test_pm_ports);
    tcase_add_test(tc, test_pm_poweroff);
    tcase_add_test(tc, test_pm_other_sleep_types);
    tcase_add_test(tc, test_pm_reset);
    tcase_add_test(tc, test_pm_word_write);
    tcase_add_test(tc, test_pm_from_tables);
    suite_add_tcase(s, tc);
    return s;
}
