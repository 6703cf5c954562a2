/*
 * The user's terminal, when the UART's console is stdio and stdin is a tty.
 *
 * The terminal goes into raw mode, so every key reaches the guest: Ctrl-C
 * is the byte 0x03 for the guest's shell, not a SIGINT for minivmm. As in
 * QEMU, Ctrl-A is an escape prefix for minivmm itself:
 *
 *   Ctrl-A x        quit: the run ends as a SIGINT would, with status
 *                   128 + SIGINT after draining and flushing the disks
 *   Ctrl-A h        print this list
 *   Ctrl-A Ctrl-A   send one Ctrl-A to the guest
 *   Ctrl-A other    ignored (as QEMU does)
 *
 * The terminal is restored on every way out: console_close(), exit()
 * (atexit), and a crash (SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL), whose
 * handler restores it and lets the signal do what it would have done.
 * SIGTERM, SIGINT and SIGHUP end the main loop (vmm/main.c), which closes
 * the console on its way out.
 *
 * When stdin is not a tty nothing changes: input goes to the guest as read.
 */
#ifndef MINIVMM_VMM_CONSOLE_H
#define MINIVMM_VMM_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONSOLE_ESCAPE 0x01 /* Ctrl-A */

typedef struct Console {
    bool raw;                   /* we put stdin's terminal in raw mode */
    bool escape;                /* Ctrl-A seen: the next key is a command */
    void (*quit)(void *opaque); /* Ctrl-A x */
    void *opaque;
} Console;

/*
 * If stdin is a terminal (and we are in its foreground), switch it to raw
 * mode and arm the restore paths. @quit is called for Ctrl-A x. Never
 * fails: a terminal we cannot set up stays as it was.
 */
void console_open(Console *c, void (*quit)(void *opaque), void *opaque);

/*
 * Apply the escape keys to @len bytes read from stdin, in place. Returns
 * how many of them are for the guest (the first ones in @buf).
 */
size_t console_input(Console *c, uint8_t *buf, size_t len);

/* Give the terminal back as it was. Safe to call more than once. */
void console_close(Console *c);

#endif
