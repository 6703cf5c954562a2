/*
 * iotest: guest/iotest.c's access pattern, bare metal, on both disks. Read
 * the whole image (filled on the host with `iotest --fill`) in 128 KiB
 * requests, 16 at a time: one NCQ tag each on AHCI, one kick per batch on
 * virtio-blk; wait 1 ms before each batch's submit and after each
 * completion, as the Linux workload sleeps; check every byte against
 * guest/pattern.h. A batch's time runs from its submit to the end of its
 * last completion's processing, as iotest measures it.
 *
 * The sleeps are what let the VMM's main loop fall asleep between
 * requests, so the "500 ms slumber" shows here as it does under Linux:
 * every batch then takes about 500 ms. More than one batch in eight slower
 * than iotest-slow-batch-ms (bootargs; 0 turns the check off) fails the
 * test; the allowance keeps a busy host's odd hiccup from doing so. Sizes
 * come from sataN-size= and virtioN-size=; iotest-mib=N reads less.
 */
#include "firmware/tests/lib/ahci.h"
#include "firmware/tests/lib/data.h"
#include "firmware/tests/lib/dt.h"
#include "firmware/tests/lib/fw.h"
#include "firmware/tests/lib/timer.h"
#include "firmware/tests/lib/virtio-blk.h"

#define CHUNK           (128 * 1024)
#define BATCH           16
#define SLEEP_US        1000
#define WAIT_MS         10000
#define DEFAULT_SLOW_MS 400

typedef struct Run {
    const char *label;
    uint64_t size; /* bytes to read */
    unsigned batches;
    unsigned bad; /* requests that failed or mismatched */
    uint64_t first_bad;
    uint64_t total_us, max_batch_us;
    unsigned slow; /* batches over slow_ms */
} Run;

static AhciPortMem port_mem;
static VirtioBlk blk;
static uint8_t bufs[BATCH][CHUNK] ALIGNED(4096);
static unsigned sleep_us = SLEEP_US;
static uint64_t slow_ms = DEFAULT_SLOW_MS;

static void check_chunk(Run *r, unsigned i, uint64_t off, bool ok)
{
    uint64_t bad = ok ? data_check(bufs[i], off, CHUNK, 0) : off;

    if (bad != UINT64_MAX) {
        if (!r->bad) {
            r->first_bad = bad;
        }
        r->bad++;
    }
}

static void run_summary(Run *r)
{
    uint64_t floor_us = (uint64_t)r->batches * (BATCH + 1) * sleep_us;

    report(r->bad == 0,
           "%s: %lu MiB in %u batches, every byte checked "
           "(%u bad requests, first bad word at 0x%lx)",
           r->label, (unsigned long)(r->size >> 20), r->batches, r->bad,
           r->bad ? (unsigned long)r->first_bad : 0ul);
    report_info(
        "%s: total_s=%lu.%03lu floor_s=%lu.%03lu mean_batch_ms=%lu "
        "max_batch_ms=%lu",
        r->label, (unsigned long)(r->total_us / 1000000),
        (unsigned long)(r->total_us / 1000 % 1000),
        (unsigned long)(floor_us / 1000000),
        (unsigned long)(floor_us / 1000 % 1000),
        (unsigned long)(r->total_us / 1000 / (r->batches ? r->batches : 1)),
        (unsigned long)(r->max_batch_us / 1000));
    if (slow_ms) {
        report(r->slow <= r->batches / 8,
               "%s: %u of %u batches over %lu ms (at most %u allowed): no "
               "stalled requests",
               r->label, r->slow, r->batches, (unsigned long)slow_ms,
               r->batches / 8);
    }
}

/* A batch took @us, from its submit to its last completion's end. */
static void batch_done(Run *r, uint64_t us)
{
    r->total_us += us + sleep_us;
    r->max_batch_us = us > r->max_batch_us ? us : r->max_batch_us;
    r->slow += us >= slow_ms * 1000;
    r->batches++;
}

static uint64_t disk_bytes(const char *key)
{
    uint64_t size = 0, mib;

    dt_bootarg_u64(key, &size);
    if (dt_bootarg_u64("iotest-mib", &mib) && mib << 20 < size) {
        size = mib << 20;
    }
    return size / (BATCH * CHUNK) * (BATCH * CHUNK);
}

/* ---- AHCI: NCQ, one tag per request ----------------------------------- */

static void ahci_batch(AhciPort *p, Run *r, uint64_t base)
{
    uint32_t outstanding = 0;
    uint64_t deadline;
    uint8_t fis[20];

    for (unsigned t = 0; t < BATCH; t++) {
        AhciSg sg = {bufs[t], CHUNK};

        ahci_fis_ncq(fis, ATA_READ_FPDMA_QUEUED, t,
                     (base + (uint64_t)t * CHUNK) / AHCI_SECTOR,
                     CHUNK / AHCI_SECTOR);
        ahci_cmd_setup(p, t, fis, false, &sg, 1);
        outstanding |= 1u << t;
    }
    ahci_issue(p, outstanding, true);
    deadline = timer_deadline_ms(WAIT_MS);
    while (outstanding) {
        uint32_t is = ahci_port_read(p, AHCI_PX_IS);
        uint32_t done = outstanding & ~ahci_port_read(p, AHCI_PX_SACT);

        if ((is & AHCI_PX_IS_ERRORS) || timer_expired(deadline)) {
            report_info("ahci: batch at 0x%lx stuck: SACT=0x%x IS=0x%x",
                        (unsigned long)base, ahci_port_read(p, AHCI_PX_SACT),
                        is);
            for (unsigned t = 0; t < BATCH; t++) {
                if (outstanding & (1u << t)) {
                    check_chunk(r, t, base + (uint64_t)t * CHUNK, false);
                }
            }
            fw_abort("ahci: cannot go on after a failed batch");
        }
        if (!done) {
            cpu_relax();
            continue;
        }
        ahci_port_write(p, AHCI_PX_IS, is);
        mb();
        for (unsigned t = 0; t < BATCH; t++) {
            if (done & (1u << t)) {
                check_chunk(r, t, base + (uint64_t)t * CHUNK, true);
                udelay(sleep_us);
            }
        }
        outstanding &= ~done;
    }
}

static void test_ahci(void)
{
    Run r = {.label = "ahci"};
    Ahci a;
    AhciPort p;

    r.size = disk_bytes("sata0-size");
    if (!r.size) {
        report_skip("ahci: no sata0-size= of at least 2 MiB in bootargs");
        return;
    }
    if (!report(ahci_init(&a, 0) == 0 &&
                    ahci_port_start(&a, 0, &p, &port_mem) == 0,
                "ahci: port 0 ready") ||
        !report(a.cap & AHCI_CAP_SNCQ, "ahci: NCQ offered")) {
        return;
    }
    for (uint64_t off = 0; off < r.size; off += BATCH * CHUNK) {
        uint64_t t0;

        udelay(sleep_us);
        t0 = timer_now_us();
        ahci_batch(&p, &r, off);
        batch_done(&r, timer_now_us() - t0);
    }
    run_summary(&r);
}

/* ---- virtio-blk: one kick per batch ----------------------------------- */

static void vblk_batch(VirtioBlk *b, Run *r, uint64_t base)
{
    VblkReq req[BATCH];
    unsigned left = BATCH;
    uint64_t deadline;

    for (unsigned i = 0; i < BATCH; i++) {
        req[i] = (VblkReq){.type = VIRTIO_BLK_T_IN,
                           .sector = (base + (uint64_t)i * CHUNK) / 512,
                           .data = bufs[i],
                           .len = CHUNK};
        vblk_submit(b, &req[i]);
    }
    vblk_kick(b);
    deadline = timer_deadline_ms(WAIT_MS);
    while (left) {
        if (!vblk_reap(b)) {
            if (timer_expired(deadline)) {
                fw_abort("virtio-blk: batch at 0x%lx: %u requests not done",
                         (unsigned long)base, left);
            }
            cpu_relax();
            continue;
        }
        for (unsigned i = 0; i < BATCH; i++) {
            /* Process each completion once: clear its done flag after. */
            if (req[i].done) {
                check_chunk(r, i, base + (uint64_t)i * CHUNK,
                            req[i].status == VIRTIO_BLK_S_OK);
                req[i].done = false;
                left--;
                udelay(sleep_us);
            }
        }
    }
}

static void test_virtio(void)
{
    Run r = {.label = "virtio-blk"};

    r.size = disk_bytes("virtio0-size");
    if (!r.size) {
        report_skip("virtio-blk: no virtio0-size= of at least 2 MiB in "
                    "bootargs");
        return;
    }
    if (!report(vblk_init(&blk, 0, NULL) == 0, "virtio-blk: device ready") ||
        !report(blk.qsize >= 3 * BATCH && blk.size_max >= CHUNK,
                "virtio-blk: room for %u requests of %u KiB (queue %u, "
                "size_max %u)",
                BATCH, CHUNK / 1024, blk.qsize, blk.size_max)) {
        return;
    }
    for (uint64_t off = 0; off < r.size; off += BATCH * CHUNK) {
        uint64_t t0;

        udelay(sleep_us);
        t0 = timer_now_us();
        vblk_batch(&blk, &r, off);
        batch_done(&r, timer_now_us() - t0);
    }
    run_summary(&r);
}

int main(const void *fdt)
{
    uint64_t v;

    (void)fdt;
    if (dt_bootarg_u64("iotest-sleep-us", &v)) {
        sleep_us = v;
    }
    dt_bootarg_u64("iotest-slow-batch-ms", &slow_ms);
    report_prefix_push("iotest");
    report_info("chunk %u KiB, batch %u, sleep %u us, TSC %lu kHz",
                CHUNK / 1024, BATCH, sleep_us, (unsigned long)timer_tsc_khz());
    test_ahci();
    test_virtio();
    return report_summary();
}
