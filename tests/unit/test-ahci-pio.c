/*
 * Tests of the ATA PIO data commands over AHCI (devices/ahci-cmd.c,
 * ahci-fis.c): READ/WRITE SECTORS (EXT), READ/WRITE MULTIPLE (EXT) and SET
 * MULTIPLE MODE, driven through the qos AHCI driver on the machine of
 * ahci-machine.c. Each command's data is checked byte for byte against the
 * image file, and so is what the guest can see of the PIO protocol: the
 * last PIO Setup FIS, the D2H FIS (data-out only), PxIS, PxTFD, PRDBC.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aio/main-loop.h"
#include "tests/unit/ahci-machine.h"
#include "tests/unit/suites.h"

#define READ_SECTORS       0x20
#define READ_SECTORS_EXT   0x24
#define READ_MULTIPLE_EXT  0x29
#define WRITE_SECTORS      0x30
#define WRITE_SECTORS_EXT  0x34
#define WRITE_MULTIPLE_EXT 0x39
#define READ_MULTIPLE      0xc4
#define WRITE_MULTIPLE     0xc5
#define SET_MULTIPLE_MODE  0xc6

/* PIO Setup FIS byte 1: I (interrupt) and D (device to host). */
#define PSFIS_I 0x40
#define PSFIS_D 0x20

/* A byte the device never writes into the FIS area by itself. */
#define STALE 0xee

static bool is_write(uint8_t command)
{
    return command == WRITE_SECTORS || command == WRITE_SECTORS_EXT ||
           command == WRITE_MULTIPLE || command == WRITE_MULTIPLE_EXT;
}

/*
 * Issue @command for @count (the FIS field: 0 means the maximum) at @lba
 * through @nprd PRDs in @slot of @port and wait for it; PxIS is left for
 * the caller. The PIO Setup and D2H slots of the FIS area are made stale
 * first so that only what this command posts can pass the checks.
 */
static void pio_issue(int port, int slot, uint8_t command, uint64_t lba,
                      uint16_t count, const QAhciPrd *prd, unsigned nprd)
{
    QAhci *a = &am.a;
    uint64_t fb = a->port[port].fb;
    uint8_t fis[20];

    memset(am_ram(fb + QAHCI_RFIS_PSFIS), STALE, 20);
    memset(am_ram(fb + QAHCI_RFIS_RFIS), STALE, 20);
    qahci_port_clear_is(a, port);
    qahci_fis_h2d(fis, command, 0, lba, count);
    qahci_slot_prepare(a, port, slot, fis, is_write(command), 0, prd, nprd);
    qahci_issue(a, port, 1u << slot, false);
    am_wait_idle(a, port, 1u << slot);
}

/*
 * What a successful PIO command leaves: the last PIO Setup FIS (@flags,
 * @e_status, @last_block bytes), the interrupt causes @is_bits, PxTFD
 * idle, PRDBC the whole transfer; a D2H FIS after data-out only.
 */
static void expect_pio_done(int port, int slot, bool write, uint8_t flags,
                            uint8_t e_status, uint16_t last_block,
                            uint32_t bytes, uint32_t is_bits)
{
    QAhci *a = &am.a;
    const uint8_t *ps = am_ram(a->port[port].fb + QAHCI_RFIS_PSFIS);
    const uint8_t *d2h = am_ram(a->port[port].fb + QAHCI_RFIS_RFIS);

    ck_assert_uint_eq(qahci_px_rreg(a, port, QAHCI_PX_IS), is_bits);
    ck_assert_uint_eq(qahci_px_rreg(a, port, QAHCI_PX_TFD), 0x50);
    ck_assert_uint_eq(qahci_px_rreg(a, port, QAHCI_PX_CI), 0);
    ck_assert_uint_eq(qahci_slot_prdbc(a, port, slot), bytes);
    ck_assert_uint_eq(ps[0], 0x5f);
    ck_assert_uint_eq(ps[1], flags);
    ck_assert_uint_eq(ps[2], 0x58); /* DRDY DSC DRQ: the block is ready */
    ck_assert_uint_eq(ps[3], 0);
    ck_assert_uint_eq(ps[15], e_status);
    ck_assert_uint_eq(ps[16] | ps[17] << 8, last_block);
    if (write) {
        ck_assert_uint_eq(d2h[0], 0x34);
        ck_assert_uint_eq(d2h[1], 0x40);
        ck_assert_uint_eq(d2h[2], 0x50);
        ck_assert_uint_eq(d2h[3], 0);
    } else {
        ck_assert_uint_eq(d2h[0], STALE); /* data-in ends without one */
    }
    qahci_port_clear_is(a, port);
}

/* A data-in command's ending; its last DRQ block was @last bytes. */
static void expect_read_done(int port, int slot, uint16_t last, uint32_t bytes)
{
    expect_pio_done(port, slot, false, PSFIS_I | PSFIS_D, 0x50, last, bytes,
                    QAHCI_PX_IS_PSS);
}

/* Data-out: only blocks after the first interrupt; E_Status says BSY. */
static void expect_write_done(int port, int slot, uint32_t blocks,
                              uint16_t last, uint32_t bytes)
{
    bool more = blocks > 1;

    expect_pio_done(port, slot, true, more ? PSFIS_I : 0, 0xd0, last, bytes,
                    QAHCI_PX_IS_DHRS | (more ? QAHCI_PX_IS_PSS : 0));
}

/* The command in @slot failed with @error; recover the port. */
static void expect_abort(int port, int slot, uint8_t error, uint32_t is_extra)
{
    QAhci *a = &am.a;
    const uint8_t *d2h = am_ram(a->port[port].fb + QAHCI_RFIS_RFIS);

    ck_assert_uint_eq(qahci_px_rreg(a, port, QAHCI_PX_IS),
                      QAHCI_PX_IS_TFES | QAHCI_PX_IS_DHRS | is_extra);
    ck_assert_uint_eq(qahci_px_rreg(a, port, QAHCI_PX_TFD),
                      (uint32_t)error << 8 | 0x51);
    ck_assert_uint_eq(qahci_px_rreg(a, port, QAHCI_PX_CI), 1u << slot);
    ck_assert_uint_eq(d2h[0], 0x34);
    ck_assert_uint_eq(d2h[2], 0x51);
    ck_assert_uint_eq(d2h[3], error);
    ck_assert(qahci_port_recover(a, port));
    ck_assert_uint_eq(qahci_px_rreg(a, port, QAHCI_PX_CI), 0);
}

/*
 * Issue, expect the command to fail with @error, recover. Returns the
 * "guest error" lines logged (one per failure, within the log's rate
 * limit; an I/O error logs as an error of the host's).
 */
static int pio_fail(int port, int slot, uint8_t command, uint64_t lba,
                    uint16_t count, const QAhciPrd *prd, unsigned nprd,
                    uint8_t error, uint32_t is_extra)
{
    QAhci *a = &am.a;
    uint64_t fb = a->port[port].fb;
    uint8_t fis[20];
    int lines;

    memset(am_ram(fb + QAHCI_RFIS_RFIS), STALE, 20);
    qahci_port_clear_is(a, port);
    qahci_fis_h2d(fis, command, 0, lba, count);
    qahci_slot_prepare(a, port, slot, fis, is_write(command), 0, prd, nprd);
    am_stderr_begin();
    ck_assert_int_eq(qahci_run(a, port, slot, false), -EIO);
    lines = am_stderr_end();
    expect_abort(port, slot, error, is_extra);
    return lines;
}

static void fill(uint64_t gpa, uint64_t bytes, uint8_t seed)
{
    for (uint64_t i = 0; i < bytes; i++) {
        am_ram(gpa)[i] = (uint8_t)(i * 13 + seed + (i >> 9));
    }
}

/* The image of @disk holds guest RAM [gpa, gpa + bytes) at @offset. */
static void check_image(int disk, uint64_t offset, uint64_t gpa, uint64_t bytes)
{
    uint8_t *buf = malloc(bytes);

    ck_assert_int_eq(pread(am.img_fd[disk], buf, bytes, offset),
                     (ssize_t)bytes);
    ck_assert_msg(!memcmp(buf, am_ram(gpa), bytes),
                  "image differs at offset %llu", (unsigned long long)offset);
    free(buf);
}

static unsigned prds(QAhciPrd *prd, uint64_t buf, uint64_t bytes)
{
    return qahci_prds(prd, QAHCI_PRDT_MAX, buf, bytes, 4096);
}

static void set_multiple(int port, uint8_t count)
{
    ck_assert_int_eq(qahci_nondata(&am.a, port, SET_MULTIPLE_MODE, 0, 0, count),
                     0);
}

/* ---- READ/WRITE SECTORS ---------------------------------------------------
 */

/* 28-bit: 1, 2, 255 and 256 (count 0) sectors, one DRQ block each. */
START_TEST(test_read_sectors)
{
    static const unsigned counts[] = {1, 2, 255, 0};
    uint64_t buf = qos_alloc(&am.q, 256 * 512, 4096);
    QAhciPrd prd[QAHCI_PRDT_MAX];

    am_start_port(&am.a, 0);
    for (unsigned i = 0; i < 4; i++) {
        uint32_t sectors = counts[i] ? counts[i] : 256;
        uint64_t lba = 1000 + i * 300;
        unsigned n = prds(prd, buf, sectors * 512);

        memset(am_ram(buf), 0, 256 * 512);
        pio_issue(0, i, READ_SECTORS, lba, counts[i], prd, n);
        expect_read_done(0, i, 512, sectors * 512);
        am_check_pattern(0, lba * 512, buf, sectors * 512);
    }
}
END_TEST

START_TEST(test_write_sectors)
{
    static const unsigned counts[] = {1, 2, 255, 0};
    uint64_t buf = qos_alloc(&am.q, 256 * 512, 4096);
    uint64_t back = qos_alloc(&am.q, 256 * 512, 4096);
    QAhciPrd prd[QAHCI_PRDT_MAX];

    am_start_port(&am.a, 0);
    for (unsigned i = 0; i < 4; i++) {
        uint32_t sectors = counts[i] ? counts[i] : 256;
        uint64_t lba = 3000 + i * 300;
        unsigned n = prds(prd, buf, sectors * 512);

        fill(buf, sectors * 512, i);
        pio_issue(0, i, WRITE_SECTORS, lba, counts[i], prd, n);
        expect_write_done(0, i, sectors, 512, sectors * 512);
        check_image(0, lba * 512, buf, sectors * 512);
        /* The sector after the write kept the image's pattern. */
        n = prds(prd, back, 512);
        pio_issue(0, 5, READ_SECTORS, lba + sectors, 1, prd, n);
        expect_read_done(0, 5, 512, 512);
        am_check_pattern(0, (lba + sectors) * 512, back, 512);
    }
}
END_TEST

/* 48-bit: the count's high byte and LBA bits 47:24 are used. */
START_TEST(test_sectors_ext)
{
    uint64_t buf = qos_alloc(&am.q, 300 * 512, 4096);
    uint64_t back = qos_alloc(&am.q, 300 * 512, 4096);
    QAhciPrd prd[QAHCI_PRDT_MAX];
    unsigned n = prds(prd, buf, 300 * 512);

    am_start_port(&am.a, 0);
    pio_issue(0, 0, READ_SECTORS_EXT, 7000, 300, prd, n);
    expect_read_done(0, 0, 512, 300 * 512);
    am_check_pattern(0, 7000 * 512, buf, 300 * 512);

    fill(buf, 300 * 512, 77);
    pio_issue(0, 1, WRITE_SECTORS_EXT, 9000, 300, prd, n);
    expect_write_done(0, 1, 300, 512, 300 * 512);
    check_image(0, 9000 * 512, buf, 300 * 512);
    n = prds(prd, back, 300 * 512);
    pio_issue(0, 2, READ_SECTORS_EXT, 9000, 300, prd, n);
    expect_read_done(0, 2, 512, 300 * 512);
    ck_assert(!memcmp(am_ram(buf), am_ram(back), 300 * 512));

    /* An LBA beyond 28 bits is past this disk: not wrapped to a small one. */
    pio_fail(0, 3, READ_SECTORS_EXT, 1ULL << 32 | 16, 1, prd, 1, 0x10, 0);
}
END_TEST

/*
 * PRDs that split sectors anywhere (even sizes only, as AHCI requires),
 * scattered with gaps: the data lands in exactly those bytes.
 */
START_TEST(test_unaligned_prds)
{
    static const uint32_t sizes[] = {100, 412, 1536, 2, 510, 1000, 536};
    uint64_t base = qos_alloc(&am.q, 16384, 4096);
    uint64_t expect = qos_alloc(&am.q, 4096, 4096);
    QAhciPrd prd[7];
    uint64_t off = 0, at = base;

    am_start_port(&am.a, 0);
    for (unsigned i = 0; i < 7; i++) {
        prd[i] = (QAhciPrd){at, sizes[i], false};
        at += sizes[i] + 64; /* a gap the device must not touch */
        off += sizes[i];
    }
    ck_assert_uint_eq(off, 8 * 512);

    memset(am_ram(base), 0xaa, 16384);
    pio_issue(0, 0, READ_SECTORS, 600, 8, prd, 7);
    expect_read_done(0, 0, 512, 8 * 512);
    off = 0;
    for (unsigned i = 0; i < 7; i++) {
        const uint8_t *gap = am_ram(prd[i].addr + sizes[i]);

        /* am_check_pattern() works in 8-byte words; copy out to compare. */
        memcpy(am_ram(expect + off), am_ram(prd[i].addr), sizes[i]);
        off += sizes[i];
        for (int j = 0; j < 64; j++) {
            ck_assert_uint_eq(gap[j], 0xaa);
        }
    }
    am_check_pattern(0, 600 * 512, expect, 8 * 512);

    /* Out of the same scattered buffers; the image gets them in order. */
    off = 0;
    for (unsigned i = 0; i < 7; i++) {
        fill(prd[i].addr, sizes[i], (uint8_t)(i * 31));
        memcpy(am_ram(expect + off), am_ram(prd[i].addr), sizes[i]);
        off += sizes[i];
    }
    prd[6].irq = true; /* and the PRD's I bit adds DPS */
    pio_issue(0, 1, WRITE_SECTORS, 640, 8, prd, 7);
    expect_pio_done(0, 1, true, PSFIS_I, 0xd0, 512, 8 * 512,
                    QAHCI_PX_IS_DHRS | QAHCI_PX_IS_PSS | QAHCI_PX_IS_DPS);
    check_image(0, 640 * 512, expect, 8 * 512);
}
END_TEST

/* ---- The largest transfer: 48-bit count 0 = 65536 sectors ---------------
 */

#define BIG_SECTORS (65536u + 2048u)
#define BIG_CHUNK   (4u << 20) /* the largest PRD */

/* A sparse image of 33 MiB on port 1, patterned where the test looks. */
static int add_big_disk(void)
{
    const char *dir = getenv("MINIVMM_TEST_DIR");
    char path[256], err[256];
    int i = am.ndisks++;

    snprintf(path, sizeof(path), "%s/minivmm-test-pio-XXXXXX",
             dir && *dir ? dir : "/var/tmp");
    am.img_fd[i] = mkstemp(path);
    ck_assert_int_ge(am.img_fd[i], 0);
    ck_assert_int_eq(ftruncate(am.img_fd[i], BIG_SECTORS * 512ULL), 0);
    ck_assert_int_eq(
        blk_open_string(path, "aio=io_uring", &am.blk[i], err, sizeof(err)), 0);
    unlink(path);
    bql_lock();
    ck_assert_int_eq(ahci_attach_disk(am.ahci[0], 1, am.blk[i], NULL), 0);
    bql_unlock();
    am_start_port(&am.a, 1);
    return i;
}

START_TEST(test_ext_count0_is_65536)
{
    uint64_t scratch = qos_alloc(&am.q, BIG_CHUNK, 4096);
    uint64_t buf = qos_alloc(&am.q, BIG_CHUNK, 4096);
    const uint64_t lba = 1024, bytes = 65536ULL * 512;
    uint8_t *img = malloc(BIG_CHUNK);
    QAhciPrd prd[8];
    int d = add_big_disk();

    /*
     * Reading: the first 28 MiB all land in one scratch buffer, the last
     * 4 MiB in @buf, which must then hold the image's last 4 MiB of the
     * range; anything short of 65536 sectors fails the PRDT or the data.
     */
    fill(buf, BIG_CHUNK, 5);
    ck_assert_int_eq(pwrite(am.img_fd[d], am_ram(buf), BIG_CHUNK,
                            lba * 512 + bytes - BIG_CHUNK),
                     BIG_CHUNK);
    memset(am_ram(buf), 0, BIG_CHUNK);
    for (int i = 0; i < 8; i++) {
        prd[i] = (QAhciPrd){i < 7 ? scratch : buf, BIG_CHUNK, false};
    }
    pio_issue(1, 0, READ_SECTORS_EXT, lba, 0, prd, 8);
    expect_read_done(1, 0, 512, bytes);
    check_image(d, lba * 512 + bytes - BIG_CHUNK, buf, BIG_CHUNK);

    /* Writing 65536 sectors from one 4 MiB buffer eight times over. */
    fill(buf, BIG_CHUNK, 9);
    for (int i = 0; i < 8; i++) {
        prd[i] = (QAhciPrd){buf, BIG_CHUNK, false};
    }
    pio_issue(1, 1, WRITE_SECTORS_EXT, lba, 0, prd, 8);
    expect_write_done(1, 1, 65536, 512, bytes);
    for (int i = 0; i < 8; i++) {
        check_image(d, lba * 512 + (uint64_t)i * BIG_CHUNK, buf, BIG_CHUNK);
    }
    /* The sector after the range was not written. */
    ck_assert_int_eq(pread(am.img_fd[d], img, 512, lba * 512 + bytes), 512);
    for (int i = 0; i < 512; i++) {
        ck_assert_uint_eq(img[i], 0);
    }
    free(img);
}
END_TEST

/* ---- SET MULTIPLE MODE and READ/WRITE MULTIPLE ----------------------------
 */

/*
 * Multiple mode comes up on, in blocks of 16 (as QEMU's ide-hd), IDENTIFY
 * word 59 says so; SET MULTIPLE MODE 0 turns it off, and then READ/WRITE
 * MULTIPLE abort; a hardware reset (COMRESET) brings the default back.
 */
START_TEST(test_multiple_mode_default)
{
    uint64_t buf = qos_alloc(&am.q, 20 * 512, 4096);
    QAhciPrd prd = {buf, 20 * 512, false};
    uint16_t id[256];

    am_start_port(&am.a, 0);
    ck_assert_int_eq(qahci_identify(&am.a, 0, id), 0);
    ck_assert_uint_eq(id[47], 0x8010);
    ck_assert_uint_eq(id[59], 0x0110);
    pio_issue(0, 0, READ_MULTIPLE, 0, 20, &prd, 1);
    expect_read_done(0, 0, 4 * 512, 20 * 512); /* blocks of 16: 16, 4 */

    /* Count 0 turns it off: ABRT and one log line, for all four. */
    set_multiple(0, 0);
    ck_assert_int_eq(qahci_identify(&am.a, 0, id), 0);
    ck_assert_uint_eq(id[59], 0);
    ck_assert_int_eq(pio_fail(0, 0, READ_MULTIPLE, 0, 16, &prd, 1, 0x04, 0), 1);
    pio_fail(0, 1, WRITE_MULTIPLE, 0, 16, &prd, 1, 0x04, 0);
    pio_fail(0, 2, READ_MULTIPLE_EXT, 0, 16, &prd, 1, 0x04, 0);
    pio_fail(0, 3, WRITE_MULTIPLE_EXT, 0, 16, &prd, 1, 0x04, 0);

    /* SET MULTIPLE MODE turns it on again, in its blocks. */
    set_multiple(0, 4);
    pio_issue(0, 4, READ_MULTIPLE, 0, 16, &prd, 1);
    expect_read_done(0, 4, 2048, 8192);

    /* COMRESET: the disk's hardware reset restores blocks of 16. */
    set_multiple(0, 0);
    ck_assert(qahci_port_comreset(&am.a, 0));
    am_start_port(&am.a, 0);
    ck_assert_int_eq(qahci_identify(&am.a, 0, id), 0);
    ck_assert_uint_eq(id[59], 0x0110);
    pio_issue(0, 5, READ_MULTIPLE, 0, 20, &prd, 1);
    expect_read_done(0, 5, 4 * 512, 20 * 512);
}
END_TEST

/* Powers of two up to 16 (IDENTIFY word 47) are taken, nothing else. */
START_TEST(test_set_multiple_values)
{
    static const uint8_t bad[] = {3, 6, 12, 17, 32, 64, 128, 255};
    uint64_t buf = qos_alloc(&am.q, 64 * 512, 4096);
    QAhciPrd prd = {buf, 64 * 512, false};
    uint8_t fis[20];

    am_start_port(&am.a, 0);
    for (unsigned m = 1; m <= 16; m *= 2) {
        uint32_t last = 37 % m ? 37 % m : m;

        set_multiple(0, m);
        /* 37 sectors in blocks of m: the last block is what is left. */
        pio_issue(0, 0, READ_MULTIPLE, 100, 37, &prd, 1);
        expect_read_done(0, 0, last * 512, 37 * 512);
        am_check_pattern(0, 100 * 512, buf, 37 * 512);
    }
    for (unsigned i = 0; i < sizeof(bad); i++) {
        set_multiple(0, 8);
        qahci_fis_h2d(fis, SET_MULTIPLE_MODE, 0, 0, bad[i]);
        qahci_slot_prepare(&am.a, 0, 1, fis, false, 0, NULL, 0);
        am_stderr_begin();
        ck_assert_int_eq(qahci_run(&am.a, 0, 1, false), -EIO);
        am_stderr_end();
        expect_abort(0, 1, 0x04, 0);
        /* ... and the rejected value turned multiple mode off. */
        pio_fail(0, 2, READ_MULTIPLE, 0, 8, &prd, 1, 0x04, 0);
    }
}
END_TEST

START_TEST(test_read_write_multiple)
{
    uint64_t buf = qos_alloc(&am.q, 300 * 512, 4096);
    uint64_t back = qos_alloc(&am.q, 300 * 512, 4096);
    QAhciPrd prd[QAHCI_PRDT_MAX];
    unsigned n = prds(prd, buf, 300 * 512);

    am_start_port(&am.a, 0);
    set_multiple(0, 16);
    /* 256 sectors (count 0): sixteen full blocks. */
    pio_issue(0, 0, READ_MULTIPLE, 50, 0, prd, n);
    expect_read_done(0, 0, 8192, 256 * 512);
    am_check_pattern(0, 50 * 512, buf, 256 * 512);

    /* 20 in blocks of 16: two blocks, the last of 4 sectors. */
    fill(buf, 20 * 512, 3);
    pio_issue(0, 1, WRITE_MULTIPLE, 400, 20, prd, n);
    expect_write_done(0, 1, 2, 4 * 512, 20 * 512);
    check_image(0, 400 * 512, buf, 20 * 512);

    /* One block only: data-out without an interrupt before it. */
    fill(buf, 16 * 512, 4);
    pio_issue(0, 2, WRITE_MULTIPLE, 500, 16, prd, n);
    expect_write_done(0, 2, 1, 16 * 512, 16 * 512);
    check_image(0, 500 * 512, buf, 16 * 512);

    /* 48-bit, 300 sectors in blocks of 8: 37 full blocks and one of 4. */
    set_multiple(0, 8);
    fill(buf, 300 * 512, 6);
    pio_issue(0, 3, WRITE_MULTIPLE_EXT, 10000, 300, prd, n);
    expect_write_done(0, 3, 38, 4 * 512, 300 * 512);
    check_image(0, 10000 * 512, buf, 300 * 512);
    n = prds(prd, back, 300 * 512);
    pio_issue(0, 4, READ_MULTIPLE_EXT, 10000, 300, prd, n);
    expect_read_done(0, 4, 4 * 512, 300 * 512);
    ck_assert(!memcmp(am_ram(buf), am_ram(back), 300 * 512));
}
END_TEST

/* A software reset keeps the multiple setting (ATA8-ACS). */
START_TEST(test_multiple_survives_srst)
{
    uint64_t buf = qos_alloc(&am.q, 8192, 4096);
    QAhciPrd prd = {buf, 8192, false};
    uint8_t fis[20] = {0x27, 0x00};

    am_start_port(&am.a, 0);
    set_multiple(0, 2);
    fis[15] = 0x04; /* SRST */
    qahci_slot_prepare(&am.a, 0, 0, fis, false,
                       QAHCI_CMDH_RESET | QAHCI_CMDH_CLR_BSY, NULL, 0);
    ck_assert_int_eq(qahci_run(&am.a, 0, 0, false), 0);
    fis[15] = 0;
    qahci_slot_prepare(&am.a, 0, 1, fis, false, 0, NULL, 0);
    ck_assert_int_eq(qahci_run(&am.a, 0, 1, false), 0);
    ck_assert_uint_eq(qahci_px_rreg(&am.a, 0, QAHCI_PX_SIG), 0x101);
    pio_issue(0, 2, READ_MULTIPLE, 8, 5, &prd, 1);
    expect_read_done(0, 2, 512, 5 * 512); /* blocks of 2: 2, 2, 1 */
    am_check_pattern(0, 8 * 512, buf, 5 * 512);
}
END_TEST

/* ---- Errors, as the DMA commands have them --------------------------------
 */

START_TEST(test_pio_errors)
{
    uint64_t buf = qos_alloc(&am.q, 8192, 4096);
    QAhciPrd prd = {buf, 8192, false};
    QAhciPrd short_prd = {buf, 1024, false};

    am_start_port(&am.a, 0);
    /* Past the end: IDNF. The last sector itself is fine. */
    pio_fail(0, 0, READ_SECTORS, AM_DISK_SECTORS - 1, 2, &prd, 1, 0x10, 0);
    pio_fail(0, 1, WRITE_SECTORS_EXT, AM_DISK_SECTORS, 1, &prd, 1, 0x10, 0);
    pio_issue(0, 2, READ_SECTORS, AM_DISK_SECTORS - 1, 1, &prd, 1);
    expect_read_done(0, 2, 512, 512);
    am_check_pattern(0, (AM_DISK_SECTORS - 1) * 512ULL, buf, 512);

    /* A PRDT shorter than the transfer: OFS, ABRT. */
    pio_fail(0, 3, READ_SECTORS, 0, 4, &short_prd, 1, 0x04, QAHCI_PX_IS_OFS);
    pio_fail(0, 4, WRITE_SECTORS, 0, 4, NULL, 0, 0x04, QAHCI_PX_IS_OFS);

    /* An I/O error: ABRT, no PIO Setup FIS, PRDBC untouched. */
    blk_inject_error(am.blk[0], BLOCK_OP_READ, 1, EIO);
    memset(am_ram(am.a.port[0].fb + QAHCI_RFIS_PSFIS), STALE, 20);
    pio_fail(0, 5, READ_SECTORS, 0, 4, &prd, 1, 0x04, 0);
    ck_assert_uint_eq(am_ram(am.a.port[0].fb + QAHCI_RFIS_PSFIS)[0], STALE);
    ck_assert_uint_eq(qahci_slot_prdbc(&am.a, 0, 5), 0);
    blk_inject_error(am.blk[0], BLOCK_OP_WRITE, 1, EIO);
    set_multiple(0, 0);
    /* Refused before the disk: the injected error is still to come. */
    pio_fail(0, 6, WRITE_MULTIPLE, 0, 4, &prd, 1, 0x04, 0);
    pio_fail(0, 6, WRITE_SECTORS, 0, 4, &prd, 1, 0x04, 0);

    /* CHS addressing (LBA bit clear) is not supported. */
    {
        uint8_t fis[20];

        qahci_fis_h2d(fis, READ_SECTORS, 0, 1, 1);
        fis[7] = 0;
        qahci_slot_prepare(&am.a, 0, 7, fis, false, 0, &prd, 1);
        am_stderr_begin();
        ck_assert_int_eq(qahci_run(&am.a, 0, 7, false), -EIO);
        am_stderr_end();
        expect_abort(0, 7, 0x04, 0);
    }
}
END_TEST

START_TEST(test_pio_write_readonly)
{
    uint64_t buf = qos_alloc(&am.q, 8192, 4096);
    QAhciPrd prd = {buf, 8192, false};
    int d = am_add_disk_opts("", "aio=io_uring,readonly=on");

    bql_lock();
    ck_assert_int_eq(ahci_attach_disk(am.ahci[0], 2, am.blk[d], NULL), 0);
    bql_unlock();
    am_start_port(&am.a, 2);
    fill(buf, 8192, 1);
    pio_fail(2, 0, WRITE_SECTORS, 10, 16, &prd, 1, 0x04, 0);
    pio_fail(2, 1, WRITE_SECTORS_EXT, 10, 16, &prd, 1, 0x04, 0);
    /* Reads still work, and the image is as it was. */
    pio_issue(2, 2, READ_SECTORS, 10, 16, &prd, 1);
    expect_read_done(2, 2, 512, 8192);
    am_check_pattern(d, 10 * 512, buf, 8192);
}
END_TEST

Suite *ahci_pio_suite(void)
{
    Suite *s = suite_create("ahci-pio");
    TCase *tc = tcase_create("pio");

    tcase_add_checked_fixture(tc, am_setup, am_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_read_sectors);
    tcase_add_test(tc, test_write_sectors);
    tcase_add_test(tc, test_sectors_ext);
    tcase_add_test(tc, test_unaligned_prds);
    tcase_add_test(tc, test_ext_count0_is_65536);
    tcase_add_test(tc, test_multiple_mode_default);
    tcase_add_test(tc, test_set_multiple_values);
    tcase_add_test(tc, test_read_write_multiple);
    tcase_add_test(tc, test_multiple_survives_srst);
    tcase_add_test(tc, test_pio_errors);
    tcase_add_test(tc, test_pio_write_readonly);
    suite_add_tcase(s, tc);
    return s;
}
