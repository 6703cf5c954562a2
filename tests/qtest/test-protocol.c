/*
 * The qtest protocol itself, checked against minivmm and (QTEST_TARGET=qemu)
 * against QEMU: both must give the same replies, byte for byte.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "tests/qos/pci.h"
#include "tests/qtest/libqtest.h"
#include "tests/qtest/suites.h"

static QTest *qt;

static void setup(void)
{
    qt = qtest_start(qtest_target_from_env(), 64, NULL);
    ck_assert_ptr_nonnull(qt);
}

static void teardown(void)
{
    if (qt) {
        ck_assert_int_eq(qtest_quit(qt), 0);
        qt = NULL;
    }
}

/* Send @cmd and compare the whole reply line. */
#define ck_reply(cmd, expected)                                                \
    do {                                                                       \
        char *r_ = qtest_command(qt, "%s", cmd);                               \
        ck_assert_str_eq(r_, expected);                                        \
        free(r_);                                                              \
    } while (0)

START_TEST(test_reply_formats)
{
    /* MMIO to RAM: writes answer OK, reads 16 hex digits. */
    ck_reply("writel 0x1000 0x12345678", "OK");
    ck_reply("readl 0x1000", "OK 0x0000000012345678");
    ck_reply("readb 0x1001", "OK 0x0000000000000056");
    ck_reply("writeq 0x1008 0x1122334455667788", "OK");
    ck_reply("readq 0x1008", "OK 0x1122334455667788");
    ck_reply("readw 0x100e", "OK 0x0000000000001122");
    /* Bulk: hex and base64 both ways, memset. */
    ck_reply("write 0x2000 4 0xdeadbeef", "OK");
    ck_reply("read 0x2000 4", "OK 0xdeadbeef");
    ck_reply("b64read 0x2000 4", "OK 3q2+7w==");
    ck_reply("b64write 0x2004 3 AQID", "OK");
    ck_reply("read 0x2004 3", "OK 0x010203");
    ck_reply("memset 0x2000 8 0x41", "OK");
    ck_reply("b64read 0x2000 8", "OK QUFBQUFBQUE=");
    ck_reply("endianness", "OK little");
    /* Port I/O: at least 4 hex digits on input. */
    ck_reply("outl 0xcf8 0x80000000", "OK");
    ck_reply("inl 0xcf8", "OK 0x80000000");
    ck_reply("inb 0x511", "OK 0x0000");
    /* PCI mechanism #1: the Q35 host bridge at 00:00.0. */
    ck_reply("inl 0xcfc", "OK 0x29c08086");
    ck_reply("inw 0xcfe", "OK 0x29c0");
    /* Unknown commands. */
    ck_reply("frobnicate 1 2", "FAIL Unknown command 'frobnicate'");
}
END_TEST

START_TEST(test_fw_cfg_and_pci_scan)
{
    Qos *q = &qt->qos;
    QPciDevice d;

    ck_assert_uint_eq(q->ram_size, 64 << 20);
    qos_outw(q, 0x510, 0);
    ck_assert_uint_eq(qos_inb(q, 0x511), 'Q');
    ck_assert_uint_eq(qos_inb(q, 0x511), 'E');
    ck_assert(qpci_find(q, 0x8086, 0x29c0, 0, &d));
    ck_assert_uint_eq(d.devfn, 0);
}
END_TEST

static uint8_t cmos_read(Qos *q, uint8_t reg)
{
    qos_outb(q, 0x70, reg);
    return qos_inb(q, 0x71);
}

static bool is_bcd(uint8_t v, int max)
{
    return (v & 0x0f) <= 9 && (v >> 4) <= 9 &&
           (v >> 4) * 10 + (v & 0x0f) <= max;
}

/*
 * What Linux looks for before it finds any disk: the LPC bridge that makes
 * slot 0x1f multi-function (else 00:1f.2 is never scanned) and a CMOS
 * clock that is not "updating" forever. QEMU's q35 has both.
 */
START_TEST(test_lpc_and_cmos_clock)
{
    Qos *q = &qt->qos;
    QPciDevice d;

    ck_assert(qpci_find(q, 0x8086, 0x2918, 0, &d));
    ck_assert_uint_eq(d.devfn, (0x1f << 3) | 0);
    ck_assert_uint_eq(qpci_config_read(&d, 0x0e, 1) & 0x80, 0x80);

    ck_assert_uint_eq(cmos_read(q, 0x0a) & 0x80, 0);    /* no update running */
    ck_assert_uint_eq(cmos_read(q, 0x0b) & 0x06, 0x02); /* 24 h, BCD */
    ck_assert_uint_eq(cmos_read(q, 0x0d), 0x80);        /* time valid */
    ck_assert(is_bcd(cmos_read(q, 0x00), 59));
    ck_assert(is_bcd(cmos_read(q, 0x04), 23));
    ck_assert(is_bcd(cmos_read(q, 0x08), 12));
    ck_assert_uint_eq(cmos_read(q, 0x32), 0x20); /* the 21st century */
    /* Index bit 7 is the NMI mask, not an address: 0xff is CMOS byte 0x7f. */
    qos_outb(q, 0x70, 0xff);
    qos_outb(q, 0x71, 0x5a);
    ck_assert_uint_eq(cmos_read(q, 0x7f), 0x5a);
}
END_TEST

/* minivmm only: bad arguments get a FAIL line instead of a crash. */
START_TEST(test_bad_arguments_fail_cleanly)
{
    char *r;

    if (qt->target == QTEST_QEMU) {
        return; /* QEMU asserts on these: not a comparison point */
    }
    for (const char *const *c =
             (const char *const[]){"readl", "readl zzz", "outb 0x10000 1",
                                   "write 0x0 4 deadbeef",
                                   "b64write 0x0 4 !!!!", "read 0x0 0",
                                   "memset 0x0", "inq 0x10", NULL};
         *c; c++) {
        r = qtest_command(qt, "%s", *c);
        ck_assert_msg(!strncmp(r, "FAIL", 4), "'%s' -> '%s'", *c, r);
        free(r);
    }
    ck_reply("readl 0x1000", "OK 0x0000000000000000"); /* still serving */
    /* Outside RAM and devices: all-ones, and writes vanish. */
    ck_reply("writel 0xd0000000 0x1", "OK");
    ck_reply("readl 0xd0000000", "OK 0x00000000ffffffff");
}
END_TEST

START_TEST(test_sigterm_exits_cleanly)
{
    if (qt->target == QTEST_QEMU) {
        return;
    }
    ck_assert_int_eq(qtest_kill_term(qt), 0);
    qt = NULL;
}
END_TEST

/*
 * The test exit port ends the machine: V = 1..63 as status 64 + V, and
 * the whole value counts (test-cli.c checks the whole mapping).
 */
START_TEST(test_exit_port_sets_exit_status)
{
    if (qt->target == QTEST_QEMU) {
        return; /* q35 has no isa-debug-exit unless asked */
    }
    qtest_write_async(qt, "outl 0xf4 0x12a"); /* not 0x2a: it is >= 64 */
    ck_assert_int_eq(qtest_quit(qt), 127);
    qt = NULL;
}
END_TEST

/* ---- The UART and interrupt lines (minivmm only: QEMU has no UART here) ---
 */

static bool serial_has_data(void *opaque)
{
    return qos_inb(opaque, 0x3fd) & 0x01;
}

START_TEST(test_serial_file_stdin_and_irq_lines)
{
    char out[] = "/tmp/minivmm-serial-out-XXXXXX";
    char in[] = "/tmp/minivmm-serial-in-XXXXXX";
    const char *text = "The quick brown fox jumps over the lazy dog, twice!";
    char args[128], got[64] = {0};
    int fd_out = mkstemp(out), fd_in = mkstemp(in);
    QTest *t;
    Qos *q;

    if (qt->target == QTEST_QEMU) {
        return;
    }
    ck_assert_int_ge(fd_out, 0);
    ck_assert_int_ge(fd_in, 0);
    ck_assert_int_eq(write(fd_in, text, strlen(text)), strlen(text));
    close(fd_in);
    snprintf(args, sizeof(args), "--serial file:%s", out);
    t = qtest_start_stdin(QTEST_MINIVMM, 64, args, in);
    ck_assert_ptr_nonnull(t);
    q = &t->qos;

    /* Output lands in the file. */
    qos_outb(q, 0x3f8, 'H');
    qos_outb(q, 0x3f8, 'i');

    /* Input: more than the 16-byte FIFO holds, delivered in order as the
     * guest drains it. */
    for (size_t i = 0; i < strlen(text); i++) {
        ck_assert_msg(qos_wait(serial_has_data, q, 5000), "byte %zu", i);
        got[i] = qos_inb(q, 0x3f8);
    }
    ck_assert_str_eq(got, text);

    /* IRQ 4 over the protocol: raised by enabling THR-empty, lowered by
     * reading IIR. */
    free(qtest_command(t, "irq_intercept_in ioapic"));
    qos_outb(q, 0x3f9, 0x02);
    ck_assert_uint_eq(qos_inb(q, 0x3fd) & 0x20, 0x20); /* a round trip */
    ck_assert(qtest_irq_level(t, 4));
    ck_assert_uint_eq(qos_inb(q, 0x3fa) & 0x0f, 0x02);
    ck_assert_uint_eq(qos_inb(q, 0x3fd) & 0x20, 0x20);
    ck_assert(!qtest_irq_level(t, 4));
    ck_assert_int_eq(qtest_quit(t), 0);

    fd_out = open(out, O_RDONLY);
    memset(got, 0, sizeof(got));
    ck_assert_int_eq(read(fd_out, got, sizeof(got)), 2);
    ck_assert_str_eq(got, "Hi");
    close(fd_out);
    unlink(out);
    unlink(in);
}
END_TEST

/* ---- What --help says of the protocol, command by command ---------------
 */

/* The words of the --help line(s) that follow @marker, up to a line that
 * does not start with two spaces. */
static int help_words(const char *help, const char *marker, char words[][32],
                      int max)
{
    const char *p = strstr(help, marker);
    int n = 0;

    ck_assert_msg(p, "--help has no '%s'", marker);
    p = strchr(p, '\n') + 1;
    while (!strncmp(p, "  ", 2)) {
        const char *end = strchr(p, '\n');

        for (p += 2; p < end && n < max;) {
            size_t len = strcspn(p, " \n");

            ck_assert_uint_lt(len, 32);
            memcpy(words[n], p, len);
            words[n++][len] = '\0';
            p += len + strspn(p + len, " ");
        }
        p = end + 1;
    }
    return n;
}

/*
 * Every command minivmm's --help says it carries out as QEMU does answers
 * OK, on minivmm and on QEMU alike; every one it says is refused answers
 * FAIL Unknown command on minivmm. So the text cannot drift from the code.
 */
START_TEST(test_help_tells_the_protocol)
{
    static const struct {
        const char *name, *line;
    } sample[] = {
        {"outb", "outb 0x80 0x1"},
        {"outw", "outw 0x80 0x1"},
        {"outl", "outl 0xcf8 0x80000000"},
        {"inb", "inb 0x511"},
        {"inw", "inw 0xcfe"},
        {"inl", "inl 0xcfc"},
        {"writeb", "writeb 0x1000 0x1"},
        {"writew", "writew 0x1000 0x1"},
        {"writel", "writel 0x1000 0x1"},
        {"writeq", "writeq 0x1000 0x1"},
        {"readb", "readb 0x1000"},
        {"readw", "readw 0x1000"},
        {"readl", "readl 0x1000"},
        {"readq", "readq 0x1000"},
        {"read", "read 0x1000 4"},
        {"b64read", "b64read 0x1000 4"},
        {"write", "write 0x1000 2 0xabcd"},
        {"b64write", "b64write 0x1000 3 AQID"},
        {"memset", "memset 0x1000 8 0x41"},
        {"endianness", "endianness"},
        {"irq_intercept_in", "irq_intercept_in ioapic"},
        {"irq_intercept_out", "irq_intercept_out ioapic"},
    };
    const char *bin = getenv("MINIVMM") ? getenv("MINIVMM") : "build/minivmm";
    char cmd[512], help[16384], words[64][32];
    size_t len;
    FILE *f;
    int n;

    snprintf(cmd, sizeof(cmd), "%s --help", bin);
    f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    len = fread(help, 1, sizeof(help) - 1, f);
    help[len] = '\0';
    ck_assert_int_eq(pclose(f), 0);

    n = help_words(help, "out as QEMU does them:", words, 64);
    ck_assert_int_ge(n, 20);
    for (int i = 0; i < n; i++) {
        const char *line = NULL;
        char *r;

        for (size_t j = 0; j < sizeof(sample) / sizeof(sample[0]); j++) {
            if (!strcmp(sample[j].name, words[i])) {
                line = sample[j].line;
            }
        }
        ck_assert_msg(line, "--help lists '%s': give it a sample", words[i]);
        /* QEMU allows one interception per machine, on a GPIO it has. */
        if (qt->target == QTEST_QEMU && !strncmp(line, "irq_intercept", 13)) {
            continue;
        }
        r = qtest_command(qt, "%s", line);
        ck_assert_msg(!strncmp(r, "OK", 2), "'%s' on %s: %s", line,
                      qtest_target_name(qt->target), r);
        free(r);
    }

    n = help_words(help, "does any other:", words, 64);
    ck_assert_int_ge(n, 1);
    for (int i = 0; i < n && qt->target == QTEST_MINIVMM; i++) {
        char expected[64];
        char *r = qtest_command(qt, "%s 1", words[i]);

        snprintf(expected, sizeof(expected), "FAIL Unknown command '%.31s'",
                 words[i]);
        ck_assert_str_eq(r, expected);
        free(r);
    }
}
END_TEST

Suite *protocol_suite(void)
{
    Suite *s = suite_create("qtest-protocol");
    TCase *tc = tcase_create("protocol");

    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_reply_formats);
    tcase_add_test(tc, test_fw_cfg_and_pci_scan);
    tcase_add_test(tc, test_lpc_and_cmos_clock);
    tcase_add_test(tc, test_bad_arguments_fail_cleanly);
    tcase_add_test(tc, test_sigterm_exits_cleanly);
    tcase_add_test(tc, test_exit_port_sets_exit_status);
    tcase_add_test(tc, test_serial_file_stdin_and_irq_lines);
    tcase_add_test(tc, test_help_tells_the_protocol);
    suite_add_tcase(s, tc);
    return s;
}
