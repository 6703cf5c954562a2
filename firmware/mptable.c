/*
 * An Intel MultiProcessor Specification 1.4 table. Linux finds it by
 * scanning the BIOS area (0xF0000-0xFFFFF) for the "_MP_" floating pointer;
 * with no ACPI in the guest, this is how it learns the CPUs, the IOAPIC and
 * how PCI and ISA interrupts reach the IOAPIC's pins.
 */
#include <errno.h>
#include <string.h>

#include "firmware/boot.h"

#define MP_FLOAT_ADDR   0xF0000 /* 16-byte aligned, where Linux scans */
#define MP_CONFIG_ADDR  (MP_FLOAT_ADDR + 16)
#define MP_AREA_END     0x100000
#define MP_SPEC_REV     4 /* 1.4 */
#define MP_LAPIC_ADDR   0xFEE00000u
#define MP_APIC_VERSION 0x14
#define MP_IOAPIC_VER   0x11

#define MP_PROCESSOR 0
#define MP_BUS       1
#define MP_IOAPIC    2
#define MP_INTSRC    3
#define MP_LINTSRC   4

#define MP_CPU_ENABLED 0x01
#define MP_CPU_BSP     0x02

#define MP_IRQ_INT    0
#define MP_IRQ_NMI    1
#define MP_IRQ_EXTINT 3

/* Polarity in bits 0-1, trigger mode in bits 2-3; 0 = bus default. */
#define MP_IRQ_CONFORMING 0x0
#define MP_IRQ_ACTIVE_LOW 0x3
#define MP_IRQ_LEVEL      (0x3 << 2)

#define MP_BUS_PCI       0
#define MP_BUS_ISA       1
#define MP_ALL_LAPICS    0xff
#define MP_ISA_IRQS      16
#define MP_CPU_SIGNATURE 0x600 /* family 6: the value only needs to be sane */
#define MP_CPU_FEATURES  0x201 /* FPU, APIC */

typedef struct __attribute__((packed)) MpFloating {
    char signature[4]; /* "_MP_" */
    uint32_t physptr;
    uint8_t length; /* in 16-byte units */
    uint8_t spec_rev;
    uint8_t checksum;
    uint8_t feature[5]; /* all 0: a config table follows, no default config */
} MpFloating;

typedef struct __attribute__((packed)) MpConfigHeader {
    char signature[4]; /* "PCMP" */
    uint16_t length;
    uint8_t spec_rev;
    uint8_t checksum;
    char oem[8];
    char product[12];
    uint32_t oem_ptr;
    uint16_t oem_size;
    uint16_t entries;
    uint32_t lapic_addr;
    uint16_t ext_length;
    uint8_t ext_checksum;
    uint8_t reserved;
} MpConfigHeader;

typedef struct __attribute__((packed)) MpProcessor {
    uint8_t type;
    uint8_t apic_id;
    uint8_t apic_ver;
    uint8_t flags;
    uint32_t signature;
    uint32_t features;
    uint32_t reserved[2];
} MpProcessor;

typedef struct __attribute__((packed)) MpBus {
    uint8_t type;
    uint8_t id;
    char name[6];
} MpBus;

typedef struct __attribute__((packed)) MpIoApic {
    uint8_t type;
    uint8_t id;
    uint8_t version;
    uint8_t flags;
    uint32_t addr;
} MpIoApic;

/* An I/O or a local interrupt assignment entry (the same layout). */
typedef struct __attribute__((packed)) MpIntSrc {
    uint8_t type;
    uint8_t irq_type;
    uint16_t flags;
    uint8_t src_bus;
    uint8_t src_irq;
    uint8_t dst_apic;
    uint8_t dst_pin;
} MpIntSrc;

_Static_assert(sizeof(MpFloating) == 16, "MP floating pointer");
_Static_assert(sizeof(MpConfigHeader) == 44, "MP config header");
_Static_assert(sizeof(MpProcessor) == 20, "MP processor entry");
_Static_assert(sizeof(MpIntSrc) == 8, "MP interrupt entry");

static uint8_t mp_checksum(const void *p, size_t len)
{
    const uint8_t *b = p;
    uint8_t sum = 0;

    while (len--) {
        sum += *b++;
    }
    return -sum;
}

/* Appends entries to the config table in guest RAM. */
typedef struct MpWriter {
    uint8_t *base;
    size_t len, cap;
    uint16_t entries;
} MpWriter;

static void mp_add(MpWriter *w, const void *entry, size_t len)
{
    /* The caller sized the area for every entry: this is a programming bug. */
    if (w->len + len <= w->cap) {
        memcpy(w->base + w->len, entry, len);
        w->len += len;
        w->entries++;
    }
}

static void mp_add_intsrc(MpWriter *w, uint8_t type, uint8_t irq_type,
                          uint16_t flags, uint8_t bus, uint8_t src_irq,
                          uint8_t dst_apic, uint8_t dst_pin)
{
    MpIntSrc e = {.type = type,
                  .irq_type = irq_type,
                  .flags = flags,
                  .src_bus = bus,
                  .src_irq = src_irq,
                  .dst_apic = dst_apic,
                  .dst_pin = dst_pin};

    mp_add(w, &e, sizeof(e));
}

int mptable_write(GuestMemory *gm, const MpTableConfig *cfg)
{
    MpFloating *mpf = gm_ptr(gm, MP_FLOAT_ADDR, MP_AREA_END - MP_FLOAT_ADDR);
    MpWriter w = {.cap = MP_AREA_END - MP_CONFIG_ADDR};
    MpConfigHeader *hdr;
    size_t need;

    if (cfg->ncpus < 1 || cfg->ncpus > 255 || cfg->ioapic_id < cfg->ncpus ||
        cfg->ioapic_id == MP_ALL_LAPICS || cfg->npci < 0 || cfg->npci > 1024 ||
        (cfg->npci && !cfg->pci)) {
        return -EINVAL;
    }
    need = sizeof(MpConfigHeader) + cfg->ncpus * sizeof(MpProcessor) +
           2 * sizeof(MpBus) + sizeof(MpIoApic) +
           (MP_ISA_IRQS + cfg->npci + 2) * sizeof(MpIntSrc);
    if (!mpf || need > w.cap) {
        return -ENOMEM;
    }
    w.base = (uint8_t *)mpf + sizeof(*mpf);
    memset(mpf, 0, sizeof(*mpf) + need);
    w.len = sizeof(MpConfigHeader);

    for (int i = 0; i < cfg->ncpus; i++) {
        MpProcessor p = {.type = MP_PROCESSOR,
                         .apic_id = i,
                         .apic_ver = MP_APIC_VERSION,
                         .flags = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0),
                         .signature = MP_CPU_SIGNATURE,
                         .features = MP_CPU_FEATURES};

        mp_add(&w, &p, sizeof(p));
    }
    mp_add(&w, &(MpBus){MP_BUS, MP_BUS_PCI, "PCI   "}, sizeof(MpBus));
    mp_add(&w, &(MpBus){MP_BUS, MP_BUS_ISA, "ISA   "}, sizeof(MpBus));
    mp_add(&w,
           &(MpIoApic){MP_IOAPIC, cfg->ioapic_id, MP_IOAPIC_VER, 1,
                       cfg->ioapic_addr},
           sizeof(MpIoApic));
    /* ISA IRQ n is IOAPIC pin n, as KVM's default routing wires them. */
    for (int i = 0; i < MP_ISA_IRQS; i++) {
        mp_add_intsrc(&w, MP_INTSRC, MP_IRQ_INT, MP_IRQ_CONFORMING, MP_BUS_ISA,
                      i, cfg->ioapic_id, i);
    }
    /* A PCI source IRQ is (device << 2) | pin; INTx is level, active low. */
    for (int i = 0; i < cfg->npci; i++) {
        const MpPciIrq *p = &cfg->pci[i];

        mp_add_intsrc(&w, MP_INTSRC, MP_IRQ_INT,
                      MP_IRQ_ACTIVE_LOW | MP_IRQ_LEVEL, MP_BUS_PCI,
                      (uint8_t)(p->slot << 2 | (p->pin & 3)), cfg->ioapic_id,
                      p->gsi);
    }
    /* The PIC's output on every LAPIC's LINT0, NMI on LINT1: virtual wire. */
    mp_add_intsrc(&w, MP_LINTSRC, MP_IRQ_EXTINT, MP_IRQ_CONFORMING, MP_BUS_ISA,
                  0, MP_ALL_LAPICS, 0);
    mp_add_intsrc(&w, MP_LINTSRC, MP_IRQ_NMI, MP_IRQ_CONFORMING, MP_BUS_ISA, 0,
                  MP_ALL_LAPICS, 1);

    hdr = (MpConfigHeader *)w.base;
    memcpy(hdr->signature, "PCMP", 4);
    hdr->length = w.len;
    hdr->spec_rev = MP_SPEC_REV;
    memcpy(hdr->oem, "MINIVMM ", 8);
    memcpy(hdr->product, "minivmm-pc  ", 12);
    hdr->entries = w.entries;
    hdr->lapic_addr = MP_LAPIC_ADDR;
    hdr->checksum = mp_checksum(hdr, w.len);

    memcpy(mpf->signature, "_MP_", 4);
    mpf->physptr = MP_CONFIG_ADDR;
    mpf->length = 1;
    mpf->spec_rev = MP_SPEC_REV;
    mpf->checksum = mp_checksum(mpf, sizeof(*mpf));
    return 0;
}
