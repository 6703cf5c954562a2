/*
 * --trace, end to end: minivmm serves AHCI and virtio-blk reads over qtest
 * with tracing on, and tests/qtest/check-trace.py reads the JSON it wrote:
 * every event type is there, one request's events share its id in the
 * order of the data path across threads, and the AHCI reads' wait between
 * aio_add_sqe and the submit is the 500 ms stall with notify-on-SQE off
 * and nothing with it on. minivmm only: QEMU has no such trace.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/virtio_blk.h>

#include "tests/qos/ahci.h"
#include "tests/qos/virtio-blk.h"
#include "tests/qtest/libqtest.h"
#include "tests/qtest/suites.h"

#define IMAGE_SIZE   (4u << 20)
#define READS        4   /* the first may wait any part of a timeout */
#define READ_SECTORS 256 /* 128 KiB, as iotest reads */

static char sata_img[64], virtio_img[64], trace_off[64], trace_on[64];

static void make_image(char *path, const char *what)
{
    int fd;

    snprintf(path, 64, "/var/tmp/minivmm-trace-%d-%s.img", getpid(), what);
    fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, IMAGE_SIZE), 0);
    close(fd);
}

static void setup(void)
{
    make_image(sata_img, "sata");
    make_image(virtio_img, "virtio");
    snprintf(trace_off, sizeof(trace_off), "/var/tmp/minivmm-trace-%d-off.json",
             getpid());
    snprintf(trace_on, sizeof(trace_on), "/var/tmp/minivmm-trace-%d-on.json",
             getpid());
}

static void teardown(void)
{
    unlink(sata_img);
    unlink(virtio_img);
    unlink(trace_off);
    unlink(trace_on);
}

/*
 * One machine, traced to @trace: READS AHCI reads one after the other (each
 * issued as soon as the previous one completed, that is just after the main
 * loop woke, so that with the fix off each waits nearly a whole timeout),
 * and, if @virtio, a virtio-blk read on an IOThread.
 */
static void run_traced(const char *trace, bool notify, bool virtio)
{
    char args[512];
    QTest *qt;
    QAhci a;
    uint64_t buf;

    snprintf(args, sizeof(args),
             "--trace %s --aio-notify-on-sqe %s --iothreads 1 "
             "--disk sata:%s --disk virtio:%s,iothread=0",
             trace, notify ? "on" : "off", sata_img, virtio_img);
    qt = qtest_start(QTEST_MINIVMM, 256, args);
    ck_assert_ptr_nonnull(qt);

    ck_assert(qahci_init(&a, &qt->qos, 0));
    ck_assert(qahci_port_start(&a, 0));
    buf = qos_alloc(&qt->qos, READ_SECTORS * 512, 4096);
    for (int i = 0; i < READS; i++) {
        ck_assert_int_eq(qahci_rw(&a, 0, 0, false, i * READ_SECTORS,
                                  READ_SECTORS, buf, 4096),
                         0);
    }
    if (virtio) {
        QVirtioBlkOptions opts = {0};
        QVirtioBlk b;

        ck_assert(qvirtio_blk_init(&b, &qt->qos, 0, &opts));
        ck_assert_int_eq(
            qvirtio_blk_rw(&b, 0, VIRTIO_BLK_T_IN, 8, buf, READ_SECTORS * 512),
            0);
    }
    /* The trace is written at exit. */
    ck_assert_int_eq(qtest_quit(qt), 0);
}

static int check(const char *extra)
{
    char cmd[512];
    int status;

    snprintf(cmd, sizeof(cmd), "python3 tests/qtest/check-trace.py %s", extra);
    status = system(cmd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

START_TEST(test_trace_shows_the_stall)
{
    char extra[256];

    run_traced(trace_off, false, false);
    run_traced(trace_on, true, true);
    snprintf(extra, sizeof(extra), "%s --notify off", trace_off);
    ck_assert_int_eq(check(extra), 0);
    snprintf(extra, sizeof(extra), "%s --notify on --virtio", trace_on);
    ck_assert_int_eq(check(extra), 0);
    /* Together the two runs show every kind of event. */
    snprintf(extra, sizeof(extra), "%s %s --notify any --all-events", trace_off,
             trace_on);
    ck_assert_int_eq(check(extra), 0);
}
END_TEST

Suite *trace_qtest_suite(void)
{
    Suite *s = suite_create("qtest-trace");
    TCase *tc = tcase_create("trace");

    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_trace_shows_the_stall);
    suite_add_tcase(s, tc);
    return s;
}
