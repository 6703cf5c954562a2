/*
 * virtio-blk over modern virtio-pci, QEMU 7.2 against minivmm: the same
 * table of guest steps (discovery, the device status transitions, queue
 * set-up, requests) runs on both machines, each with one virtio disk of the
 * same size and serial, and after every step what the guest can see is
 * compared: features offered, configuration space, the common
 * configuration, device status, request status and used lengths, the used
 * ring, the ISR and which MSI-X vectors fired (tests/qtest/qemu-diff.h).
 */
#include <check.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>

#include "tests/qos/virtio-blk.h"
#include "tests/qtest/qemu-diff.h"
#include "tests/qtest/suites.h"

#define IMAGE_SIZE  (8u << 20)
#define SECTORS     (IMAGE_SIZE / 512)
#define BUF_SIZE    (64u << 10)
#define CONFIG_SIZE 60 /* struct virtio_blk_config up to write_zeroes */
#define SERIAL      "VDIFF0001"

typedef struct VirtioSide {
    QTest *qt;
    QVirtioBlk b;
    uint64_t buf;
    bool found;
    QVirtioBlkReq r;
    bool request;   /* the step ran a request: compare its results */
    uint32_t bytes; /* data bytes to compare afterwards */
    uint64_t extra; /* a step-specific value (a register read back) */
} VirtioSide;

typedef struct VirtioStep {
    const char *name;
    void (*run)(VirtioSide *s);
    int expect; /* minivmm's request status, or its result for the others */
} VirtioStep;

static uint8_t pattern(uint64_t i)
{
    return (uint8_t)(i * 5 + (i >> 9) * 11 + 3);
}

static void make_image(char *path, size_t len, const char *side)
{
    static uint8_t block[1 << 16];
    int fd;

    snprintf(path, len, "/var/tmp/minivmm-diff-virtio-%d-%s.img", getpid(),
             side);
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

static uint8_t status(VirtioSide *s)
{
    return qvirtio_get_status(&s->b.dev);
}

/* ---- The steps --------------------------------------------------------- */

static void step_find(VirtioSide *s)
{
    s->found = qvirtio_pci_find(&s->qt->qos, VIRTIO_ID_BLOCK, 0, &s->b.dev);
}

static void step_reset(VirtioSide *s)
{
    s->extra = qvirtio_reset(&s->b.dev);
}

static void step_acknowledge(VirtioSide *s)
{
    qvirtio_set_status(&s->b.dev, VIRTIO_CONFIG_S_ACKNOWLEDGE);
}

static void step_driver(VirtioSide *s)
{
    qvirtio_set_status(&s->b.dev,
                       VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
}

/* The driver writes VERSION_1 only, then FEATURES_OK; the device keeps it. */
static void step_features_ok(VirtioSide *s)
{
    QVirtioDevice *d = &s->b.dev;

    qvirtio_common_write(d, VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_GF, 0, 4);
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_GF, 1, 4); /* VERSION_1 */
    qvirtio_set_status(d, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                              VIRTIO_CONFIG_S_FEATURES_OK);
}

/* FEATURES_OK without VERSION_1: a modern-only device must refuse it. */
static void step_features_no_version1(VirtioSide *s)
{
    s->extra = qvirtio_negotiate_raw(&s->b.dev, 0);
}

/* The whole bring-up with MSI-X, one queue at vector 1, DRIVER_OK. */
static void step_init(VirtioSide *s)
{
    QVirtioBlkOptions o = {.msix = true};

    s->extra = qvirtio_blk_init(&s->b, &s->qt->qos, 0, &o);
    s->buf = qos_alloc(&s->qt->qos, BUF_SIZE, 4096);
}

static void request(VirtioSide *s, uint32_t type, uint64_t sector, uint32_t len)
{
    uint8_t *fill = malloc(BUF_SIZE);

    for (uint32_t i = 0; i < BUF_SIZE; i++) {
        fill[i] = type == VIRTIO_BLK_T_OUT ? (uint8_t)(i * 29 + 1) : 0;
    }
    qos_memwrite(&s->qt->qos, s->buf, fill, BUF_SIZE);
    free(fill);
    s->r = (QVirtioBlkReq){
        .type = type, .sector = sector, .data = len ? s->buf : 0, .len = len};
    qvirtio_blk_request(&s->b, 0, &s->r);
    s->request = true;
    s->bytes = type == VIRTIO_BLK_T_OUT ? 0 : len;
}

static void step_read(VirtioSide *s)
{
    request(s, VIRTIO_BLK_T_IN, 40, 16384);
}

static void step_write(VirtioSide *s)
{
    request(s, VIRTIO_BLK_T_OUT, 1000, 8192);
}

static void step_read_back(VirtioSide *s)
{
    request(s, VIRTIO_BLK_T_IN, 1000, 8192);
}

static void step_flush(VirtioSide *s)
{
    request(s, VIRTIO_BLK_T_FLUSH, 0, 0);
}

static void step_get_id(VirtioSide *s)
{
    request(s, VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES);
}

/* The last sector and one past it: IOERR, nothing transferred. */
static void step_bad_sector(VirtioSide *s)
{
    request(s, VIRTIO_BLK_T_IN, SECTORS - 1, 1024);
}

static void step_unknown_type(VirtioSide *s)
{
    request(s, 0x7777, 0, 512);
}

/* A masked vector holds its message (pending bit) until unmasked. */
static void step_read_masked(VirtioSide *s)
{
    qvirtio_msix_mask(&s->b.dev, 1, true);
    step_read(s);
}

static void step_unmask(VirtioSide *s)
{
    qvirtio_msix_mask(&s->b.dev, 1, false);
    s->extra = qvirtio_msix_take(&s->b.dev, 1);
}

static void step_reset_end(VirtioSide *s)
{
    s->extra = qvirtio_reset(&s->b.dev);
}

/* MSI-X still enabled, but the queue left at NO_VECTOR. */
static void step_init_no_vector(VirtioSide *s)
{
    QVirtioBlkOptions o = {.msix = false};

    qos_alloc_reset(&s->qt->qos);
    s->extra = qvirtio_blk_init(&s->b, &s->qt->qos, 0, &o);
    s->buf = qos_alloc(&s->qt->qos, BUF_SIZE, 4096);
}

/* The same disk again without MSI-X: INTx, and the ISR tells the cause. */
static void step_init_intx(VirtioSide *s)
{
    QVirtioBlkOptions o = {.msix = false};
    QVirtioDevice *d = &s->b.dev;
    uint16_t ctrl = qpci_config_read(&d->pci, d->msix_cap + 2, 2);

    /* MSI-X enable lives in PCI config space: a device reset keeps it. */
    qpci_config_write(&d->pci, d->msix_cap + 2, ctrl & ~0x8000u, 2);
    qos_alloc_reset(&s->qt->qos);
    s->extra = qvirtio_blk_init(&s->b, &s->qt->qos, 0, &o);
    s->buf = qos_alloc(&s->qt->qos, BUF_SIZE, 4096);
}

/* Reading the ISR cleared it: a second read shows 0. */
static void step_isr_again(VirtioSide *s)
{
    s->extra = qvirtio_isr(&s->b.dev);
}

static const VirtioStep virtio_steps[] = {
    {"find", step_find, 0},
    {"reset", step_reset, 1},
    {"acknowledge", step_acknowledge, 0},
    {"driver", step_driver, 0},
    {"features-ok", step_features_ok, 0},
    {"reset-again", step_reset, 1},
    {"features-no-version1", step_features_no_version1, 0},
    {"msix-init", step_init, 1},
    {"msix-read", step_read, VIRTIO_BLK_S_OK},
    {"msix-write", step_write, VIRTIO_BLK_S_OK},
    {"msix-read-back", step_read_back, VIRTIO_BLK_S_OK},
    {"msix-flush", step_flush, VIRTIO_BLK_S_OK},
    {"msix-get-id", step_get_id, VIRTIO_BLK_S_OK},
    {"msix-bad-sector", step_bad_sector, VIRTIO_BLK_S_IOERR},
    {"msix-unknown-type", step_unknown_type, VIRTIO_BLK_S_UNSUPP},
    {"msix-read-after-errors", step_read, VIRTIO_BLK_S_OK},
    {"msix-read-masked", step_read_masked, VIRTIO_BLK_S_OK},
    {"msix-unmask", step_unmask, 1},
    {"reset-end", step_reset_end, 1},
    {"novector-init", step_init_no_vector, 1},
    {"novector-read", step_read, VIRTIO_BLK_S_OK},
    {"novector-reset", step_reset_end, 1},
    {"intx-init", step_init_intx, 1},
    {"intx-read", step_read, VIRTIO_BLK_S_OK},
    {"intx-isr-again", step_isr_again, 0},
    {"intx-write", step_write, VIRTIO_BLK_S_OK},
    {"intx-reset", step_reset_end, 1},
};

/* ---- Observing and comparing ------------------------------------------- */

/* Queue 0 as the common configuration shows it. */
static uint32_t queue_reg(VirtioSide *s, unsigned off)
{
    qvirtio_common_write(&s->b.dev, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
    return qvirtio_common_read(&s->b.dev, off, 2);
}

static const struct {
    const char *name;
    unsigned off, size;
} common_regs[] = {
    {"num_queues", VIRTIO_PCI_COMMON_NUMQ, 2},
    {"msix_config", VIRTIO_PCI_COMMON_MSIX, 2},
    {"config_generation", VIRTIO_PCI_COMMON_CFGGENERATION, 1},
};

static const struct {
    const char *name;
    unsigned off;
} queue_regs[] = {
    {"q0.size", VIRTIO_PCI_COMMON_Q_SIZE},
    {"q0.msix_vector", VIRTIO_PCI_COMMON_Q_MSIX},
    {"q0.enable", VIRTIO_PCI_COMMON_Q_ENABLE},
};

static void compare_device(Diff *d, VirtioSide side[DIFF_SIDES])
{
    uint8_t cfg[DIFF_SIDES][CONFIG_SIZE];
    uint64_t v[DIFF_SIDES];

    for (int m = 0; m < DIFF_SIDES; m++) {
        v[m] = qvirtio_device_features(&side[m].b.dev);
    }
    diff_value(d, "device_features", v);
    for (int m = 0; m < DIFF_SIDES; m++) {
        v[m] = status(&side[m]);
    }
    diff_value(d, "device_status", v);
    for (size_t i = 0; i < sizeof(common_regs) / sizeof(common_regs[0]); i++) {
        for (int m = 0; m < DIFF_SIDES; m++) {
            v[m] = qvirtio_common_read(&side[m].b.dev, common_regs[i].off,
                                       common_regs[i].size);
        }
        diff_value(d, common_regs[i].name, v);
    }
    for (size_t i = 0; i < sizeof(queue_regs) / sizeof(queue_regs[0]); i++) {
        for (int m = 0; m < DIFF_SIDES; m++) {
            v[m] = queue_reg(&side[m], queue_regs[i].off);
        }
        diff_value(d, queue_regs[i].name, v);
    }
    for (int m = 0; m < DIFF_SIDES; m++) {
        for (unsigned i = 0; i < CONFIG_SIZE; i++) {
            cfg[m][i] = qvirtio_config_readb(&side[m].b.dev, i);
        }
    }
    diff_bytes(d, "config", cfg[DIFF_QEMU], cfg[DIFF_MINIVMM], CONFIG_SIZE);
}

static void compare_request(Diff *d, VirtioSide side[DIFF_SIDES])
{
    uint64_t v[DIFF_SIDES];

    for (int m = 0; m < DIFF_SIDES; m++) {
        v[m] = side[m].r.status;
    }
    diff_value(d, "req.status", v);
    for (int m = 0; m < DIFF_SIDES; m++) {
        v[m] = side[m].r.used_len;
    }
    diff_value(d, "req.used_len", v);
    for (int m = 0; m < DIFF_SIDES; m++) {
        v[m] = qvirtqueue_used_idx(&side[m].b.vq[0]);
    }
    diff_value(d, "used.idx", v);
    /* Which vectors fired for the request, and what the ISR then says. */
    for (int m = 0; m < DIFF_SIDES; m++) {
        v[m] = qvirtio_msix_take(&side[m].b.dev, 1);
    }
    diff_value(d, "msix.vector1", v);
    for (int m = 0; m < DIFF_SIDES; m++) {
        v[m] = qvirtio_msix_take(&side[m].b.dev, 0);
    }
    diff_value(d, "msix.config", v);
    for (int m = 0; m < DIFF_SIDES; m++) {
        v[m] = qvirtio_isr(&side[m].b.dev);
    }
    diff_value(d, "isr", v);
    if (side[0].bytes) {
        uint8_t *b = malloc(side[0].bytes);

        for (int m = 0; m < DIFF_SIDES; m++) {
            qos_memread(&side[m].qt->qos, side[m].buf, b, side[m].bytes);
            v[m] = diff_hash(b, side[m].bytes);
        }
        free(b);
        diff_value(d, "data", v);
    }
}

static void compare(Diff *d, VirtioSide side[DIFF_SIDES])
{
    uint64_t v[DIFF_SIDES];

    for (int m = 0; m < DIFF_SIDES; m++) {
        v[m] = side[m].extra;
    }
    diff_value(d, "result", v);
    compare_device(d, side);
    if (side[0].request) {
        compare_request(d, side);
    }
}

START_TEST(test_diff_virtio)
{
    char img[DIFF_SIDES][80], qemu_args[512], minivmm_args[512];
    QTest *qt[DIFF_SIDES];
    VirtioSide side[DIFF_SIDES];
    Diff d;
    int got;

    ck_assert(diff_init(&d, "virtio-blk"));
    make_image(img[DIFF_QEMU], sizeof(img[0]), "qemu");
    make_image(img[DIFF_MINIVMM], sizeof(img[0]), "minivmm");
    snprintf(qemu_args, sizeof(qemu_args),
             "-drive if=none,id=d1,file=%s,format=raw "
             "-device virtio-blk-pci,drive=d1,disable-legacy=on,"
             "num-queues=1,serial=" SERIAL,
             img[DIFF_QEMU]);
    snprintf(minivmm_args, sizeof(minivmm_args),
             "--disk virtio:%s,serial=" SERIAL, img[DIFF_MINIVMM]);
    ck_assert(diff_start(qt, 256, qemu_args, minivmm_args));
    /* Both machines hold them open: a failed assertion leaves no files. */
    unlink(img[DIFF_QEMU]);
    unlink(img[DIFF_MINIVMM]);

    for (int m = 0; m < DIFF_SIDES; m++) {
        memset(&side[m], 0, sizeof(side[m]));
        side[m].qt = qt[m];
    }
    for (size_t i = 0; i < sizeof(virtio_steps) / sizeof(virtio_steps[0]);
         i++) {
        d.step = virtio_steps[i].name;
        for (int m = 0; m < DIFF_SIDES; m++) {
            side[m].request = false;
            side[m].bytes = 0;
            side[m].extra = 0;
            virtio_steps[i].run(&side[m]);
        }
        got = side[DIFF_MINIVMM].request ? side[DIFF_MINIVMM].r.status
                                         : (int)side[DIFF_MINIVMM].extra;
        ck_assert_msg(got == virtio_steps[i].expect,
                      "step %s: minivmm's result %d, expected %d", d.step, got,
                      virtio_steps[i].expect);
        ck_assert_msg(side[DIFF_QEMU].found && side[DIFF_MINIVMM].found,
                      "no virtio-blk device");
        compare(&d, side);
    }
    diff_stop(qt);
    ck_assert_msg(diff_finish(&d) == 0, "%s", d.first);
    diff_free(&d);
}
END_TEST

Suite *diff_virtio_suite(void)
{
    Suite *s = suite_create("qtest-diff-virtio");
    TCase *tc = tcase_create("diff");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_diff_virtio);
    suite_add_tcase(s, tc);
    return s;
}
