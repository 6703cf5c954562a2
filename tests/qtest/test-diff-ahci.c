/*
 * AHCI, QEMU 7.2 against minivmm: the same table of guest steps runs on
 * both machines (q35's ICH9 AHCI with one ide-hd, and minivmm's with one
 * SATA disk of the same size, serial, model and firmware revision), and
 * after every step the register file, the received-FIS area, the command's
 * result and the data read back are compared (tests/qtest/qemu-diff.h).
 *
 * More steps are more rows in ahci_steps[].
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/qos/ahci.h"
#include "tests/qtest/qemu-diff.h"
#include "tests/qtest/suites.h"

#define IMAGE_SIZE (16u << 20)
#define SECTORS    (IMAGE_SIZE / QAHCI_SECTOR)
#define BUF_SIZE   (256u << 10)
#define SERIAL     "QM00001"
#define MODEL      "minivmm_diff_disk" /* one word: args split on spaces */
#define FWREV      "2.5+"

/* One machine's guest: its HBA, a data buffer, and the last result. */
typedef struct AhciSide {
    QTest *qt;
    QAhci a;
    uint64_t buf;
    int result;    /* 0, -EIO, -ETIMEDOUT, or 1 for "true" steps */
    int slot;      /* the slot whose PRDBC the step reports, or -1 */
    bool identify; /* the step read IDENTIFY into the buffer */
    uint32_t data_len;
} AhciSide;

typedef struct AhciStep {
    const char *name;
    void (*run)(AhciSide *s);
    int expect; /* the result minivmm must give, whatever QEMU does */
} AhciStep;

/* The same pattern on both images, different from sector to sector. */
static uint8_t pattern(uint64_t i)
{
    return (uint8_t)(i * 7 + (i >> 9) * 13 + 1);
}

static void make_image(char *path, size_t len, const char *side)
{
    static uint8_t block[1 << 16];
    int fd;

    snprintf(path, len, "/var/tmp/minivmm-diff-ahci-%d-%s.img", getpid(), side);
    fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    ck_assert_int_ge(fd, 0);
    for (uint64_t off = 0; off < IMAGE_SIZE; off += sizeof(block)) {
        for (size_t i = 0; i < sizeof(block); i++) {
            block[i] = pattern(off + i);
        }
        ck_assert_int_eq(write(fd, block, sizeof(block)), sizeof(block));
    }
    close(fd);
}

/* A recognisable pattern for writes, and zeroes before reads. */
static void fill_buf(AhciSide *s, bool pattern_for_write, uint32_t len)
{
    uint8_t *b = malloc(len);

    for (uint32_t i = 0; i < len; i++) {
        b[i] = pattern_for_write ? (uint8_t)(i * 31 + 5) : 0;
    }
    qos_memwrite(&s->qt->qos, s->buf, b, len);
    free(b);
}

static void rw(AhciSide *s, bool write, uint64_t lba, uint32_t sectors,
               uint32_t prd_bytes)
{
    fill_buf(s, write, sectors * QAHCI_SECTOR);
    s->result = qahci_rw(&s->a, 0, 1, write, lba, sectors, s->buf, prd_bytes);
    s->slot = 1;
    s->data_len = sectors * QAHCI_SECTOR;
}

/* ---- The steps --------------------------------------------------------- */

static void step_hba_reset(AhciSide *s)
{
    s->result = qahci_hba_reset(&s->a);
}

static void step_port_start(AhciSide *s)
{
    s->result = qahci_port_start(&s->a, 0);
}

static void step_identify(AhciSide *s)
{
    uint16_t id[256];

    s->result = qahci_identify(&s->a, 0, id);
    s->slot = 0;
    s->identify = true;
}

static void step_read_4k(AhciSide *s)
{
    rw(s, false, 8, 8, 4096);
}

/* 64 KiB through sixteen 4 KiB PRDs. */
static void step_read_64k_16prd(AhciSide *s)
{
    rw(s, false, 100, 128, 4096);
}

/* 8 KiB through sixteen 512-byte PRDs. */
static void step_write_8k_16prd(AhciSide *s)
{
    rw(s, true, 2048, 16, 512);
}

static void step_read_back_8k(AhciSide *s)
{
    rw(s, false, 2048, 16, 8192);
}

/* 192 KiB through PRDs of 12 KiB: not a power of two. */
static void step_read_192k_odd_prd(AhciSide *s)
{
    rw(s, false, 9000, 384, 12288);
}

/* READ DMA (28-bit) with a sector count of 0: 256 sectors (ATA8-ACS). */
static void step_read_dma28_count0(AhciSide *s)
{
    QAhciPrd prd[4];
    uint8_t fis[20];
    unsigned n = qahci_prds(prd, 4, s->buf, 256 * QAHCI_SECTOR, 65536);

    fill_buf(s, false, 256 * QAHCI_SECTOR);
    qahci_fis_h2d(fis, QATA_READ_DMA, 0, 64, 0);
    qahci_slot_prepare(&s->a, 0, 2, fis, false, 0, prd, n);
    s->result = qahci_run(&s->a, 0, 2, false);
    s->slot = 2;
    s->data_len = 256 * QAHCI_SECTOR;
}

/* Four queued writes of 8 KiB in flight together, then their read back. */
static void ncq_batch(AhciSide *s, bool write)
{
    fill_buf(s, write, 4 * 8192);
    for (int tag = 0; tag < 4; tag++) {
        qahci_rw_ncq_issue(&s->a, 0, tag, write, 6000 + tag * 16, 16,
                           s->buf + tag * 8192, 4096);
    }
    s->result = qahci_wait(&s->a, 0, 0xf, QAHCI_TIMEOUT_MS);
    s->slot = 3;
    s->data_len = 4 * 8192;
}

static void step_ncq_write(AhciSide *s)
{
    ncq_batch(s, true);
}

static void step_ncq_read(AhciSide *s)
{
    ncq_batch(s, false);
}

static void step_flush(AhciSide *s)
{
    s->result = qahci_nondata(&s->a, 0, QATA_FLUSH_CACHE_EXT, 0, 0, 0);
}

/* The first sector past the end: IDNF (ATA8-ACS 6.2.6). */
static void step_bad_lba(AhciSide *s)
{
    rw(s, false, SECTORS, 8, 4096);
    s->data_len = 0;
}

/* A command code neither machine implements: ABRT. */
static void step_unknown_command(AhciSide *s)
{
    s->result = qahci_nondata(&s->a, 0, 0x5a, 0, 0, 0);
}

static void step_recover(AhciSide *s)
{
    s->result = qahci_port_recover(&s->a, 0);
}

/* Eight queued reads issued, then COMRESET before waiting for them. */
static void step_comreset_in_flight(AhciSide *s)
{
    for (int tag = 0; tag < 8; tag++) {
        qahci_rw_ncq_issue(&s->a, 0, tag, false, tag * 64, 64,
                           s->buf + tag * 32768, 32768);
    }
    s->result = qahci_port_comreset(&s->a, 0);
}

/* A PIO data command of @count sectors (0: 256 or 65536) through PRDs. */
static void pio(AhciSide *s, uint8_t command, bool write, uint64_t lba,
                uint16_t count, uint32_t sectors, uint32_t prd_bytes)
{
    QAhciPrd prd[QAHCI_PRDT_MAX];
    uint8_t fis[20];
    unsigned n = qahci_prds(prd, QAHCI_PRDT_MAX, s->buf, sectors * QAHCI_SECTOR,
                            prd_bytes);

    fill_buf(s, write, sectors * QAHCI_SECTOR);
    qahci_fis_h2d(fis, command, 0, lba, count);
    qahci_slot_prepare(&s->a, 0, 4, fis, write, 0, prd, n);
    s->result = qahci_run(&s->a, 0, 4, false);
    s->slot = 4;
    s->data_len = sectors * QAHCI_SECTOR;
}

static void step_pio_read_sectors(AhciSide *s)
{
    pio(s, 0x20, false, 300, 8, 8, 4096); /* READ SECTORS */
}

/* 28-bit count 0 is 256 sectors; PRDs of 12 KiB split no sector. */
static void step_pio_read_count0(AhciSide *s)
{
    pio(s, 0x20, false, 512, 0, 256, 12288);
}

/* WRITE SECTORS EXT through 512-byte PRDs, then its read back. */
static void step_pio_write_ext(AhciSide *s)
{
    pio(s, 0x34, true, 4000, 24, 24, 512);
}

static void step_pio_read_back_ext(AhciSide *s)
{
    pio(s, 0x24, false, 4000, 24, 24, 8192); /* READ SECTORS EXT */
}

static void step_set_multiple_8(AhciSide *s)
{
    s->result = qahci_nondata(&s->a, 0, 0xc6, 0, 0, 8); /* SET MULTIPLE */
}

/* 37 sectors in blocks of 8: the last block is 5 sectors. */
static void step_pio_read_multiple(AhciSide *s)
{
    pio(s, 0xc4, false, 700, 37, 37, 4096); /* READ MULTIPLE */
}

static void step_pio_write_multiple_ext(AhciSide *s)
{
    pio(s, 0x39, true, 5000, 20, 20, 4096); /* WRITE MULTIPLE EXT */
}

static void step_pio_read_back_multiple(AhciSide *s)
{
    pio(s, 0x29, false, 5000, 20, 20, 4096); /* READ MULTIPLE EXT */
}

static void step_pio_bad_lba(AhciSide *s)
{
    pio(s, 0x24, false, SECTORS, 8, 8, 4096);
    s->data_len = 0;
}

/* 3 is no power of two: ABRT. */
static void step_set_multiple_bad(AhciSide *s)
{
    s->result = qahci_nondata(&s->a, 0, 0xc6, 0, 0, 3);
}

static const AhciStep ahci_steps[] = {
    {"hba-reset", step_hba_reset, 1},
    {"port-start", step_port_start, 1},
    {"identify", step_identify, 0},
    {"read-4k", step_read_4k, 0},
    {"read-64k-16prd", step_read_64k_16prd, 0},
    {"write-8k-16prd", step_write_8k_16prd, 0},
    {"read-back-8k", step_read_back_8k, 0},
    {"read-192k-odd-prd", step_read_192k_odd_prd, 0},
    {"read-dma28-count0", step_read_dma28_count0, 0},
    {"ncq-write", step_ncq_write, 0},
    {"ncq-read", step_ncq_read, 0},
    {"flush", step_flush, 0},
    {"bad-lba", step_bad_lba, -EIO},
    {"recover-bad-lba", step_recover, 1},
    {"unknown-command", step_unknown_command, -EIO},
    {"recover-unknown", step_recover, 1},
    {"pio-read-sectors", step_pio_read_sectors, 0},
    {"pio-read-count0", step_pio_read_count0, 0},
    {"pio-write-ext", step_pio_write_ext, 0},
    {"pio-read-back-ext", step_pio_read_back_ext, 0},
    {"pio-set-multiple-8", step_set_multiple_8, 0},
    {"pio-read-multiple", step_pio_read_multiple, 0},
    {"pio-write-multiple-ext", step_pio_write_multiple_ext, 0},
    {"pio-read-back-multiple", step_pio_read_back_multiple, 0},
    {"pio-bad-lba", step_pio_bad_lba, -EIO},
    {"recover-pio-bad-lba", step_recover, 1},
    {"pio-set-multiple-bad", step_set_multiple_bad, -EIO},
    {"recover-set-multiple", step_recover, 1},
    {"comreset-in-flight", step_comreset_in_flight, 1},
    {"read-after-comreset", step_read_4k, 0},
    {"hba-reset-end", step_hba_reset, 1},
    {"port-start-end", step_port_start, 1},
    {"identify-end", step_identify, 0},
};

/* ---- Observing and comparing ------------------------------------------- */

static const struct {
    const char *name;
    int port; /* -1: an HBA register */
    unsigned offset;
} ahci_regs[] = {
    {"CAP", -1, QAHCI_CAP},       {"GHC", -1, QAHCI_GHC},
    {"IS", -1, QAHCI_IS},         {"PI", -1, QAHCI_PI},
    {"VS", -1, QAHCI_VS},         {"PxCMD", 0, QAHCI_PX_CMD},
    {"PxIS", 0, QAHCI_PX_IS},     {"PxIE", 0, QAHCI_PX_IE},
    {"PxTFD", 0, QAHCI_PX_TFD},   {"PxSIG", 0, QAHCI_PX_SIG},
    {"PxSSTS", 0, QAHCI_PX_SSTS}, {"PxSERR", 0, QAHCI_PX_SERR},
    {"PxCI", 0, QAHCI_PX_CI},     {"PxSACT", 0, QAHCI_PX_SACT},
    {"P1CMD", 1, QAHCI_PX_CMD},   {"P1TFD", 1, QAHCI_PX_TFD},
    {"P1SIG", 1, QAHCI_PX_SIG},   {"P1SSTS", 1, QAHCI_PX_SSTS},
};

static uint32_t reg(AhciSide *s, int i)
{
    return ahci_regs[i].port < 0
               ? qahci_rreg(&s->a, ahci_regs[i].offset)
               : qahci_px_rreg(&s->a, ahci_regs[i].port, ahci_regs[i].offset);
}

static void compare(Diff *d, AhciSide side[DIFF_SIDES])
{
    uint8_t rfis[DIFF_SIDES][256];
    uint64_t v[DIFF_SIDES];

    for (unsigned i = 0; i < sizeof(ahci_regs) / sizeof(ahci_regs[0]); i++) {
        for (int m = 0; m < DIFF_SIDES; m++) {
            v[m] = reg(&side[m], i);
        }
        diff_value(d, ahci_regs[i].name, v);
    }
    for (int m = 0; m < DIFF_SIDES; m++) {
        v[m] = (uint64_t)(int64_t)side[m].result;
    }
    diff_value(d, "result", v);
    if (side[0].slot >= 0) {
        for (int m = 0; m < DIFF_SIDES; m++) {
            v[m] = qahci_slot_prdbc(&side[m].a, 0, side[m].slot);
        }
        diff_value(d, "PRDBC", v);
    }
    if (side[0].a.port[0].fb) {
        for (int m = 0; m < DIFF_SIDES; m++) {
            qos_memread(&side[m].qt->qos, side[m].a.port[0].fb, rfis[m], 256);
        }
        diff_bytes(d, "RFIS", rfis[DIFF_QEMU], rfis[DIFF_MINIVMM], 256);
    }
    if (side[0].identify) {
        uint16_t id[DIFF_SIDES][256];

        for (int m = 0; m < DIFF_SIDES; m++) {
            qos_memread(&side[m].qt->qos, side[m].a.port[0].scratch, id[m],
                        sizeof(id[m]));
        }
        diff_words(d, "IDENTIFY", id[DIFF_QEMU], id[DIFF_MINIVMM], 256);
    }
    if (side[0].data_len) {
        uint8_t *b = malloc(side[0].data_len);

        for (int m = 0; m < DIFF_SIDES; m++) {
            qos_memread(&side[m].qt->qos, side[m].buf, b, side[m].data_len);
            v[m] = diff_hash(b, side[m].data_len);
        }
        free(b);
        diff_value(d, "data", v);
    }
}

START_TEST(test_diff_ahci)
{
    char img[DIFF_SIDES][80], qemu_args[512], minivmm_args[512];
    QTest *qt[DIFF_SIDES];
    AhciSide side[DIFF_SIDES];
    Diff d;

    ck_assert(diff_init(&d, "ahci"));
    make_image(img[DIFF_QEMU], sizeof(img[0]), "qemu");
    make_image(img[DIFF_MINIVMM], sizeof(img[0]), "minivmm");
    snprintf(qemu_args, sizeof(qemu_args),
             "-drive if=none,id=d0,file=%s,format=raw "
             "-device ide-hd,drive=d0,bus=ide.0,serial=" SERIAL ",model=" MODEL
             ",ver=" FWREV,
             img[DIFF_QEMU]);
    snprintf(minivmm_args, sizeof(minivmm_args),
             "--disk sata:%s,serial=" SERIAL ",model=" MODEL ",fwrev=" FWREV,
             img[DIFF_MINIVMM]);
    ck_assert(diff_start(qt, 256, qemu_args, minivmm_args));
    /* Both machines hold them open: a failed assertion leaves no files. */
    unlink(img[DIFF_QEMU]);
    unlink(img[DIFF_MINIVMM]);

    for (int m = 0; m < DIFF_SIDES; m++) {
        side[m] = (AhciSide){.qt = qt[m]};
        ck_assert(qahci_init(&side[m].a, &qt[m]->qos, 0));
        side[m].buf = qos_alloc(&qt[m]->qos, BUF_SIZE, 4096);
    }
    for (size_t i = 0; i < sizeof(ahci_steps) / sizeof(ahci_steps[0]); i++) {
        d.step = ahci_steps[i].name;
        for (int m = 0; m < DIFF_SIDES; m++) {
            side[m].result = 0;
            side[m].slot = -1;
            side[m].identify = false;
            side[m].data_len = 0;
            ahci_steps[i].run(&side[m]);
        }
        ck_assert_msg(side[DIFF_MINIVMM].result == ahci_steps[i].expect,
                      "step %s: minivmm's result %d, expected %d", d.step,
                      side[DIFF_MINIVMM].result, ahci_steps[i].expect);
        compare(&d, side);
    }
    diff_stop(qt);
    ck_assert_msg(diff_finish(&d) == 0, "%s", d.first);
    diff_free(&d);
}
END_TEST

Suite *diff_ahci_suite(void)
{
    Suite *s = suite_create("qtest-diff-ahci");
    TCase *tc = tcase_create("diff");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_diff_ahci);
    suite_add_tcase(s, tc);
    return s;
}
