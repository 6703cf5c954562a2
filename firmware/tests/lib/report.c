/*
 * Results, exit and start-up. Output mirrors kvm-unit-tests so the same
 * eyes (and greps) work: "PASS: prefix: message", "FAIL: ...", "SKIP: ...",
 * and one SUMMARY line at the end.
 */
#include "firmware/tests/lib/dt.h"
#include "firmware/tests/lib/fw.h"
#include "firmware/tests/lib/irq.h"
#include "firmware/tests/lib/timer.h"

#define MAX_PREFIXES 4

static const char *prefixes[MAX_PREFIXES];
static int nprefixes;
static unsigned passed, failed, skipped;

void fw_exit(int status)
{
    irq_disable();
    outl(FW_EXIT_PORT, (uint32_t)status);
    /* minivmm stops the vCPU soon after the write; wait for it. */
    for (;;) {
        asm volatile("hlt");
    }
}

void fw_abort(const char *fmt, ...)
{
    va_list ap;

    printf("ABORT: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\nSUMMARY: %u tests, %u unexpected failures, %u skipped "
           "(aborted)\n",
           passed + failed, failed, skipped);
    fw_exit(FW_EXIT_CRASH);
}

void report_prefix_push(const char *prefix)
{
    if (nprefixes == MAX_PREFIXES) {
        fw_abort("report_prefix_push: more than %d prefixes", MAX_PREFIXES);
    }
    prefixes[nprefixes++] = prefix;
}

void report_prefix_pop(void)
{
    if (nprefixes) {
        nprefixes--;
    }
}

static void vreport(const char *what, const char *fmt, va_list ap)
{
    printf("%s: ", what);
    for (int i = 0; i < nprefixes; i++) {
        printf("%s: ", prefixes[i]);
    }
    vprintf(fmt, ap);
    printf("\n");
}

bool report(bool pass, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(pass ? "PASS" : "FAIL", fmt, ap);
    va_end(ap);
    if (pass) {
        passed++;
    } else {
        failed++;
    }
    return pass;
}

void report_skip(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport("SKIP", fmt, ap);
    va_end(ap);
    skipped++;
}

void report_info(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport("INFO", fmt, ap);
    va_end(ap);
}

int report_summary(void)
{
    printf("SUMMARY: %u tests, %u unexpected failures, %u skipped\n",
           passed + failed, failed, skipped);
    /* A test that checked nothing has not passed. */
    return failed || !passed ? 1 : 0;
}

void fw_init(const void *fdt)
{
    console_init();
    irq_init();
    if (dt_init(fdt) < 0) {
        fw_abort("no valid device tree at %p (rdi)", fdt);
    }
    timer_init();
}
