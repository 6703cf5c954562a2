/*
 * The bare-metal test library: console, printf, results, exit. Every test
 * includes this. Start-up (entry.S, fw_init()) has already set up the
 * console, the device tree, the IDT and the clock when main() runs.
 *
 * Results follow kvm-unit-tests: one "PASS: ..." or "FAIL: ..." line per
 * check on the serial port, then "SUMMARY: ..."; main() returns
 * report_summary(), which the test exit port turns into minivmm's exit
 * status: 0 when all passed, else 64 + the value (65 for failures).
 */
#ifndef FWTEST_FW_H
#define FWTEST_FW_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h> /* prototypes only: libc.c has the code */

#include "firmware/tests/lib/io.h"

#define FW_COM1       0x3f8
#define FW_EXIT_PORT  0xf4
#define FW_EXIT_CRASH 2 /* an exception or fw_abort(): not a clean FAIL */

int main(const void *fdt);

/* ---- Console (COM1) ------------------------------------------------------ */
void console_init(void);
void console_putc(char c);
int printf(const char *fmt, ...) PRINTF_LIKE(1, 2);
int vprintf(const char *fmt, va_list ap);
/* %s %c %d %i %u %x %X %o %p %%, with l/ll/z, width, 0 and - flags. */
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) PRINTF_LIKE(3, 4);

/* ---- Exit ---------------------------------------------------------------- */
/* minivmm exits with 0 for @status 0, else 64 + @status (127 at most). */
NORETURN void fw_exit(int status);
/* "ABORT: ...", then exit with FW_EXIT_CRASH: for "cannot go on". */
NORETURN void fw_abort(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* ---- Results ------------------------------------------------------------- */
void report_prefix_push(const char *prefix);
void report_prefix_pop(void);
/* One check; returns @pass so callers can stop after a failure. */
bool report(bool pass, const char *fmt, ...) PRINTF_LIKE(2, 3);
void report_skip(const char *fmt, ...) PRINTF_LIKE(1, 2);
void report_info(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* Prints SUMMARY; returns 0 if nothing failed (and something ran), else 1. */
int report_summary(void);

/* Called by entry.S before main(). */
void fw_init(const void *fdt);

#endif
