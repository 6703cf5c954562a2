/*
 * The console as a person meets it: minivmm on a terminal (a pty's slave as
 * its controlling terminal, stdin and stdout), the qtest client in the
 * guest's place reading the UART's receive buffer. Keys reach the guest
 * raw, Ctrl-A is the escape, and the terminal is given back as it was on
 * every way out.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "tests/qtest/libqtest.h"
#include "tests/qtest/suites.h"
#include "util/clock.h"

#define UART_RBR 0x3f8
#define UART_LSR 0x3fd
#define LSR_DR   0x01

typedef struct Pty {
    int master;
    int slave; /* kept open here to read the terminal's settings */
    char path[64];
    struct termios before;
} Pty;

static void pty_open(Pty *p)
{
    p->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    ck_assert_int_ge(p->master, 0);
    ck_assert_int_eq(grantpt(p->master), 0);
    ck_assert_int_eq(unlockpt(p->master), 0);
    ck_assert_int_eq(ptsname_r(p->master, p->path, sizeof(p->path)), 0);
    p->slave = open(p->path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    ck_assert_int_ge(p->slave, 0);
    ck_assert_int_eq(tcgetattr(p->slave, &p->before), 0);
    /* A new pty is cooked: the test means something only then. */
    ck_assert(p->before.c_lflag & ICANON);
    ck_assert(p->before.c_lflag & ECHO);
}

static void pty_close(Pty *p)
{
    close(p->slave);
    close(p->master);
}

static bool pty_is_raw(Pty *p)
{
    struct termios now;

    ck_assert_int_eq(tcgetattr(p->slave, &now), 0);
    return !(now.c_lflag & (ICANON | ECHO | ISIG));
}

/* The terminal exactly as it was before minivmm started. */
static void assert_restored(Pty *p, const char *after)
{
    struct termios now;

    ck_assert_int_eq(tcgetattr(p->slave, &now), 0);
    ck_assert_msg(now.c_lflag & ICANON, "after %s: ICANON off", after);
    ck_assert_msg(now.c_lflag & ECHO, "after %s: ECHO off", after);
    ck_assert_msg(now.c_lflag == p->before.c_lflag &&
                      now.c_iflag == p->before.c_iflag &&
                      now.c_oflag == p->before.c_oflag &&
                      now.c_cflag == p->before.c_cflag,
                  "after %s: settings differ", after);
}

static QTest *start_on(Pty *p)
{
    QTest *t = qtest_start_tty(QTEST_MINIVMM, 64, "--serial stdio", p->path);
    int64_t deadline = clock_ns() + 5 * NS_PER_S;

    ck_assert_ptr_nonnull(t);
    /* The UART is set up before the client connects; allow for slowness. */
    while (!pty_is_raw(p) && clock_ns() < deadline) {
        usleep(1000);
    }
    ck_assert_msg(pty_is_raw(p), "minivmm left its terminal cooked");
    return t;
}

static void type(Pty *p, const char *keys, size_t len)
{
    ck_assert_int_eq(write(p->master, keys, len), (ssize_t)len);
}

static bool uart_has_data(void *opaque)
{
    return qos_inb(opaque, UART_LSR) & LSR_DR;
}

/* The next byte the guest receives, or -1 if none comes within 5 s. */
static int guest_getc(QTest *t)
{
    if (!qos_wait(uart_has_data, &t->qos, 5000)) {
        return -1;
    }
    return qos_inb(&t->qos, UART_RBR);
}

/* Everything minivmm wrote to the terminal within @ms, NUL-terminated. */
static void pty_read(Pty *p, char *buf, size_t cap, int ms)
{
    struct pollfd pfd = {.fd = p->master, .events = POLLIN};
    size_t used = 0;
    ssize_t n;

    while (used + 1 < cap && poll(&pfd, 1, ms) == 1 &&
           (n = read(p->master, buf + used, cap - 1 - used)) > 0) {
        used += n;
        ms = 100; /* the rest of a burst */
    }
    buf[used] = '\0';
}

START_TEST(test_keys_reach_the_guest_raw)
{
    Pty p;
    QTest *t;

    pty_open(&p);
    t = start_on(&p);
    /* Ctrl-C is a byte for the guest, not a SIGINT for minivmm. */
    type(&p, "\x03", 1);
    ck_assert_int_eq(guest_getc(t), 0x03);
    /* Raw input: no CR-to-NL translation, no line buffering. */
    type(&p, "\r", 1);
    ck_assert_int_eq(guest_getc(t), '\r');
    type(&p, "\x1a\x1c", 2); /* Ctrl-Z and Ctrl-\: no SIGTSTP, no SIGQUIT */
    ck_assert_int_eq(guest_getc(t), 0x1a);
    ck_assert_int_eq(guest_getc(t), 0x1c);
    /* Ctrl-A Ctrl-A sends exactly one Ctrl-A. */
    type(&p, "\x01\x01z", 3);
    ck_assert_int_eq(guest_getc(t), 0x01);
    ck_assert_int_eq(guest_getc(t), 'z');
    /* Ctrl-A and a key that means nothing: both dropped. */
    type(&p, "\x01qy", 3);
    ck_assert_int_eq(guest_getc(t), 'y');
    /* An escape split over two reads still works. */
    type(&p, "\x01", 1);
    usleep(50000);
    type(&p, "\x01w", 2);
    ck_assert_int_eq(guest_getc(t), 0x01);
    ck_assert_int_eq(guest_getc(t), 'w');
    ck_assert(!uart_has_data(&t->qos));

    /* The guest's "\n" still starts a line (OPOST and ONLCR kept). */
    qos_outb(&t->qos, UART_RBR, 'o');
    qos_outb(&t->qos, UART_RBR, 'k');
    qos_outb(&t->qos, UART_RBR, '\n');
    {
        char out[64];

        pty_read(&p, out, sizeof(out), 5000);
        ck_assert_str_eq(out, "ok\r\n");
    }
    ck_assert_int_eq(qtest_quit(t), 0); /* a hang-up */
    assert_restored(&p, "a hang-up");
    pty_close(&p);
}
END_TEST

START_TEST(test_ctrl_a_h_and_x)
{
    char out[1024];
    Pty p;
    QTest *t;

    pty_open(&p);
    t = start_on(&p);
    type(&p, "\x01h", 2);
    pty_read(&p, out, sizeof(out), 5000);
    ck_assert_msg(strstr(out, "Ctrl-A x"), "help: %s", out);
    ck_assert_msg(strstr(out, "Ctrl-A Ctrl-A"), "help: %s", out);
    ck_assert(!uart_has_data(&t->qos)); /* the guest saw none of it */

    /* Ctrl-A x ends the run by itself: 128 + SIGINT, as a Ctrl-C did. */
    type(&p, "\x01x", 2);
    ck_assert_int_eq(qtest_kill(t, 0), 128 + SIGINT);
    assert_restored(&p, "Ctrl-A x");
    pty_close(&p);
}
END_TEST

/* SIGTERM goes through the main loop; crashes through their handler. */
START_TEST(test_terminal_restored_after_signals)
{
    static const int signals[] = {SIGTERM, SIGHUP, SIGSEGV, SIGABRT, SIGBUS};

    for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
        int sig = signals[i], status;
        Pty p;
        QTest *t;

        pty_open(&p);
        t = start_on(&p);
        status = qtest_kill(t, sig);
        if (sig == SIGTERM || sig == SIGHUP) {
            ck_assert_int_eq(status, 0); /* a qtest run ends cleanly */
        } else {
            ck_assert_int_ne(status, 0); /* killed (or a sanitizer's exit) */
        }
        assert_restored(&p, strsignal(sig));
        pty_close(&p);
    }
}
END_TEST

/* Not a terminal: input goes through untouched, Ctrl-A included. */
START_TEST(test_no_tty_no_escapes)
{
    char in[] = "/tmp/minivmm-console-in-XXXXXX";
    int fd = mkstemp(in);
    QTest *t;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "\x01x\x03", 3), 3);
    close(fd);
    t = qtest_start_stdin(QTEST_MINIVMM, 64, "--serial stdio", in);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(guest_getc(t), 0x01);
    ck_assert_int_eq(guest_getc(t), 'x');
    ck_assert_int_eq(guest_getc(t), 0x03);
    ck_assert_int_eq(qtest_quit(t), 0);
    unlink(in);
}
END_TEST

Suite *console_suite(void)
{
    Suite *s = suite_create("console");
    TCase *tc = tcase_create("console");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_keys_reach_the_guest_raw);
    tcase_add_test(tc, test_ctrl_a_h_and_x);
    tcase_add_test(tc, test_terminal_restored_after_signals);
    tcase_add_test(tc, test_no_tty_no_escapes);
    suite_add_tcase(s, tc);
    return s;
}
