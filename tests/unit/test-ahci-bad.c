/*
 * A hostile guest against the AHCI controller: command lists, tables, PRDTs
 * and FIS areas outside RAM or misaligned, PRDTs empty, short or too
 * fragmented, LBAs beyond the disk, NCQ tags that do not match, slots
 * reissued while busy, commands issued while the list is stopped, malformed
 * FISes and register writes. Each case checks the error status, exactly one
 * guest-error log line, that guest RAM outside the port's FIS area and
 * command list is untouched, and that the port works after the standard
 * recovery.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aio/main-loop.h"
#include "tests/unit/ahci-machine.h"
#include "util/clock.h"

typedef struct Bad {
    uint8_t *snapshot;
} Bad;

/* One buffer per test process: its pages fault in once. */
static uint8_t *snapshot_buf;

static void bad_begin(Bad *b)
{
    if (!snapshot_buf) {
        snapshot_buf = malloc(AM_RAM_SIZE);
        ck_assert_ptr_nonnull(snapshot_buf);
    }
    b->snapshot = snapshot_buf;
    memcpy(b->snapshot, am.ram.host, AM_RAM_SIZE);
    am_stderr_begin();
}

/* RAM equals the snapshot outside [x, x + xlen) and [y, y + ylen). */
static void check_ram_except(const uint8_t *snap, uint64_t x, uint64_t xlen,
                             uint64_t y, uint64_t ylen)
{
    uint64_t skip[2][2] = {{x, x + xlen}, {y, y + ylen}};
    uint64_t pos = 0;

    if (skip[0][0] > skip[1][0]) {
        uint64_t t0 = skip[0][0], t1 = skip[0][1];

        skip[0][0] = skip[1][0];
        skip[0][1] = skip[1][1];
        skip[1][0] = t0;
        skip[1][1] = t1;
    }
    for (int i = 0; i <= 2; i++) {
        uint64_t end = i < 2 ? skip[i][0] : AM_RAM_SIZE;

        if (end > pos &&
            memcmp(am.ram.host + pos, snap + pos, end - pos) != 0) {
            for (uint64_t j = pos; j < end; j++) {
                ck_assert_msg(am.ram.host[j] == snap[j],
                              "guest RAM at 0x%llx changed",
                              (unsigned long long)j);
            }
        }
        if (i < 2 && skip[i][1] > pos) {
            pos = skip[i][1];
        }
    }
}

/* A read on port 0 that must work: the device survived. */
static void good_read(void)
{
    uint64_t buf = qos_alloc(&am.q, 4096, 4096);

    ck_assert_int_eq(qahci_rw(&am.a, 0, 9, false, 48, 8, buf, 4096), 0);
    am_check_pattern(0, 48 * 512, buf, 4096);
}

/*
 * The command failed with TFES (+ @is_bit) and @error in PxTFD, one line
 * was logged, RAM is as it was; then recover and use the port.
 */
static void bad_end(Bad *b, uint32_t is_bit, uint8_t error)
{
    QAhci *a = &am.a;
    uint32_t is = qahci_px_rreg(a, 0, QAHCI_PX_IS);

    ck_assert_int_eq(am_stderr_end(), 1);
    ck_assert_msg(is & QAHCI_PX_IS_TFES, "PxIS 0x%x", is);
    ck_assert_msg(!is_bit || (is & is_bit), "PxIS 0x%x, want 0x%x", is, is_bit);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_TFD),
                      (uint32_t)error << 8 | 0x51);
    check_ram_except(b->snapshot, a->port[0].fb, 256, a->port[0].clb, 1024);
    ck_assert(qahci_port_recover(a, 0));
    good_read();
}

static void bad_setup(void)
{
    am_setup();
    am_start_port(&am.a, 0);
}

static void bad_teardown(void)
{
    free(snapshot_buf);
    snapshot_buf = NULL;
    am_teardown();
}

/* Issue @slot (already prepared) and expect it to fail at once. */
static void run_bad(int slot, bool ncq)
{
    ck_assert_int_eq(qahci_run(&am.a, 0, slot, ncq), -EIO);
}

static void prepare_read(int slot, uint64_t lba, uint16_t sectors,
                         const QAhciPrd *prd, unsigned nprd)
{
    uint8_t fis[20];

    qahci_fis_h2d(fis, QATA_READ_DMA_EXT, 0, lba, sectors);
    qahci_slot_prepare(&am.a, 0, slot, fis, false, 0, prd, nprd);
}

START_TEST(test_bad_ci_with_list_stopped)
{
    QAhci *a = &am.a;
    uint64_t buf = qos_alloc(&am.q, 4096, 4096);
    QAhciPrd prd = {buf, 4096, false};
    Bad b;

    qahci_px_wreg(a, 0, QAHCI_PX_CMD,
                  qahci_px_rreg(a, 0, QAHCI_PX_CMD) & ~QAHCI_PX_CMD_ST);
    prepare_read(0, 0, 8, &prd, 1);
    bad_begin(&b);
    qahci_px_wreg(a, 0, QAHCI_PX_CI, 1);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_CI), 0);
    bad_end(&b, QAHCI_PX_IS_IFS, 0x04);
}
END_TEST

START_TEST(test_bad_command_list_outside_ram)
{
    QAhci *a = &am.a;
    Bad b;

    /* Above 4 GiB, where there is no RAM. */
    qahci_px_wreg(a, 0, QAHCI_PX_CLBU, 1);
    bad_begin(&b);
    run_bad(0, false);
    qahci_px_wreg(a, 0, QAHCI_PX_CLBU, 0);
    bad_end(&b, QAHCI_PX_IS_HBFS, 0x04);

    /* Just past the end of RAM (PxCLB keeps 1 KiB alignment). */
    qahci_px_wreg(a, 0, QAHCI_PX_CLB, AM_RAM_SIZE);
    bad_begin(&b);
    run_bad(31, false);
    qahci_px_wreg(a, 0, QAHCI_PX_CLB, (uint32_t)a->port[0].clb);
    bad_end(&b, QAHCI_PX_IS_HBFS, 0x04);
}
END_TEST

START_TEST(test_bad_command_table)
{
    QAhci *a = &am.a;
    uint64_t ctba = a->port[0].ctba[0];
    Bad b;

    qahci_slot_header(a, 0, 0, 5, AM_RAM_SIZE); /* outside RAM */
    bad_begin(&b);
    run_bad(0, false);
    bad_end(&b, QAHCI_PX_IS_HBFS, 0x04);

    qahci_slot_header(a, 0, 0, 5, 0xffffffffffffff80ULL); /* wraps */
    bad_begin(&b);
    run_bad(0, false);
    bad_end(&b, QAHCI_PX_IS_HBFS, 0x04);

    qahci_slot_header(a, 0, 0, 5, ctba + 0x40); /* not 128-byte aligned */
    bad_begin(&b);
    run_bad(0, false);
    bad_end(&b, QAHCI_PX_IS_IFS, 0x04);
}
END_TEST

START_TEST(test_bad_prdt_outside_ram)
{
    QAhci *a = &am.a;
    uint64_t ctba = AM_RAM_SIZE - 0x80; /* the PRDT starts where RAM ends */
    uint8_t fis[20];
    Bad b;

    qahci_fis_h2d(fis, QATA_READ_DMA_EXT, 0, 0, 8);
    memcpy(am_ram(ctba), fis, sizeof(fis));
    qahci_slot_header(a, 0, 0, 5 | 1u << 16, ctba);
    bad_begin(&b);
    run_bad(0, false);
    bad_end(&b, QAHCI_PX_IS_HBFS, 0x04);
}
END_TEST

START_TEST(test_bad_buffer_outside_ram)
{
    QAhciPrd tail = {AM_RAM_SIZE - 2048, 4096, false};
    QAhciPrd wrap = {0xfffffffffffff000ULL, 4096, false};
    Bad b;

    prepare_read(0, 0, 8, &tail, 1);
    bad_begin(&b);
    run_bad(0, false);
    bad_end(&b, QAHCI_PX_IS_HBFS, 0x04);

    prepare_read(0, 0, 8, &wrap, 1);
    bad_begin(&b);
    run_bad(0, false);
    bad_end(&b, QAHCI_PX_IS_HBFS, 0x04);

    /* The same for a write: nothing may be read from outside either. */
    {
        uint8_t fis[20];

        qahci_fis_h2d(fis, QATA_WRITE_DMA_EXT, 0, 0, 8);
        qahci_slot_prepare(&am.a, 0, 0, fis, true, 0, &tail, 1);
        bad_begin(&b);
        run_bad(0, false);
        bad_end(&b, QAHCI_PX_IS_HBFS, 0x04);
    }
}
END_TEST

START_TEST(test_bad_prd_alignment)
{
    uint64_t buf = qos_alloc(&am.q, 8192, 4096);
    QAhciPrd odd_addr = {buf + 1, 4096, false};
    QAhciPrd odd_len[2] = {{buf, 4095, false}, {buf + 4096, 4096, false}};
    Bad b;

    prepare_read(0, 0, 8, &odd_addr, 1);
    bad_begin(&b);
    run_bad(0, false);
    bad_end(&b, QAHCI_PX_IS_IFS, 0x04);

    prepare_read(0, 0, 8, odd_len, 2);
    bad_begin(&b);
    run_bad(0, false);
    bad_end(&b, QAHCI_PX_IS_IFS, 0x04);
}
END_TEST

START_TEST(test_bad_prdt_empty_or_short)
{
    uint64_t buf = qos_alloc(&am.q, 4096, 4096);
    QAhciPrd prd[3] = {{buf, 1024, false},
                       {buf + 1024, 1024, false},
                       {buf + 2048, 1024, false}};
    Bad b;

    prepare_read(0, 0, 8, NULL, 0); /* PRDTL 0 for a data command */
    bad_begin(&b);
    run_bad(0, false);
    bad_end(&b, QAHCI_PX_IS_OFS, 0x04);

    prepare_read(0, 0, 8, prd, 3); /* 3 KiB for 4 KiB */
    bad_begin(&b);
    run_bad(0, false);
    bad_end(&b, QAHCI_PX_IS_OFS, 0x04);

    /* The same for NCQ. */
    {
        uint8_t fis[20];

        qahci_fis_ncq(fis, QATA_READ_FPDMA_QUEUED, 4, 0, 8, false);
        qahci_slot_prepare(&am.a, 0, 4, fis, false, 0, prd, 3);
        bad_begin(&b);
        run_bad(4, true);
        ck_assert_uint_eq(qahci_px_rreg(&am.a, 0, QAHCI_PX_SACT), 1u << 4);
        bad_end(&b, QAHCI_PX_IS_OFS, 0x04);
        ck_assert_uint_eq(qahci_px_rreg(&am.a, 0, QAHCI_PX_SACT), 0);
    }
}
END_TEST

/* More PRD bytes than the transfer needs is fine, unread entries too. */
START_TEST(test_prdt_longer_than_needed)
{
    uint64_t buf = qos_alloc(&am.q, 8192, 4096);
    QAhciPrd prd[3] = {
        {buf, 8192, false}, {AM_RAM_SIZE * 4, 4096, false}, {1, 3, false}};

    prepare_read(0, 200, 8, prd, 3);
    am_stderr_begin();
    ck_assert_int_eq(qahci_run(&am.a, 0, 0, false), 0);
    ck_assert_int_eq(am_stderr_end(), 0);
    am_check_pattern(0, 200 * 512, buf, 4096);
    ck_assert_uint_eq(qahci_slot_prdbc(&am.a, 0, 0), 4096);
}
END_TEST

/* The LBA of the D2H FIS port 0 last received (ATA8-ACS error outputs). */
static uint64_t d2h_lba(void)
{
    const uint8_t *f = am_ram(am.a.port[0].fb + 0x40);

    ck_assert_uint_eq(f[0], 0x34);
    return (uint64_t)f[4] | (uint64_t)f[5] << 8 | (uint64_t)f[6] << 16 |
           (uint64_t)f[8] << 24 | (uint64_t)f[9] << 32 | (uint64_t)f[10] << 40;
}

START_TEST(test_bad_lba_beyond_disk)
{
    uint64_t buf = qos_alloc(&am.q, 8192, 4096);
    QAhciPrd prd = {buf, 8192, false};
    uint8_t fis[20];
    Bad b;

    /* The error output names the first sector that is not there. */
    prepare_read(0, AM_DISK_SECTORS - 4, 8, &prd, 1);
    bad_begin(&b);
    run_bad(0, false);
    ck_assert_uint_eq(d2h_lba(), AM_DISK_SECTORS);
    bad_end(&b, 0, 0x10);

    prepare_read(0, 0xffffffffffffULL, 1, &prd, 1);
    bad_begin(&b);
    run_bad(0, false);
    ck_assert_uint_eq(d2h_lba(), 0xffffffffffffULL);
    bad_end(&b, 0, 0x10);

    qahci_fis_ncq(fis, QATA_WRITE_FPDMA_QUEUED, 6, AM_DISK_SECTORS, 1, false);
    qahci_slot_prepare(&am.a, 0, 6, fis, true, 0, &prd, 1);
    bad_begin(&b);
    run_bad(6, true);
    bad_end(&b, 0, 0x10);
}
END_TEST

START_TEST(test_bad_ncq_tag)
{
    uint64_t buf = qos_alloc(&am.q, 4096, 4096);
    QAhciPrd prd = {buf, 4096, false};
    uint8_t fis[20];
    Bad b;

    qahci_fis_ncq(fis, QATA_READ_FPDMA_QUEUED, 5, 0, 8, false);
    qahci_slot_prepare(&am.a, 0, 3, fis, false, 0, &prd, 1);
    bad_begin(&b);
    run_bad(3, true);
    bad_end(&b, QAHCI_PX_IS_IFS, 0x04);
}
END_TEST

/* A slot issued again while its queued command is with the disk. */
START_TEST(test_bad_slot_reissued_while_busy)
{
    QAhci *a = &am.a;
    uint64_t buf = qos_alloc(&am.q, 4096, 4096);
    QAhciPrd prd = {buf, 4096, false};
    uint8_t fis[20];
    Bad b;

    /* A write of what the disk holds: the result is the same whenever. */
    for (uint64_t off = 0; off < 4096; off += 8) {
        uint64_t v = am_pattern(0, 64 * 512 + off);

        memcpy(am_ram(buf + off), &v, 8);
    }
    qahci_fis_ncq(fis, QATA_WRITE_FPDMA_QUEUED, 4, 64, 8, false);
    qahci_slot_prepare(a, 0, 4, fis, true, 0, &prd, 1);
    blk_inject_delay_us(am.blk[0], 200000);
    bad_begin(&b);
    qahci_issue(a, 0, 1u << 4, true);
    ck_assert_uint_eq(blk_in_flight(am.blk[0]), 1);
    qahci_px_wreg(a, 0, QAHCI_PX_CI, 1u << 4);
    ck_assert_msg(
        qahci_px_rreg(a, 0, QAHCI_PX_IS) & QAHCI_PX_IS_TFES,
        "IS %x CI %x SACT %x TFD %x", qahci_px_rreg(a, 0, QAHCI_PX_IS),
        qahci_px_rreg(a, 0, QAHCI_PX_CI), qahci_px_rreg(a, 0, QAHCI_PX_SACT),
        qahci_px_rreg(a, 0, QAHCI_PX_TFD));
    blk_inject_delay_us(am.blk[0], 0);
    bad_end(&b, QAHCI_PX_IS_IFS, 0x04);
    ck_assert_uint_eq(blk_in_flight(am.blk[0]), 0);
}
END_TEST

START_TEST(test_bad_fis)
{
    QAhci *a = &am.a;
    uint64_t ctba = a->port[0].ctba[0];
    uint8_t fis[20];
    Bad b;

    qahci_fis_h2d(fis, QATA_FLUSH_CACHE, 0, 0, 0);
    fis[0] = 0x34; /* a device-to-host type */
    qahci_slot_prepare(a, 0, 0, fis, false, 0, NULL, 0);
    bad_begin(&b);
    run_bad(0, false);
    bad_end(&b, QAHCI_PX_IS_IFS, 0x04);

    qahci_fis_h2d(fis, QATA_FLUSH_CACHE, 0, 0, 0);
    fis[1] |= 2; /* port multiplier port 2 */
    qahci_slot_prepare(a, 0, 0, fis, false, 0, NULL, 0);
    bad_begin(&b);
    run_bad(0, false);
    bad_end(&b, QAHCI_PX_IS_IFS, 0x04);

    fis[1] &= ~0x0f;
    qahci_slot_prepare(a, 0, 0, fis, false, 0, NULL, 0);
    qahci_slot_header(a, 0, 0, 0, ctba); /* FIS length 0 */
    bad_begin(&b);
    run_bad(0, false);
    bad_end(&b, QAHCI_PX_IS_IFS, 0x04);

    qahci_slot_header(a, 0, 0, 5 | 3u << 12, ctba); /* PMP 3 */
    bad_begin(&b);
    run_bad(0, false);
    bad_end(&b, QAHCI_PX_IS_IFS, 0x04);

    /* CHS addressing (LBA bit clear) for READ DMA. */
    {
        uint64_t buf = qos_alloc(&am.q, 4096, 4096);
        QAhciPrd prd = {buf, 4096, false};

        qahci_fis_h2d(fis, QATA_READ_DMA, 0, 0, 8);
        fis[7] = 0xa0;
        qahci_slot_prepare(a, 0, 0, fis, false, 0, &prd, 1);
        bad_begin(&b);
        run_bad(0, false);
        bad_end(&b, 0, 0x04);
    }
}
END_TEST

/* 1280 two-byte buffers with gaps between: more than one request takes. */
START_TEST(test_bad_too_many_prds)
{
    QAhci *a = &am.a;
    const unsigned n = 1280;
    uint64_t table = qos_alloc(&am.q, 0x80 + n * 16, 128);
    uint64_t buf = qos_alloc(&am.q, n * 4, 4096);
    uint8_t fis[20];
    Bad b;

    qahci_fis_h2d(fis, QATA_READ_DMA_EXT, 0, 0, n * 2 / 512);
    memset(am_ram(table), 0, 0x80);
    memcpy(am_ram(table), fis, sizeof(fis));
    for (unsigned i = 0; i < n; i++) {
        uint64_t addr = buf + i * 4;
        uint32_t dbc = 2 - 1;

        memcpy(am_ram(table + 0x80 + i * 16), &addr, 8);
        memset(am_ram(table + 0x80 + i * 16 + 8), 0, 4);
        memcpy(am_ram(table + 0x80 + i * 16 + 12), &dbc, 4);
    }
    qahci_slot_header(a, 0, 0, 5 | n << 16, table);
    bad_begin(&b);
    run_bad(0, false);
    bad_end(&b, QAHCI_PX_IS_IFS, 0x04);
}
END_TEST

START_TEST(test_bad_fis_area_outside_ram)
{
    QAhci *a = &am.a;
    uint32_t cmd;

    ck_assert(qahci_port_stop(a, 0));
    qahci_port_clear_is(a, 0);
    qahci_px_wreg(a, 0, QAHCI_PX_FB, AM_RAM_SIZE);
    am_stderr_begin();
    cmd = qahci_px_rreg(a, 0, QAHCI_PX_CMD);
    qahci_px_wreg(a, 0, QAHCI_PX_CMD, cmd | QAHCI_PX_CMD_FRE);
    ck_assert_int_eq(am_stderr_end(), 1);
    cmd = qahci_px_rreg(a, 0, QAHCI_PX_CMD);
    ck_assert(!(cmd & (QAHCI_PX_CMD_FRE | QAHCI_PX_CMD_FR)));
    ck_assert(qahci_px_rreg(a, 0, QAHCI_PX_IS) & QAHCI_PX_IS_HBFS);
    am_start_port(a, 0);
    good_read();
}
END_TEST

START_TEST(test_bad_port_without_device)
{
    QAhci *a = &am.a;
    uint32_t cmd;

    ck_assert(!qahci_port_start(a, 1)); /* FIS receive on, no list */
    cmd = qahci_px_rreg(a, 1, QAHCI_PX_CMD);
    qahci_px_wreg(a, 1, QAHCI_PX_CMD, cmd | QAHCI_PX_CMD_ST);
    qahci_slot_prepare(a, 1, 0, (uint8_t[20]){0x27, 0x80, QATA_FLUSH_CACHE},
                       false, 0, NULL, 0);
    am_stderr_begin();
    ck_assert_int_eq(qahci_run(a, 1, 0, false), -EIO);
    ck_assert_int_eq(am_stderr_end(), 1);
    ck_assert(qahci_px_rreg(a, 1, QAHCI_PX_IS) & QAHCI_PX_IS_IFS);
    good_read();
}
END_TEST

START_TEST(test_bad_register_writes)
{
    QAhci *a = &am.a;
    uint64_t px = a->abar + 0x100;
    uint32_t cmd = qahci_px_rreg(a, 0, QAHCI_PX_CMD);

    am_stderr_begin();
    qos_writeb(&am.q, px + QAHCI_PX_CMD, 0);     /* a byte */
    qos_writew(&am.q, px + QAHCI_PX_CMD + 2, 0); /* a word */
    qos_writel(&am.q, px + QAHCI_PX_CMD + 1, 0); /* misaligned */
    qahci_px_wreg(a, 0, 0x40, 1);                /* PxFBS */
    qahci_wreg(a, 0x24, 1);                      /* CAP2 */
    qahci_wreg(a, 0x100 + 6 * 0x80, 1);          /* no port 6 */
    ck_assert_int_eq(am_stderr_end(), 6);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_CMD), cmd);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, 0x40), 0);
    good_read();
}
END_TEST

TCase *ahci_bad_tcase(void)
{
    TCase *tc = tcase_create("bad-input");

    tcase_add_checked_fixture(tc, bad_setup, bad_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_bad_ci_with_list_stopped);
    tcase_add_test(tc, test_bad_command_list_outside_ram);
    tcase_add_test(tc, test_bad_command_table);
    tcase_add_test(tc, test_bad_prdt_outside_ram);
    tcase_add_test(tc, test_bad_buffer_outside_ram);
    tcase_add_test(tc, test_bad_prd_alignment);
    tcase_add_test(tc, test_bad_prdt_empty_or_short);
    tcase_add_test(tc, test_prdt_longer_than_needed);
    tcase_add_test(tc, test_bad_lba_beyond_disk);
    tcase_add_test(tc, test_bad_ncq_tag);
    tcase_add_test(tc, test_bad_slot_reissued_while_busy);
    tcase_add_test(tc, test_bad_fis);
    tcase_add_test(tc, test_bad_too_many_prds);
    tcase_add_test(tc, test_bad_fis_area_outside_ram);
    tcase_add_test(tc, test_bad_port_without_device);
    tcase_add_test(tc, test_bad_register_writes);
    return tc;
}
