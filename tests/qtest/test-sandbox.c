/*
 * --seccomp from outside (util/sandbox.h): a device path that makes a
 * system call off its thread's list ends the run with status 6 and one line
 * that names the thread and the call; the same run with --seccomp off goes
 * on. And the paths that make the most unusual calls (the thread-pool
 * engine's workers, started from the qtest thread and from an IOThread,
 * and the ppoll event loop) run to a clean exit with the filters on.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/virtio_blk.h>

#include "tests/qos/ahci.h"
#include "tests/qos/virtio-blk.h"
#include "tests/qtest/libqtest.h"
#include "tests/qtest/suites.h"

#define IMAGE_SIZE (1u << 20)

/* An image of IMAGE_SIZE bytes, each its offset's low byte. */
static void make_image(char *path)
{
    static uint8_t buf[IMAGE_SIZE];
    int fd = mkstemp(path);

    ck_assert_int_ge(fd, 0);
    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] = (uint8_t)i;
    }
    ck_assert_int_eq(write(fd, buf, sizeof(buf)), sizeof(buf));
    close(fd);
}

/* Start minivmm with @args, its stderr into @log_fd. */
static QTest *start_logged(const char *args, int log_fd)
{
    int saved = dup(2);
    QTest *t;

    dup2(log_fd, 2); /* minivmm inherits it as its stderr */
    t = qtest_start(QTEST_MINIVMM, 64, args);
    dup2(saved, 2);
    close(saved);
    ck_assert_ptr_nonnull(t);
    return t;
}

static void read_log(int log_fd, char *text, size_t cap)
{
    ssize_t n = pread(log_fd, text, cap - 1, 0);

    text[n > 0 ? n : 0] = '\0';
}

/* IDENTIFY DEVICE on port 0; a child does it, since it may lose minivmm. */
static int identify_in_child(QTest *t)
{
    pid_t pid = fork();
    int status;

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        QAhci a;
        uint16_t id[256];

        _exit(qahci_init(&a, &t->qos, 0) && qahci_port_start(&a, 0) &&
                      qahci_identify(&a, 0, id) == 0
                  ? 0
                  : 1);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return status;
}

START_TEST(test_forbidden_call_from_a_device)
{
    char img[] = "/var/tmp/minivmm-sandbox-img-XXXXXX";
    char log[] = "/var/tmp/minivmm-sandbox-log-XXXXXX";
    char args[128], text[4096], want[128];
    int log_fd = mkstemp(log);
    QTest *t;

    ck_assert_int_ge(log_fd, 0);
    make_image(img);
    setenv("MINIVMM_TEST_FORBIDDEN_SYSCALL", "1", 1);

    /* On: the IDENTIFY's socket() ends the run; the client loses it. */
    snprintf(args, sizeof(args), "--seccomp on --disk sata:%s", img);
    t = start_logged(args, log_fd);
    ck_assert_int_ne(identify_in_child(t), 0);
    ck_assert_int_eq(qtest_quit(t), 6);
    read_log(log_fd, text, sizeof(text));
    snprintf(want, sizeof(want),
             "minivmm: seccomp: the qtest thread made system call %d, which "
             "its allowlist forbids",
             SYS_socket);
    ck_assert_msg(strstr(text, want), "stderr: %s", text);

    /* Off: the call is made, the IDENTIFY completes, the run ends well. */
    ck_assert_int_eq(ftruncate(log_fd, 0), 0);
    snprintf(args, sizeof(args), "--seccomp off --disk sata:%s", img);
    t = start_logged(args, log_fd);
    ck_assert_int_eq(identify_in_child(t), 0);
    ck_assert_int_eq(qtest_quit(t), 0);
    read_log(log_fd, text, sizeof(text));
    ck_assert_msg(!strstr(text, "seccomp"), "stderr: %s", text);

    unsetenv("MINIVMM_TEST_FORBIDDEN_SYSCALL");
    close(log_fd);
    unlink(log);
    unlink(img);
}
END_TEST

START_TEST(test_thread_engine_and_poll_loop)
{
    char sata[] = "/var/tmp/minivmm-sandbox-sata-XXXXXX";
    char virtio[] = "/var/tmp/minivmm-sandbox-virtio-XXXXXX";
    char log[] = "/var/tmp/minivmm-sandbox-log-XXXXXX";
    char args[256], text[4096];
    int log_fd = mkstemp(log);
    uint8_t data[8192];
    QVirtioBlkOptions opts = {0};
    QVirtioBlk b;
    uint64_t buf;
    QAhci a;
    QTest *t;

    ck_assert_int_ge(log_fd, 0);
    make_image(sata);
    make_image(virtio);
    snprintf(args, sizeof(args),
             "--event-loop poll --iothreads 1 --disk sata:%s,aio=threads "
             "--disk virtio:%s,aio=threads,iothread=0",
             sata, virtio);
    t = start_logged(args, log_fd);

    /* AHCI: workers started by the qtest thread, under its filter. */
    ck_assert(qahci_init(&a, &t->qos, 0));
    ck_assert(qahci_port_start(&a, 0));
    buf = qos_alloc(&t->qos, sizeof(data), 4096);
    ck_assert_int_eq(qahci_rw(&a, 0, 0, false, 2, 16, buf, 4096), 0);
    qos_memread(&t->qos, buf, data, sizeof(data));
    ck_assert_uint_eq(data[1], 1);

    /* virtio-blk: workers started by the IOThread; a write and a flush. */
    ck_assert(qvirtio_blk_init(&b, &t->qos, 0, &opts));
    ck_assert_int_eq(
        qvirtio_blk_rw(&b, 0, VIRTIO_BLK_T_OUT, 4, buf, sizeof(data)), 0);
    ck_assert_int_eq(qvirtio_blk_rw(&b, 0, VIRTIO_BLK_T_FLUSH, 0, 0, 0), 0);
    ck_assert_int_eq(
        qvirtio_blk_rw(&b, 0, VIRTIO_BLK_T_IN, 0, buf, sizeof(data)), 0);

    ck_assert_int_eq(qtest_quit(t), 0);
    read_log(log_fd, text, sizeof(text));
    ck_assert_msg(!strstr(text, "seccomp"), "stderr: %s", text);
    close(log_fd);
    unlink(log);
    unlink(sata);
    unlink(virtio);
}
END_TEST

Suite *sandbox_qtest_suite(void)
{
    Suite *s = suite_create("sandbox");
    TCase *tc = tcase_create("sandbox");

    tcase_add_test(tc, test_forbidden_call_from_a_device);
    tcase_add_test(tc, test_thread_engine_and_poll_loop);
    suite_add_tcase(s, tc);
    return s;
}
