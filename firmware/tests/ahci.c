/*
 * ahci: the ICH9 AHCI function from the guest's side, polled. HBA reset
 * and AHCI mode, port 0 started on our own command list and FIS area,
 * IDENTIFY DEVICE (model, NCQ, capacity against the image size the runner
 * passes as sata0-size=BYTES), DMA WRITE EXT then DMA READ EXT through
 * scattered multi-entry PRDTs, NCQ writes and reads with many tags in
 * flight, FLUSH CACHE EXT, and a read past the end that must fail and
 * leave the port recoverable (stop and restart the command engine).
 */
#include "firmware/tests/lib/ahci.h"
#include "firmware/tests/lib/data.h"
#include "firmware/tests/lib/dt.h"
#include "firmware/tests/lib/fw.h"
#include "firmware/tests/lib/timer.h"

#define PAGE        4096
#define DMA_LBA     2048 /* 1 MiB in: away from the NCQ area */
#define DMA_PAGES   16   /* 64 KiB per command */
#define NCQ_TAGS    8
#define NCQ_LBA     8192
#define NCQ_SECTORS 32 /* 16 KiB per tag */
#define NCQ_BYTES   (NCQ_SECTORS * AHCI_SECTOR)
#define WAIT_MS     5000

static AhciPortMem port_mem;
static uint16_t identify[256] ALIGNED(2);
/* Twice what a command moves, so pages can be picked out of order. */
static uint8_t wbuf[2 * DMA_PAGES * PAGE] ALIGNED(PAGE);
static uint8_t rbuf[2 * DMA_PAGES * PAGE] ALIGNED(PAGE);
static uint8_t ncq_w[NCQ_TAGS][NCQ_BYTES] ALIGNED(PAGE);
static uint8_t ncq_r[NCQ_TAGS][NCQ_BYTES] ALIGNED(PAGE);
static uint8_t scratch[PAGE] ALIGNED(PAGE);

static uint64_t salt;

static void check_hba(Ahci *a)
{
    report((a->cap & AHCI_CAP_SNCQ) && (a->cap & AHCI_CAP_S64A),
           "CAP 0x%08x: NCQ and 64-bit addressing", a->cap);
    report(a->nslots == AHCI_SLOTS, "%u command slots", a->nslots);
    report(a->pi & 1, "port 0 implemented (PI 0x%x)", a->pi);
    report(ahci_read(a, AHCI_GHC) & AHCI_GHC_AE, "GHC.AE set after reset");
}

static void test_identify(AhciPort *p)
{
    char model[41], serial[21];
    uint64_t want, sectors;
    int ret = ahci_identify(p, identify);

    if (!report(ret == 0 && p->mem->clb[0].prdbc == 512,
                "IDENTIFY DEVICE completes, 512 bytes (PRDBC %u)",
                p->mem->clb[0].prdbc)) {
        return;
    }
    ata_id_string(identify, 27, 20, model);
    ata_id_string(identify, 10, 10, serial);
    report(model[0] != '\0', "model \"%s\"", model);
    report(serial[0] != '\0', "serial \"%s\"", serial);
    report(identify[76] & (1u << 8),
           "NCQ supported (word 76 0x%04x), "
           "queue depth %u",
           identify[76], (identify[75] & 0x1f) + 1u);
    report(identify[83] & (1u << 10), "LBA48 supported");
    sectors = ata_id_sectors(identify);
    if (dt_bootarg_u64("sata0-size", &want)) {
        report(sectors * AHCI_SECTOR == want,
               "capacity %lu sectors = %lu bytes, image %lu bytes",
               (unsigned long)sectors, (unsigned long)(sectors * AHCI_SECTOR),
               (unsigned long)want);
    } else {
        report_skip("capacity %lu sectors: no sata0-size= in bootargs",
                    (unsigned long)sectors);
    }
}

/* Scattered: the write takes every other page, last first. */
static unsigned scatter_write(AhciSg *sg)
{
    for (unsigned i = 0; i < DMA_PAGES; i++) {
        sg[i] = (AhciSg){wbuf + (2 * (DMA_PAGES - 1 - i)) * PAGE, PAGE};
    }
    return DMA_PAGES;
}

/* The read uses 8 KiB pieces at odd page offsets, in order. */
static unsigned scatter_read(AhciSg *sg)
{
    for (unsigned i = 0; i < DMA_PAGES / 2; i++) {
        sg[i] = (AhciSg){rbuf + (4 * i + 1) * PAGE, 2 * PAGE};
    }
    return DMA_PAGES / 2;
}

static void test_dma(AhciPort *p)
{
    uint64_t off = (uint64_t)DMA_LBA * AHCI_SECTOR, bad = UINT64_MAX;
    AhciSg wsg[DMA_PAGES], rsg[DMA_PAGES];
    unsigned nw = scatter_write(wsg), nr = scatter_read(rsg);
    uint16_t sectors = DMA_PAGES * PAGE / AHCI_SECTOR;
    int ret;

    for (unsigned i = 0; i < nw; i++) {
        data_fill(wsg[i].buf, off + i * PAGE, PAGE, salt);
    }
    ret = ahci_rw_dma(p, true, DMA_LBA, sectors, wsg, nw);
    report(ret == 0 && p->mem->clb[0].prdbc == DMA_PAGES * PAGE,
           "DMA WRITE EXT, %u sectors through %u PRDs (PRDBC %u)", sectors, nw,
           p->mem->clb[0].prdbc);

    memset(rbuf, 0x5a, sizeof(rbuf));
    ret = ahci_rw_dma(p, false, DMA_LBA, sectors, rsg, nr);
    report(ret == 0 && p->mem->clb[0].prdbc == DMA_PAGES * PAGE,
           "DMA READ EXT through %u PRDs (PRDBC %u)", nr, p->mem->clb[0].prdbc);
    for (unsigned i = 0; i < nr && bad == UINT64_MAX; i++) {
        bad = data_check(rsg[i].buf, off + i * 2 * PAGE, rsg[i].len, salt);
    }
    report(bad == UINT64_MAX,
           "read back what was written (first bad word "
           "at disk offset 0x%lx)",
           (unsigned long)bad);
    /* The bytes between the read's pieces were not ours to touch. */
    report(rbuf[0] == 0x5a && rbuf[PAGE * 3] == 0x5a &&
               rbuf[sizeof(rbuf) - 1] == 0x5a,
           "nothing written outside the PRDT's buffers");
}

static int ncq_round(AhciPort *p, bool write, uint32_t *mask)
{
    uint8_t fis[20];

    *mask = 0;
    for (unsigned tag = 0; tag < NCQ_TAGS; tag++) {
        /* Reads go in the opposite order, so tag != region. */
        unsigned region = write ? tag : NCQ_TAGS - 1 - tag;
        uint64_t lba = NCQ_LBA + (uint64_t)region * NCQ_SECTORS;
        AhciSg sg[2] = {
            {write ? ncq_w[region] : ncq_r[region], NCQ_BYTES / 2},
            {(write ? ncq_w[region] : ncq_r[region]) + NCQ_BYTES / 2,
             NCQ_BYTES / 2}};

        ahci_fis_ncq(fis,
                     write ? ATA_WRITE_FPDMA_QUEUED : ATA_READ_FPDMA_QUEUED,
                     tag, lba, NCQ_SECTORS);
        ahci_cmd_setup(p, tag, fis, write, sg, 2);
        *mask |= 1u << tag;
    }
    ahci_issue(p, *mask, true);
    return ahci_wait(p, *mask, WAIT_MS);
}

static void test_ncq(AhciPort *p)
{
    uint64_t bad = UINT64_MAX;
    uint32_t mask;
    int ret;

    for (unsigned r = 0; r < NCQ_TAGS; r++) {
        data_fill(ncq_w[r], (NCQ_LBA + (uint64_t)r * NCQ_SECTORS) * AHCI_SECTOR,
                  NCQ_BYTES, salt);
    }
    ret = ncq_round(p, true, &mask);
    report(ret == 0, "WRITE FPDMA QUEUED, tags 0x%x in flight at once", mask);
    report(ret == 0 && (p->last_is & AHCI_PX_IS_SDBS),
           "completions came as a Set Device Bits FIS (PxIS 0x%x)", p->last_is);

    memset(ncq_r, 0, sizeof(ncq_r));
    ret = ncq_round(p, false, &mask);
    report(ret == 0, "READ FPDMA QUEUED, tags 0x%x in flight at once", mask);
    for (unsigned r = 0; r < NCQ_TAGS && bad == UINT64_MAX; r++) {
        bad = data_check(ncq_r[r],
                         (NCQ_LBA + (uint64_t)r * NCQ_SECTORS) * AHCI_SECTOR,
                         NCQ_BYTES, salt);
    }
    report(bad == UINT64_MAX,
           "NCQ data matches (first bad word at disk "
           "offset 0x%lx)",
           (unsigned long)bad);
    report(!ahci_port_read(p, AHCI_PX_SACT) && !ahci_port_read(p, AHCI_PX_CI),
           "PxSACT and PxCI empty afterwards");
}

static void test_flush(AhciPort *p)
{
    uint8_t fis[20];

    ahci_fis_h2d(fis, ATA_FLUSH_CACHE_EXT, 0, 0);
    ahci_cmd_setup(p, 0, fis, false, NULL, 0);
    ahci_issue(p, 1, false);
    report(ahci_wait(p, 1, WAIT_MS) == 0, "FLUSH CACHE EXT");
}

static void test_bad_lba(AhciPort *p)
{
    uint64_t end = ata_id_sectors(identify);
    AhciSg sg = {scratch, AHCI_SECTOR};
    int ret;

    report_info("a read past the end: the error below is expected");
    ret = ahci_rw_dma(p, false, end, 1, &sg, 1);
    report(ret == AHCI_ERR_DEVICE,
           "READ DMA EXT at LBA %lu (the end) fails with a device error",
           (unsigned long)end);
    /* ahci_wait() recovered the port the driver's way: ST off, then on. */
    report((ahci_port_read(p, AHCI_PX_CMD) & AHCI_PX_CMD_CR) &&
               !ahci_port_read(p, AHCI_PX_CI) &&
               !ahci_port_read(p, AHCI_PX_SACT),
           "port running again after recovery (CMD 0x%x)",
           ahci_port_read(p, AHCI_PX_CMD));
    ret = ahci_rw_dma(p, false, DMA_LBA, 1, &sg, 1);
    report(ret == 0 && data_check(scratch, (uint64_t)DMA_LBA * AHCI_SECTOR,
                                  AHCI_SECTOR, salt) == UINT64_MAX,
           "and reads good data again");
}

int main(const void *fdt)
{
    Ahci a;
    AhciPort p;

    (void)fdt;
    salt = rdtsc() | 1;
    report_prefix_push("ahci");
    if (!report(ahci_init(&a, 0) == 0, "HBA found and reset (ABAR 0x%lx)",
                (unsigned long)a.abar)) {
        return report_summary();
    }
    check_hba(&a);
    if (!report(ahci_port_start(&a, 0, &p, &port_mem) == 0,
                "port 0 started with a disk (SIG 0x%08x)",
                ahci_port_read(&p, AHCI_PX_SIG))) {
        return report_summary();
    }
    test_identify(&p);
    test_dma(&p);
    test_ncq(&p);
    test_flush(&p);
    test_bad_lba(&p);
    return report_summary();
}
