/* The user's terminal: raw mode, the Ctrl-A escapes, and every way back. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "util/compiler.h"
#include "vmm/console.h"

/*
 * The terminal's settings before raw mode. A process has one stdin, and a
 * signal handler cannot be handed a pointer, so this one copy is global.
 * The handlers read it only once saved_valid says it is complete.
 */
static struct termios saved;
static volatile sig_atomic_t saved_valid;

/* The signals that mean a crash, and what they did before our handler. */
static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
static struct sigaction crash_old[ARRAY_SIZE(crash_signals)];
static bool handlers_installed;

/* Async-signal-safe: tcsetattr() is on POSIX's list. */
static void terminal_restore(void)
{
    if (saved_valid) {
        /* TCSANOW: waiting for output to drain could block forever. */
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
        saved_valid = 0;
    }
}

static void crash_handler(int sig, siginfo_t *info, void *uctx)
{
    (void)uctx;
    terminal_restore();
    for (size_t i = 0; i < ARRAY_SIZE(crash_signals); i++) {
        if (crash_signals[i] == sig) {
            sigaction(sig, &crash_old[i], NULL);
        }
    }
    /*
     * A fault (si_code > 0) happens again when we return, now to the old
     * handler (the default's core dump, or a sanitizer's report), with the
     * real context. A signal sent by kill() or abort() does not come back
     * by itself: send it again.
     */
    if (info->si_code <= 0) {
        raise(sig);
    }
}

static void install_crash_handlers(void)
{
    struct sigaction sa = {.sa_sigaction = crash_handler,
                           .sa_flags = SA_SIGINFO | SA_NODEFER};

    if (handlers_installed) {
        return;
    }
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < ARRAY_SIZE(crash_signals); i++) {
        sigaction(crash_signals[i], &sa, &crash_old[i]);
    }
    atexit(terminal_restore);
    handlers_installed = true;
}

void console_open(Console *c, void (*quit)(void *opaque), void *opaque)
{
    struct termios raw;
    pid_t fg;

    *c = (Console){.quit = quit, .opaque = opaque};
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &raw) < 0) {
        return;
    }
    /* In the background, tcsetattr() would stop us with SIGTTOU. */
    fg = tcgetpgrp(STDIN_FILENO);
    if (fg >= 0 && fg != getpgrp()) {
        return;
    }
    saved = raw;
    saved_valid = 1;
    install_crash_handlers();

    /*
     * cfmakeraw() but for the output: keep OPOST (and ONLCR), so that a
     * guest's bare "\n" still starts a new line, as QEMU does.
     */
    cfmakeraw(&raw);
    raw.c_oflag |= saved.c_oflag & (OPOST | ONLCR);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) < 0) {
        saved_valid = 0;
        return;
    }
    c->raw = true;
}

static void console_print_help(void)
{
    static const char help[] =
        "\r\nminivmm console escapes:\r\n"
        "  Ctrl-A x       quit (status 130, as SIGINT)\r\n"
        "  Ctrl-A h       this help\r\n"
        "  Ctrl-A Ctrl-A  send Ctrl-A to the guest\r\n";
    ssize_t r = write(STDOUT_FILENO, help, sizeof(help) - 1);

    (void)r; /* a closed stdout must not stop the guest */
}

size_t console_input(Console *c, uint8_t *buf, size_t len)
{
    size_t out = 0;

    if (!c->raw) {
        return len;
    }
    for (size_t i = 0; i < len; i++) {
        uint8_t key = buf[i];

        if (!c->escape) {
            if (key == CONSOLE_ESCAPE) {
                c->escape = true;
            } else {
                buf[out++] = key;
            }
            continue;
        }
        c->escape = false;
        switch (key) {
        case CONSOLE_ESCAPE:
            buf[out++] = key;
            break;
        case 'x':
            c->quit(c->opaque);
            break;
        case 'h':
        case '?':
            console_print_help();
            break;
        default:
            break; /* an unknown command is dropped, as in QEMU */
        }
    }
    return out;
}

void console_close(Console *c)
{
    if (c->raw) {
        terminal_restore();
        c->raw = false;
    }
}
