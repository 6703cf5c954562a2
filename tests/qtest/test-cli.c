/*
 * The command line as a user meets it: every mistake gets exactly one line
 * on stderr, starting with "minivmm:", naming the option and its limit, and
 * exit status 2 (1 for a problem found while setting up, such as a missing
 * disk file). Also what the options do that a test can see from outside:
 * sizes, the kernel command line, exit statuses, --timeout.
 */
#include <check.h>
#include <fcntl.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/virtio_blk.h>

#include "tests/qos/virtio-blk.h"
#include "tests/qtest/libqtest.h"
#include "tests/qtest/suites.h"
#include "util/clock.h"

typedef struct Run {
    int status;
    char out[16384];
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
    ck_assert(strstr(r.out, "--main-loop-defer-kick on|off"));
    /* The exit statuses, the console keys and the options that set them. */
    ck_assert(strstr(r.out, "Exit status: 0 the guest powered off"));
    ck_assert(strstr(r.out, "65..127"));
    ck_assert(strstr(r.out, "Ctrl-A x quits"));
    ck_assert(strstr(r.out, "--timeout SECONDS"));
    ck_assert(strstr(r.out, "--auto-console on|off"));
    ck_assert(strstr(r.out, "--trace FILE[,events=GLOB][,size=N]"));
    ck_assert_str_eq(r.err, "");
    run(&r, (const char *[]){"-V", NULL});
    ck_assert_int_eq(r.status, 0);
    ck_assert(!strncmp(r.out, "minivmm ", 8));
}
END_TEST

START_TEST(test_usage_errors)
{
    static const struct {
        const char *args[10]; /* NULL-terminated */
        const char *mentions;
    } cases[] = {
        {{"--bogus"}, "--bogus"},
        {{"--bogus=1"}, "'--bogus=1'"},
        /* QEMU's single-dash spelling: the whole word, not argv[0]. */
        {{"-qtest", "unix:/x"}, "unknown option '-qtest': minivmm's options"},
        {{"stray", "-m", "512"}, "unknown option '-m'"},
        {{"--memory"}, "--memory"},
        {{"--memory", "12Q"}, "--memory"},
        {{"--memory", "8G"}, "--memory"},
        /* Sizes that do not fit in 64 bits are out of range, not wrapped. */
        {{"--memory", "17592186044480M"}, "--memory must be from 16M to 3G"},
        {{"--memory", "17179869184G"}, "--memory must be from 16M to 3G"},
        {{"--memory", "99999999999999999999999"},
         "--memory must be from 16M to 3G"},
        {{"--memory", "8"}, "a bare number is MiB"},
        {{"--memory", "-512"}, "--memory"},
        {{"--memory", "4096K"}, "16M"},
        /* A single-valued disk option given twice. */
        {{"--disk", "virtio:/x,iothread=0,iothread=1"},
         "iothread= given twice"},
        {{"--disk", "virtio:/x,queues=1,queues=2"}, "queues= given twice"},
        {{"--disk", "virtio:/x,serial=a,serial=b"}, "serial= given twice"},
        {{"--disk", "sata:/x,serial=a,serial=a"}, "serial= given twice"},
        {{"--disk", "sata:/x,model=a,model=b"}, "model= given twice"},
        {{"--disk", "sata:/x,fwrev=1,fwrev=2"}, "fwrev= given twice"},
        {{"--disk", "sata:/x,aio=threads,aio=io_uring"}, "aio= given twice"},
        {{"--disk", "virtio:/x,cache=none,cache=none"}, "cache= given twice"},
        {{"--disk", "sata:/x,readonly=on,readonly=off"},
         "readonly= given twice"},
        /* Identity strings longer than the device can hold. */
        {{"--disk", "sata:/x,serial=123456789012345678901"},
         "serial= is at most 20"},
        {{"--disk", "virtio:/x,serial=123456789012345678901"},
         "serial= is at most 20"},
        {{"--disk", "sata:/x,model=12345678901234567890123456789012345678901"},
         "model= is at most 40"},
        {{"--disk", "sata:/x,fwrev=123456789"}, "fwrev= is at most 8"},
        {{"--disk", "sata:/x,model=caf\xc3\xa9"}, "printable ASCII"},
        {{"--timeout", "0"}, "--timeout expects a number from 1 to 604800"},
        {{"--timeout", "604801"}, "--timeout expects a number from 1 to"},
        {{"--timeout", "1.5"}, "--timeout"},
        {{"--timeout"}, "--timeout"},
        {{"--auto-console", "maybe"}, "--auto-console expects on or off"},
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
        /* A per-queue IOThread map that cannot be what was meant. */
        {{"--disk", "virtio:/x,iothreads=0+1,iothreads=0"},
         "iothreads= given twice"},
        {{"--disk", "virtio:/x,iothread=0,iothreads=0+1"},
         "iothread= and iothreads= both place the queues"},
        {{"--disk", "virtio:/x,iothreads=0+1,queues=1"},
         "iothreads= has 2 entries for 1 queues"},
        {{"--disk", "virtio:/x,iothreads=0++1"}, "joined by '+'"},
        {{"--disk", "virtio:/x,iothreads=0+8"},
         "iothreads= expects a number from 0 to 7, not '8'"},
        {{"--iothreads", "2", "--disk", "virtio:/x,iothreads=1+2", "--accel",
          "qtest", "--qtest", "unix:/nonexistent"},
         "names IOThread 2, which does not exist"},
        {{"--disk", "sata:/x,iothreads=0"}, "unknown option 'iothreads'"},
        {{"--aio-notify-on-sqe", "maybe"}, "on or off"},
        {{"--main-loop-defer-kick", "maybe"},
         "--main-loop-defer-kick expects on or off, not 'maybe'"},
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
        /* --trace: checked, and its FILE created, before the machine. */
        {{"--trace"}, "--trace"},
        {{"--accel", "qtest", "--qtest", "unix:/nonexistent", "--trace",
          "/nonexistent/dir/x.json"},
         "--trace: cannot create /nonexistent/dir/x.json"},
        {{"--accel", "qtest", "--qtest", "unix:/nonexistent", "--trace",
          "/nonexistent/x.json,bogus=1"},
         "--trace: unknown option 'bogus=1'"},
        {{"--accel", "qtest", "--qtest", "unix:/nonexistent", "--trace",
          "/nonexistent/x.json,events=nomatch"},
         "--trace: events=: 'nomatch' matches no event"},
        {{"--accel", "qtest", "--qtest", "unix:/nonexistent", "--trace",
          "/nonexistent/x.json,size=10"},
         "--trace: size="},
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
 * An image another process has open read-write (here: our own OFD lock,
 * as a second minivmm would hold it): one line naming it, exit 1.
 */
START_TEST(test_image_in_use)
{
    char img[] = "/tmp/minivmm-cli-XXXXXX";
    int fd = mkstemp(img);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    char arg[64];
    Run r;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, 1 << 20), 0);
    ck_assert_int_eq(fcntl(fd, F_OFD_SETLK, &fl), 0);
    snprintf(arg, sizeof(arg), "virtio:%s,readonly=on", img);
    run(&r, (const char *[]){"--accel", "qtest", "--qtest", "unix:/nonexistent",
                             "--disk", arg, NULL});
    assert_one_error_line(&r, 1, "is in use by another process");
    ck_assert_msg(strstr(r.err, img), "%s", r.err);
    /* The same image twice on one command line conflicts too. */
    close(fd);
    snprintf(arg, sizeof(arg), "virtio:%s", img);
    run(&r, (const char *[]){"--accel", "qtest", "--qtest", "unix:/nonexistent",
                             "--disk", arg, "--disk", arg, NULL});
    assert_one_error_line(&r, 1, "is in use by another process");
    unlink(img);
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
    ck_assert_msg(strstr(text, "  wakes: timeout="), "%s", text);
    /* The main loop's own system calls: it entered its ring at least once. */
    {
        const char *sc = strstr(text, "  syscalls=");
        unsigned long long calls = 0, enters = 0;

        ck_assert_msg(sc, "%s", text);
        ck_assert_int_eq(
            sscanf(sc, "  syscalls=%llu uring_enters=%llu", &calls, &enters),
            2);
        ck_assert_uint_gt(enters, 0);
        ck_assert_uint_ge(calls, enters);
    }
    close(saved);
    close(img_fd);
    close(log_fd);
    unlink(img);
    unlink(log);
}
END_TEST

/*
 * --trace writes its FILE at exit, after the machine is gone; a FILE that
 * cannot be written turns a run that succeeded into status 1, with one line.
 */
START_TEST(test_trace_file_at_exit)
{
    char path[] = "/var/tmp/minivmm-cli-trace-XXXXXX";
    char log[] = "/var/tmp/minivmm-cli-log-XXXXXX";
    char args[128], text[4096];
    int fd = mkstemp(path), log_fd = mkstemp(log), saved = dup(2);
    ssize_t n;
    QTest *t;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_ge(log_fd, 0);
    snprintf(args, sizeof(args), "--trace %s,events=ahci_*:irq", path);
    t = qtest_start(QTEST_MINIVMM, 64, args);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(qtest_quit(t), 0);
    n = pread(fd, text, sizeof(text) - 1, 0);
    ck_assert_int_gt(n, 0);
    text[n] = '\0';
    ck_assert_msg(!strncmp(text, "{\"traceEvents\":[", 16), "%s", text);
    ck_assert_msg(strstr(text, "\"format\":\"minivmm-trace-1\""), "%s", text);
    ck_assert_msg(strstr(text, "\"events\":\"ahci_*:irq\"}}\n"), "%s", text);

    dup2(log_fd, 2); /* minivmm inherits it as its stderr */
    t = qtest_start(QTEST_MINIVMM, 64, "--trace /dev/full");
    dup2(saved, 2);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(qtest_quit(t), 1);
    n = pread(log_fd, text, sizeof(text) - 1, 0);
    ck_assert_int_gt(n, 0);
    text[n] = '\0';
    ck_assert_str_eq(text, "minivmm: error: trace: cannot write /dev/full: No "
                           "space left on device\n");
    close(saved);
    close(fd);
    close(log_fd);
    unlink(path);
    unlink(log);
}
END_TEST

/* The sizes a machine was given, as its firmware reads them (fw_cfg). */
START_TEST(test_memory_sizes)
{
    static const struct {
        const char *arg;
        uint64_t bytes;
    } cases[] = {
        {"--memory 512", 512ULL << 20}, /* a bare number is MiB */
        {"--memory 17", 17ULL << 20},   {"--memory 1G", 1ULL << 30},
        {"--memory 3g", 3ULL << 30},    {"--memory 65536K", 64ULL << 20},
        {"--memory 96m", 96ULL << 20},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* The later --memory wins over qtest_start()'s own. */
        QTest *t = qtest_start(QTEST_MINIVMM, 64, cases[i].arg);

        ck_assert_ptr_nonnull(t);
        ck_assert_msg(t->qos.ram_size == cases[i].bytes, "%s: %llu bytes",
                      cases[i].arg, (unsigned long long)t->qos.ram_size);
        ck_assert_int_eq(qtest_quit(t), 0);
    }
}
END_TEST

/* Strings exactly as long as the device holds are fine. */
START_TEST(test_disk_strings_at_their_limits)
{
    QTest *t = qtest_start(
        QTEST_MINIVMM, 64,
        "--disk sata:null://1M,serial=12345678901234567890,"
        "model=1234567890123456789012345678901234567890,fwrev=12345678 "
        "--disk virtio:null://1M,serial=12345678901234567890");

    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(qtest_quit(t), 0);
}
END_TEST

/*
 * The kernel command line the guest gets, read back from /chosen/bootargs
 * of --dump-dtb (the same string linux_load() copies); NULL for none.
 */
static char *bootargs_of(const char *const *args)
{
    char dtb[] = "/tmp/minivmm-cli-dtb-XXXXXX";
    const char *argv[16] = {"--dump-dtb", dtb};
    static char fdt[1 << 16];
    const char *prop;
    int fd = mkstemp(dtb), node, len;
    ssize_t n;
    Run r;

    ck_assert_int_ge(fd, 0);
    for (int i = 0; args[i]; i++) {
        argv[i + 2] = args[i];
    }
    run(&r, argv);
    ck_assert_msg(r.status == 0, "%s", r.err);
    n = pread(fd, fdt, sizeof(fdt), 0);
    close(fd);
    unlink(dtb);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(fdt_check_header(fdt), 0);
    node = fdt_path_offset(fdt, "/chosen");
    ck_assert_int_ge(node, 0);
    prop = fdt_getprop(fdt, node, "bootargs", &len);
    return prop ? strndup(prop, len) : NULL;
}

START_TEST(test_console_auto_append)
{
    static const struct {
        const char *args[6];
        const char *bootargs; /* NULL: no property */
    } cases[] = {
        {{NULL}, "console=ttyS0"},
        {{"--append", "quiet"}, "quiet console=ttyS0"},
        {{"--append", "quiet console=hvc0"}, "quiet console=hvc0"},
        {{"--append", "console=ttyS1,115200"}, "console=ttyS1,115200"},
        /* netconsole= is not console=. */
        {{"--append", "netconsole=@/,@10.0.0.1/"},
         "netconsole=@/,@10.0.0.1/ console=ttyS0"},
        {{"--append", "quiet", "--auto-console", "off"}, "quiet"},
        {{"--auto-console", "off"}, NULL},
        {{"--auto-console", "off", "--auto-console", "on"}, "console=ttyS0"},
        {{"--append", "quiet", "--serial", "none"}, "quiet"},
        {{"--serial", "none"}, NULL},
        {{"--serial", "file:/dev/null"}, "console=ttyS0"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = bootargs_of(cases[i].args);

        if (!cases[i].bootargs) {
            ck_assert_msg(!got, "case %zu: bootargs '%s'", i, got);
        } else {
            ck_assert_msg(got && !strcmp(got, cases[i].bootargs),
                          "case %zu: '%s', not '%s'", i, got ? got : "(none)",
                          cases[i].bootargs);
        }
        free(got);
    }
}
END_TEST

/*
 * The test exit port's value as the exit status: 0 stays 0, V = 1..63
 * becomes 64 + V, anything bigger 127, so that no value reads as one of
 * minivmm's own statuses (1-5) or a signal's (128+N).
 */
START_TEST(test_exit_port_statuses)
{
    static const struct {
        const char *write;
        int status;
    } cases[] = {
        {"outl 0xf4 0x0", 0},          {"outb 0xf4 0x0", 0},
        {"outl 0xf4 0x1", 65},         {"outl 0xf4 0x2", 66},
        {"outl 0xf4 0x3e", 126},       {"outl 0xf4 0x3f", 127},
        {"outl 0xf4 0x40", 127},       {"outl 0xf4 0xc8", 127},
        {"outb 0xf4 0xff", 127},       {"outl 0xf4 0x100", 127},
        {"outl 0xf4 0xffffffff", 127},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        QTest *t = qtest_start(QTEST_MINIVMM, 64, NULL);

        ck_assert_ptr_nonnull(t);
        qtest_write_async(t, "%s", cases[i].write);
        ck_assert_msg(qtest_kill(t, 0) == cases[i].status, "%s",
                      cases[i].write);
    }
}
END_TEST

/*
 * --timeout applies to qtest runs too: a client that never ends the run
 * gets status 5 and one line; one that ends in time gets its own status.
 */
START_TEST(test_timeout_ends_the_run)
{
    char log[] = "/var/tmp/minivmm-cli-timeout-XXXXXX";
    int log_fd = mkstemp(log), saved = dup(2);
    char text[1024];
    int64_t start;
    ssize_t n;
    QTest *t;

    ck_assert_int_ge(log_fd, 0);
    dup2(log_fd, 2);
    t = qtest_start(QTEST_MINIVMM, 64, "--timeout 1");
    dup2(saved, 2);
    ck_assert_ptr_nonnull(t);
    start = clock_ns();
    ck_assert_int_eq(qtest_kill(t, 0), 5); /* no hang-up: it ends by itself */
    ck_assert_int_lt(clock_ns() - start, 5 * NS_PER_S);
    n = pread(log_fd, text, sizeof(text) - 1, 0);
    ck_assert_int_gt(n, 0);
    text[n] = '\0';
    ck_assert_msg(!strcmp(text, "minivmm: the guest did not finish within 1 s "
                                "(--timeout)\n"),
                  "%s", text);

    t = qtest_start(QTEST_MINIVMM, 64, "--timeout 60");
    ck_assert_ptr_nonnull(t);
    qtest_write_async(t, "outb 0xf4 0x1");
    ck_assert_int_eq(qtest_kill(t, 0), 65);
    close(saved);
    close(log_fd);
    unlink(log);
}
END_TEST

/* The number after "@key": in @line, or -1. */
static long trace_num(const char *line, const char *key)
{
    char pat[32];
    const char *at;

    snprintf(pat, sizeof(pat), "\"%s\":", key);
    at = strstr(line, pat);
    return at ? strtol(at + strlen(pat), NULL, 10) : -1;
}

/*
 * iothreads= reaches the device through the board: with "iothreads=1+0+0"
 * (and so three queues) the trace shows each queue's chains popped on
 * iothread1, iothread0, iothread0.
 */
START_TEST(test_iothreads_map_reaches_the_queues)
{
    static const char *const home[3] = {"iothread1", "iothread0", "iothread0"};
    char img[] = "/var/tmp/minivmm-cli-vqmap-XXXXXX";
    char trace[] = "/var/tmp/minivmm-cli-vqmap-trace-XXXXXX";
    char args[256], *doc, *line, *save = NULL;
    char names[8][2][32]; /* tid, thread name */
    int img_fd = mkstemp(img), trace_fd = mkstemp(trace), nnames = 0;
    int pops[3] = {0}, wrong = 0;
    QVirtioBlkOptions o = {.num_queues = 3,
                           .features = 1ull << VIRTIO_BLK_F_MQ};
    QVirtioBlk b;
    uint64_t buf;
    off_t len;
    QTest *t;

    ck_assert_int_ge(img_fd, 0);
    ck_assert_int_ge(trace_fd, 0);
    ck_assert_int_eq(ftruncate(img_fd, 1 << 20), 0);
    snprintf(args, sizeof(args),
             "--trace %s,events=virtq_pop --iothreads 2 "
             "--disk virtio:%s,iothreads=1+0+0",
             trace, img);
    t = qtest_start(QTEST_MINIVMM, 256, args);
    ck_assert_ptr_nonnull(t);
    ck_assert(qvirtio_blk_init(&b, &t->qos, 0, &o));
    ck_assert_uint_eq(b.max_queues, 3);
    buf = qos_alloc(&t->qos, 4096, 4096);
    for (unsigned q = 0; q < 3; q++) {
        ck_assert_int_eq(
            qvirtio_blk_rw(&b, q, VIRTIO_BLK_T_IN, q * 8, buf, 4096), 0);
    }
    ck_assert_int_eq(qtest_quit(t), 0); /* the trace is written at exit */

    len = lseek(trace_fd, 0, SEEK_END);
    ck_assert_int_gt(len, 0);
    doc = calloc(1, len + 1);
    ck_assert_int_eq(pread(trace_fd, doc, len, 0), len);
    for (line = strtok_r(doc, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        long tid = trace_num(line, "tid");
        const char *name;

        if (strstr(line, "\"name\":\"thread_name\"") && nnames < 8) {
            name = strstr(line, "\"args\":{\"name\":\"");
            ck_assert_ptr_nonnull(name);
            snprintf(names[nnames][0], 32, "%ld", tid);
            snprintf(names[nnames][1], 32, "%.*s",
                     (int)strcspn(name + 16, "\""), name + 16);
            nnames++;
        } else if (strstr(line, "\"name\":\"virtq_pop\"")) {
            long q = trace_num(line, "queue");
            const char *on = "?"; /* a thread with no name is wrong too */
            char key[32];

            ck_assert(q >= 0 && q < 3);
            pops[q]++;
            snprintf(key, sizeof(key), "%ld", tid);
            for (int i = 0; i < nnames; i++) {
                if (!strcmp(names[i][0], key)) {
                    on = names[i][1];
                }
            }
            wrong += strcmp(on, home[q]) != 0;
        }
    }
    for (int q = 0; q < 3; q++) {
        ck_assert_int_eq(pops[q], 1);
    }
    ck_assert_int_eq(wrong, 0);
    free(doc);
    close(img_fd);
    close(trace_fd);
    unlink(img);
    unlink(trace);
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
    tcase_add_test(tc, test_image_in_use);
    tcase_add_test(tc, test_stats_report_the_loops);
    tcase_add_test(tc, test_iothreads_map_reaches_the_queues);
    tcase_add_test(tc, test_trace_file_at_exit);
    tcase_add_test(tc, test_memory_sizes);
    tcase_add_test(tc, test_disk_strings_at_their_limits);
    tcase_add_test(tc, test_console_auto_append);
    tcase_add_test(tc, test_exit_port_statuses);
    tcase_add_test(tc, test_timeout_ends_the_run);
    suite_add_tcase(s, tc);
    return s;
}
