/*
 * The command line as a user meets it: every mistake gets exactly one line
 * on stderr, starting with "minivmm:", and exit status 2 (1 for a problem
 * found while setting up, such as a missing disk file).
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/qtest/libqtest.h"
#include "tests/qtest/suites.h"

typedef struct Run {
    int status;
    char out[8192];
    char err[8192];
} Run;

static void slurp(int fd, char *buf, size_t cap)
{
    size_t used = 0;
    ssize_t n;

    while (used + 1 < cap && (n = read(fd, buf + used, cap - 1 - used)) > 0) {
        used += n;
    }
    buf[used] = '\0';
}

/* Run build/minivmm (or $MINIVMM) with @args (NULL-terminated). */
static void run(Run *r, const char *const *args)
{
    const char *bin = getenv("MINIVMM") ? getenv("MINIVMM") : "build/minivmm";
    int out[2], err[2], status;
    const char *argv[32] = {bin};
    pid_t pid;

    for (int i = 0; args[i]; i++) {
        argv[i + 1] = args[i];
    }
    ck_assert_int_eq(pipe(out), 0);
    ck_assert_int_eq(pipe(err), 0);
    pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(out[0]);
        close(err[0]);
        execv(bin, (char **)argv);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    slurp(out[0], r->out, sizeof(r->out));
    slurp(err[0], r->err, sizeof(r->err));
    close(out[0]);
    close(err[0]);
    waitpid(pid, &status, 0);
    r->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void assert_one_error_line(const Run *r, int status, const char *has)
{
    const char *err = r->err, *nl;

    /* Warnings about the machine (a software-only /dev/kvm) may come first. */
    while (!strncmp(err, "minivmm: warning: ", 18) && strchr(err, '\n')) {
        err = strchr(err, '\n') + 1;
    }
    nl = strchr(err, '\n');
    ck_assert_int_eq(r->status, status);
    ck_assert_msg(!strncmp(err, "minivmm: ", 9), "stderr: %s", r->err);
    ck_assert_msg(nl && nl[1] == '\0', "not one line: %s", r->err);
    ck_assert_msg(strstr(err, has), "'%s' not in: %s", has, r->err);
}

START_TEST(test_help_and_version)
{
    Run r;

    run(&r, (const char *[]){"--help", NULL});
    ck_assert_int_eq(r.status, 0);
    ck_assert(strstr(r.out, "--disk sata:PATH"));
    ck_assert(strstr(r.out, "--aio-notify-on-sqe"));
    ck_assert_str_eq(r.err, "");
    run(&r, (const char *[]){"-V", NULL});
    ck_assert_int_eq(r.status, 0);
    ck_assert(!strncmp(r.out, "minivmm ", 8));
}
END_TEST

START_TEST(test_usage_errors)
{
    static const struct {
        const char *args[8]; /* NULL-terminated */
        const char *mentions;
    } cases[] = {
        {{"--bogus"}, "--bogus"},
        {{"--memory"}, "--memory"},
        {{"--memory", "12Q"}, "--memory"},
        {{"--memory", "8G"}, "--memory"},
        {{"--accel", "tcg"}, "--accel"},
        {{"--accel", "qtest"}, "--qtest"},
        {{"--accel", "qtest", "--qtest", "tcp:1"}, "unix:PATH"},
        {{"--disk", "scsi:/x"}, "sata:PATH"},
        {{"--disk", "sata:"}, "no path"},
        {{"--disk", "sata:/x,queues=2"}, "queues"},
        {{"--disk", "virtio:/x,iothread=0", "--accel", "qtest", "--qtest",
          "unix:/nonexistent"},
         "iothread=0"},
        {{"--disk", "virtio:/x,flavour"}, "flavour"},
        {{"--aio-notify-on-sqe", "maybe"}, "on or off"},
        {{"--main-loop-timeout-ms", "0"}, "at least 1"},
        {{"--iothreads", "99"}, "--iothreads"},
        {{"stray"}, "stray"},
        {{"--iothread-uring-flags", "bogus"}, "single-issuer"},
        {{"--main-loop-uring-flags", "single-issuer"}, "none or coop"},
        {{"--main-loop-uring-flags", "defer"}, "none or coop"},
        {{"--iothread-poll-weight", "64"}, "--iothread-poll-weight"},
        {{"--serial", "tty"}, "file:PATH"},
        {{"--serial", "file:"}, "file:PATH"},
        {{NULL}, "--kernel"},
        {{"--cpus", "0", "--kernel", "/x"}, "--cpus"},
        {{"--cpus", "65", "--kernel", "/x"}, "--cpus"},
        {{"--memory", "32M", "--kernel", "/x"}, "64M"},
        {{"--initrd", "/x", "--dump-dtb", "/y"}, "--kernel"},
        {{"--accel", "qtest", "--qtest", "unix:/x", "--kernel", "/x"},
         "--accel kvm"},
    };
    Run r;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run(&r, cases[i].args);
        assert_one_error_line(&r, 2, cases[i].mentions);
    }
}
END_TEST

START_TEST(test_setup_errors)
{
    char empty[] = "/tmp/minivmm-cli-XXXXXX";
    int fd = mkstemp(empty);
    char arg[64];
    Run r;

    close(fd);
    /* A missing disk file: named, exit 1, before any connection. */
    run(&r, (const char *[]){"--accel", "qtest", "--qtest", "unix:/nonexistent",
                             "--disk", "sata:/nonexistent.img", NULL});
    assert_one_error_line(&r, 1, "/nonexistent.img");
    /* An empty one. */
    snprintf(arg, sizeof(arg), "virtio:%s", empty);
    run(&r, (const char *[]){"--accel", "qtest", "--qtest", "unix:/nonexistent",
                             "--disk", arg, NULL});
    assert_one_error_line(&r, 1, empty);
    unlink(empty);
    /* A kernel or initrd that is not there: named, before KVM is needed. */
    run(&r, (const char *[]){"--kernel", "/nonexistent-vmlinuz", NULL});
    assert_one_error_line(&r, 1, "/nonexistent-vmlinuz");
    run(&r, (const char *[]){"--kernel", "/dev/null", "--initrd",
                             "/nonexistent-initrd", NULL});
    assert_one_error_line(&r, 1, "/nonexistent-initrd");
    /*
     * A kernel that is not a bzImage: without /dev/kvm the VM cannot be
     * made and the line says so; with it, the loader names the file.
     */
    run(&r, (const char *[]){"--kernel", "/dev/null", NULL});
    assert_one_error_line(&r, 1,
                          access("/dev/kvm", F_OK) ? "/dev/kvm" : "/dev/null");
    /* Nobody listening on the qtest socket. */
    run(&r, (const char *[]){"--accel", "qtest", "--qtest",
                             "unix:/nonexistent.sock", NULL});
    assert_one_error_line(&r, 1, "/nonexistent.sock");
}
END_TEST

/*
 * --stats at exit: the wall time, and per event loop its ring flags, its
 * polling, its thread's CPU time and its counters. The settings on the
 * command line must be the ones the loops report.
 */
START_TEST(test_stats_report_the_loops)
{
    char img[] = "/var/tmp/minivmm-cli-stats-XXXXXX";
    char log[] = "/var/tmp/minivmm-cli-log-XXXXXX";
    char args[256], text[4096];
    int img_fd = mkstemp(img), log_fd = mkstemp(log), saved = dup(2);
    ssize_t n;
    QTest *t;

    ck_assert_int_ge(img_fd, 0);
    ck_assert_int_ge(log_fd, 0);
    ck_assert_int_eq(ftruncate(img_fd, 1 << 20), 0);
    snprintf(args, sizeof(args),
             "--stats --iothreads 1 --disk virtio:%s,iothread=0 "
             "--main-loop-uring-flags coop --iothread-uring-flags coop "
             "--iothread-poll-weight 5",
             img);
    dup2(log_fd, 2); /* minivmm inherits it as its stderr */
    t = qtest_start(QTEST_MINIVMM, 256, args);
    dup2(saved, 2);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(qtest_quit(t), 0);

    n = pread(log_fd, text, sizeof(text) - 1, 0);
    ck_assert_int_gt(n, 0);
    text[n] = '\0';
    ck_assert_msg(strstr(text, "minivmm: wall_s="), "%s", text);
    ck_assert_msg(strstr(text, "loop main: io_uring, flags coop\n"), "%s",
                  text);
    ck_assert_msg(strstr(text, "loop iothread0: io_uring, flags coop, polling "
                               "up to 32768 ns, weight 5\n"),
                  "%s", text);
    ck_assert_msg(strstr(text, "  cpu_s="), "%s", text);
    ck_assert_msg(strstr(text, "  poll_s="), "%s", text);
    close(saved);
    close(img_fd);
    close(log_fd);
    unlink(img);
    unlink(log);
}
END_TEST

Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_help_and_version);
    tcase_add_test(tc, test_usage_errors);
    tcase_add_test(tc, test_setup_errors);
    tcase_add_test(tc, test_stats_report_the_loops);
    suite_add_tcase(s, tc);
    return s;
}
