/*
 * The command line. Every mistake gets one line on stderr naming the option
 * and a non-zero exit; nothing is guessed.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aio/main-loop.h"
#include "devices/ata.h"
#include "devices/virtio-blk.h"
#include "util/sandbox.h"
#include "util/trace.h"
#include "vmm/config.h"

#define MINIVMM_VERSION "0.2"

/* Guest RAM sits below the PCI window, which starts at 3 GiB. */
#define MIN_RAM_SIZE (16ULL << 20)
#define MAX_RAM_SIZE (3ULL << 30)
/* --timeout: a week is longer than any test or benchmark run. */
#define MAX_TIMEOUT_S (7 * 24 * 3600)

static void usage(FILE *out)
{
    char default_flags[64], main_flags[64];

    aio_uring_flags_name(AIO_IOTHREAD_URING_FLAGS_DEFAULT, default_flags,
                         sizeof(default_flags));
    aio_uring_flags_name(AIO_MAIN_URING_FLAGS_DEFAULT, main_flags,
                         sizeof(main_flags));
    fprintf(
        out,
        "Usage: minivmm --kernel FILE [options]        boot a guest on KVM\n"
        "       minivmm --accel qtest --qtest unix:PATH[,server] [options]\n"
        "\n"
        "A small virtual machine monitor for block I/O: SATA (AHCI) and\n"
        "virtio-blk disks served by an io_uring event loop. Under KVM it\n"
        "boots a Linux bzImage or a bare-metal ELF test; under qtest a test\n"
        "client drives the devices over QEMU's qtest protocol.\n"
        "\n"
        "Machine:\n"
        "  --accel kvm|qtest          the accelerator (default kvm)\n"
        "  --kernel FILE              a Linux bzImage, or a static ELF64\n"
        "                             (entered in 64-bit mode, rdi = the\n"
        "                             device tree's address)\n"
        "  --initrd FILE              the initial ramdisk for Linux\n"
        "  --append CMDLINE           the kernel command line; console=ttyS0\n"
        "                             is added if it names no console=\n"
        "                             (and --serial is not none)\n"
        "  --auto-console on|off      off: do not add console=ttyS0\n"
        "                             (default on)\n"
        "  --timeout SECONDS          end the run with status 5 if the\n"
        "                             guest (or qtest client) has not ended\n"
        "                             it by then, 1..%d (default: none)\n"
        "  --cpus N                   vCPUs, 1..64 (default 1)\n"
        "  --dump-dtb FILE            write the machine's device tree; with\n"
        "                             no --kernel, just write it and exit\n"
        "  --acpi on|off              ACPI tables (hardware-reduced), ECAM\n"
        "                             configuration space and the power-off\n"
        "                             and reset registers (default on); off:\n"
        "                             the MP table only, and a guest cannot\n"
        "                             power off\n"
        "  --dump-acpi DIR            write each ACPI table to DIR/NAME.dat\n"
        "                             (for iasl -d); with no --kernel, just\n"
        "                             write them and exit\n"
        "  --qtest unix:PATH[,server] connect to the client at PATH, or listen\n"
        "  --memory SIZE              guest RAM, e.g. 512M or 1G (a bare\n"
        "                             number is MiB), 16M to 3G (default\n"
        "                             256M; KVM needs 64M or more)\n"
        "  --disk sata:PATH[,opts]    an AHCI disk on the next free port (0-5);\n"
        "                             opts: serial=S (at most 20 characters),\n"
        "                             model=M (40), fwrev=F (8), and block\n"
        "                             opts; each option at most once\n"
        "  --disk virtio:PATH[,opts]  a virtio-blk disk; opts: queues=N\n"
        "                             (default 1), iothread=N: all queues on\n"
        "                             IOThread N (default: the main loop),\n"
        "                             or iothreads=A+B+...: queue q on entry\n"
        "                             q mod n of the n listed (round-robin,\n"
        "                             as QEMU's iothread-vq-mapping without\n"
        "                             vqs; a list as long as the queues is an\n"
        "                             explicit map); queues= defaults to the\n"
        "                             list's length and may not be shorter\n"
        "                             than it; serial=S (at most 20\n"
        "                             bytes), and block opts; each option at\n"
        "                             most once\n"
        "                             block opts: aio=io_uring|threads,\n"
        "                             cache=none|writeback, readonly=on|off\n"
        "                             PATH may be null://SIZE (reads zeros,\n"
        "                             drops writes); it cannot contain a comma\n"
        "  --serial stdio|file:PATH|none\n"
        "                             the UART (COM1): output to stdout\n"
        "                             (default) or a file, input from stdin;\n"
        "                             none: no console at all. stdio on a\n"
        "                             terminal is raw: keys (Ctrl-C too) go\n"
        "                             to the guest; Ctrl-A x quits, Ctrl-A h\n"
        "                             helps, Ctrl-A Ctrl-A sends Ctrl-A\n"
        "\n"
        "IOThreads:\n"
        "  --iothreads N              start N IOThreads (default 0)\n"
        "  --iothread-poll-max-ns N   adaptive polling limit (default %d)\n"
        "  --iothread-poll-weight N   0: grow/shrink polling; 1..63: poll for\n"
        "                             about twice a moving average of recent\n"
        "                             block times (one for waits with I/O in\n"
        "                             flight, one without), each new one\n"
        "                             weighing 1/2^N (default %d)\n"
        "  --iothread-uring-flags L   io_uring setup flags of their rings: none,\n"
        "                             or a comma list of single-issuer, coop\n"
        "                             (COOP_TASKRUN+TASKRUN_FLAG), defer\n"
        "                             (DEFER_TASKRUN, implies single-issuer)"
#ifdef IORING_SETUP_NO_SQARRAY
        ",\n                             no-sqarray"
#endif
        "\n"
        "                             (default %s); a flag the kernel\n"
        "                             rejects is dropped with one log line\n"
        "\n"
        "Event loop:\n"
        "  --event-loop io_uring|poll fd monitor (default io_uring; ppoll if\n"
        "                             io_uring is unavailable)\n"
        "  --aio-notify-on-sqe on|off wake the main loop when a vCPU queues an\n"
        "                             io_uring request (default on; off shows\n"
        "                             the 500 ms stall)\n"
        "  --main-loop-defer-kick on|off\n"
        "                             on: a big-lock holder (a vCPU) that\n"
        "                             wakes the main loop writes its eventfd\n"
        "                             only when it drops the lock, which the\n"
        "                             loop needs first (default on); off: at\n"
        "                             once, as QEMU does\n"
        "  --main-loop-timeout-ms N   longest main-loop sleep (default %d;\n"
        "                             -1: no cap)\n"
        "  --main-loop-uring-flags L  io_uring setup flags of the main loop's\n"
        "                             ring: none or coop (default %s); vCPU\n"
        "                             threads use it too, so never\n"
        "                             single-issuer or defer\n"
        "  --uring-multishot on|off   one multishot POLL_ADD per fd instead of\n"
        "                             a one-shot re-armed after each event\n"
        "                             (default on)\n"
        "  --uring-notifier-read on|off\n"
        "                             read the loop's eventfd with an io_uring\n"
        "                             READ, not a poll and read(2) (default on)\n"
        "  --aio-notify-after-poll on|off\n"
        "                             on: a loop announces its sleep only once\n"
        "                             busy-polling failed, so notifies while\n"
        "                             it polls write no eventfd, and a loop's\n"
        "                             own SQEs notify nobody (default on);\n"
        "                             off: before polling\n"
        "\n"
        "  --stats                    print event-loop (CPU time, flags, polling,\n"
        "                             how sleeps ended) and block statistics at\n"
        "                             exit\n"
        "  --trace FILE[,events=GLOB][,size=N]\n"
        "                             record trace events; at exit write them\n"
        "                             to FILE (no commas) as Chrome trace\n"
        "                             JSON, for Perfetto's UI or\n"
        "                             scripts/trace-report. GLOB: event-name\n"
        "                             patterns joined by ':', e.g. ahci_*:irq\n"
        "                             (default: all); N: records kept per\n"
        "                             thread, the newest (%d or more,\n"
        "                             default %d)\n"
        "  --seccomp on|off           a system-call allowlist for each thread\n"
        "                             (main loop, vCPU, IOThread, block worker,\n"
        "                             qtest), installed before the guest runs;\n"
        "                             a call off its list ends the run with\n"
        "                             status 6 (default %s)\n"
        "  -h, --help                 this text\n"
        "  -V, --version              version\n"
        "\n"
        "qtest: of QEMU 7.2's qtest protocol, these commands are carried\n"
        "out as QEMU does them:\n"
        "  outb outw outl inb inw inl writeb writew writel writeq readb\n"
        "  readw readl readq read b64read write b64write memset\n"
        "  endianness irq_intercept_in irq_intercept_out\n"
        "(a write's value is cut to its width; on MMIO the bulk ones are\n"
        "split into aligned accesses; irq_intercept_* take any path and\n"
        "report every GSI). These answer FAIL Unknown command, and so\n"
        "does any other:\n"
        "  clock_step clock_set set_irq_in rtas module_load\n"
        "(no virtual clock, no GPIO inputs, no PAPR). None of QEMU's\n"
        "command line is taken: --accel qtest --qtest unix:PATH[,server]\n"
        "stand for -accel qtest -qtest unix:PATH[,server], --memory for -m,\n"
        "--disk for -drive and -device, --iothreads for -object iothread;\n"
        "there is no -qmp, -qtest-log, -machine or -S, and a single-dash\n"
        "option is refused.\n"
        "\n"
        "Exit status: 0 the guest powered off or rebooted (or wrote 0 to\n"
        "port 0xf4); 1 minivmm failed (setup, KVM_RUN, a disk flush, writing\n"
        "the --trace FILE); 2 a command-line error; 3 the guest crashed (triple fault); 4 KVM\n"
        "could not run the guest; 5 --timeout expired; 6 a call off a --seccomp\n"
        "allowlist; 65..127 the guest\n"
        "wrote V = 1..63 to port 0xf4 (64 + V; 127 for V >= 64); 128+N\n"
        "signal N (Ctrl-A x: 130).\n",
        MAX_TIMEOUT_S, AIO_POLL_MAX_NS_DEFAULT, AIO_POLL_WEIGHT_DEFAULT,
        default_flags, MAIN_LOOP_TIMEOUT_MS_DEFAULT, main_flags, TRACE_SIZE_MIN,
        TRACE_SIZE_DEFAULT,
        SANDBOX_DEFAULT_ON ? "on" : "off: a sanitizer build");
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One line on stderr; returns -EINVAL for the caller to pass up. */
static int fail(const char *fmt, ...)
{
    va_list ap;

    fputs("minivmm: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return -EINVAL;
}

/*
 * The line for an option getopt_long() does not know; @at is the index it
 * was looking at when the call began. A long one (optopt 0) is the word
 * just passed. A short one is a letter inside the first option word from
 * @at on (getopt moves plain arguments out of the way first); its most
 * likely author is someone used to QEMU's single-dash options, so the
 * line names the whole word and says minivmm's are long.
 */
static int fail_unknown_option(int argc, char **argv, int at)
{
    if (!optopt) {
        return fail("unknown option '%s' (try --help)", argv[optind - 1]);
    }
    for (int i = at; i < argc; i++) {
        const char *w = argv[i];

        if (w[0] == '-' && w[1] && w[1] != '-' && strchr(w + 1, optopt)) {
            return fail("unknown option '%s': minivmm's options are long "
                        "ones, as --qtest (try --help)",
                        w);
        }
    }
    return fail("unknown option '-%c' (try --help)", optopt);
}

/* Replace the string option in *@slot with a copy of @value. */
static int set_string(char **slot, const char *value)
{
    char *copy = strdup(value);

    if (!copy) {
        return fail("out of memory");
    }
    free(*slot);
    *slot = copy;
    return 0;
}

static int parse_long(const char *opt, const char *arg, long long min,
                      long long max, long long *out)
{
    char *end;

    errno = 0;
    *out = strtoll(arg, &end, 10);
    if (errno || end == arg || *end || *out < min || *out > max) {
        fprintf(stderr,
                "minivmm: %s expects a number from %lld to %lld, "
                "not '%s'\n",
                opt, min, max, arg);
        return -EINVAL;
    }
    return 0;
}

/* "16M", "3G", "4096K": @bytes in the largest unit that divides it. */
static const char *size_name(uint64_t bytes, char *buf, size_t len)
{
    static const char units[] = "\0KMG";
    int u = 0;

    while (u < 3 && bytes && !(bytes & 1023)) {
        bytes >>= 10;
        u++;
    }
    snprintf(buf, len, "%llu%.1s", (unsigned long long)bytes, &units[u]);
    return buf;
}

/*
 * A size with a K, M or G suffix; a bare number counts in MiB, as for
 * `qemu -m` and `lkvm run -m`. Anything outside [@min, @max], including a
 * number too big to hold in bytes, is refused with the range.
 */
static int parse_size_mib(const char *opt, const char *arg, uint64_t min,
                          uint64_t max, uint64_t *out)
{
    unsigned long long v;
    unsigned shift = 20;
    char lo[24], hi[24];
    char *end;

    errno = 0;
    v = strtoull(arg, &end, 10);
    if (end == arg || arg[0] < '0' || arg[0] > '9') {
        return fail("%s expects a size such as 256M or 1G, not '%s'", opt, arg);
    }
    switch (*end) {
    case 'G':
    case 'g':
        shift = 30;
        end++;
        break;
    case 'M':
    case 'm':
        end++;
        break;
    case 'K':
    case 'k':
        shift = 10;
        end++;
        break;
    }
    if (*end) {
        return fail("%s expects a size such as 256M or 1G, not '%s'", opt, arg);
    }
    if (errno == ERANGE || v > (UINT64_MAX >> shift) || (v << shift) < min ||
        (v << shift) > max) {
        return fail("%s must be from %s to %s (a bare number is MiB), not "
                    "'%s'",
                    opt, size_name(min, lo, sizeof(lo)),
                    size_name(max, hi, sizeof(hi)), arg);
    }
    *out = v << shift;
    return 0;
}

/* Append "key=value" to a comma-separated list. */
static void opts_append(char **list, const char *kv)
{
    size_t old = *list ? strlen(*list) : 0;
    char *s = realloc(*list, old + strlen(kv) + 2);

    if (!s) {
        abort();
    }
    if (old) {
        s[old++] = ',';
    }
    strcpy(s + old, kv);
    *list = s;
}

/* The sub-options of --disk; each may be given once. */
enum DiskKey {
    DISK_KEY_SERIAL,
    DISK_KEY_MODEL,
    DISK_KEY_FWREV,
    DISK_KEY_IOTHREAD,
    DISK_KEY_IOTHREADS,
    DISK_KEY_QUEUES,
    DISK_KEY_AIO,
    DISK_KEY_CACHE,
    DISK_KEY_READONLY,
    DISK_KEY_COUNT,
};

static const struct {
    const char *name;
    bool sata, virtio; /* which disks take it */
} disk_keys[DISK_KEY_COUNT] = {
    [DISK_KEY_SERIAL] = {"serial", true, true},
    [DISK_KEY_MODEL] = {"model", true, false},
    [DISK_KEY_FWREV] = {"fwrev", true, false},
    [DISK_KEY_IOTHREAD] = {"iothread", false, true},
    [DISK_KEY_IOTHREADS] = {"iothreads", false, true},
    [DISK_KEY_QUEUES] = {"queues", false, true},
    [DISK_KEY_AIO] = {"aio", true, true},
    [DISK_KEY_CACHE] = {"cache", true, true},
    [DISK_KEY_READONLY] = {"readonly", true, true},
};

/*
 * An identity string for the device: at most @max characters, and for ATA
 * printable ASCII (IDENTIFY pads with spaces; devices/ata-identify.c).
 */
static int disk_string(const char *key, const char *val, size_t max, bool ascii,
                       char **out)
{
    if (strlen(val) > max) {
        return fail("--disk %s= is at most %zu characters, not %zu ('%s')", key,
                    max, strlen(val), val);
    }
    for (const char *c = val; ascii && *c; c++) {
        if (*c < 0x20 || *c > 0x7e) {
            return fail("--disk %s= must be printable ASCII", key);
        }
    }
    *out = strdup(val);
    return *out ? 0 : fail("out of memory");
}

/*
 * iothreads=A+B+...: the IOThreads that take a virtio disk's queues in turn.
 * '+' because ',' already ends the option. An empty entry is a typo, not a
 * default, so it fails; a repeated one is how a list spells an uneven split.
 */
static int parse_iothread_map(const char *val, DiskConfig *d)
{
    char entry[16];
    long long n;

    d->nmap = 0;
    for (const char *p = val;; p++) {
        const char *end = strchr(p, '+');
        size_t len = end ? (size_t)(end - p) : strlen(p);

        if (d->nmap == MAX_VIRTIO_QUEUES) {
            return fail("--disk iothreads= has at most %d entries "
                        "(one per queue), not more ('%s')",
                        MAX_VIRTIO_QUEUES, val);
        }
        if (len == 0 || len >= sizeof(entry)) {
            return fail("--disk iothreads= expects IOThread numbers joined "
                        "by '+', e.g. 0+1, not '%s'",
                        val);
        }
        memcpy(entry, p, len);
        entry[len] = '\0';
        if (parse_long("--disk iothreads=", entry, 0, MAX_IOTHREADS - 1, &n)) {
            return -EINVAL;
        }
        d->iothread_map[d->nmap++] = n;
        if (!end) {
            return 0;
        }
        p = end;
    }
}

/*
 * The options that only make sense together, once all are known: one way
 * to say where the queues go, and no IOThread in iothreads= left without
 * a queue (the user meant more queues, or fewer IOThreads).
 */
static int check_virtio_map(const char *arg, DiskConfig *d, const bool *seen)
{
    if (seen[DISK_KEY_IOTHREAD] && seen[DISK_KEY_IOTHREADS]) {
        return fail("--disk %s: iothread= and iothreads= both place the "
                    "queues: give one",
                    arg);
    }
    if (!seen[DISK_KEY_IOTHREADS]) {
        return 0;
    }
    if (!seen[DISK_KEY_QUEUES]) {
        d->queues = d->nmap; /* one queue per entry */
    } else if (d->nmap > d->queues) {
        return fail("--disk %s: iothreads= has %d entries for %d "
                    "queues: the last would serve none",
                    arg, d->nmap, d->queues);
    }
    return 0;
}

int disk_queue_iothread(const DiskConfig *d, int queue)
{
    return d->nmap ? d->iothread_map[queue % d->nmap] : d->iothread;
}

/* "sata:PATH,k=v,..." or "virtio:PATH,k=v,...". */
static int parse_disk(const char *arg, DiskConfig *d)
{
    const char *colon = strchr(arg, ':');
    char *copy, *save = NULL, *item;
    bool seen[DISK_KEY_COUNT] = {false};
    long long n;
    int ret = 0;

    *d = (DiskConfig){.iothread = -1, .queues = 1};
    if (colon && !strncmp(arg, "sata:", 5)) {
        d->kind = DISK_SATA;
    } else if (colon && !strncmp(arg, "virtio:", 7)) {
        d->kind = DISK_VIRTIO;
    } else {
        return fail("--disk expects sata:PATH or virtio:PATH, not '%s'", arg);
    }
    copy = strdup(colon + 1);
    item = strtok_r(copy, ",", &save);
    if (!item || !*item) {
        free(copy);
        return fail("--disk %s: no path", arg);
    }
    d->path = strdup(item);
    while (!ret && (item = strtok_r(NULL, ",", &save))) {
        char *eq = strchr(item, '=');
        const char *val = eq ? eq + 1 : "";
        bool sata = d->kind == DISK_SATA;
        int key;

        if (!eq) {
            ret = fail("--disk: '%s' is not key=value (in %s)", item, arg);
            break;
        }
        *eq = '\0';
        for (key = 0; key < DISK_KEY_COUNT; key++) {
            if (!strcmp(item, disk_keys[key].name) &&
                (sata ? disk_keys[key].sata : disk_keys[key].virtio)) {
                break;
            }
        }
        if (key == DISK_KEY_COUNT) {
            ret = fail("--disk: unknown option '%s' for a %s disk", item,
                       sata ? "sata" : "virtio");
            break;
        }
        if (seen[key]) {
            ret = fail("--disk: %s= given twice (in %s)", item, arg);
            break;
        }
        seen[key] = true;
        switch (key) {
        case DISK_KEY_SERIAL:
            /* ATA's IDENTIFY and virtio's GET_ID both hold 20 bytes. */
            ret = disk_string(item, val,
                              sata ? ATA_SERIAL_LEN : VIRTIO_BLK_SERIAL_BYTES,
                              sata, &d->serial);
            break;
        case DISK_KEY_MODEL:
            ret = disk_string(item, val, ATA_MODEL_LEN, true, &d->model);
            break;
        case DISK_KEY_FWREV:
            ret = disk_string(item, val, ATA_FWREV_LEN, true, &d->fwrev);
            break;
        case DISK_KEY_IOTHREAD:
            ret = parse_long("--disk iothread=", val, 0, MAX_IOTHREADS - 1, &n);
            d->iothread = n;
            break;
        case DISK_KEY_IOTHREADS:
            ret = parse_iothread_map(val, d);
            break;
        case DISK_KEY_QUEUES:
            ret = parse_long("--disk queues=", val, 1, MAX_VIRTIO_QUEUES, &n);
            d->queues = n;
            break;
        default:
            *eq = '=';
            opts_append(&d->block_opts, item); /* values checked by block/ */
            break;
        }
    }
    if (!ret && d->kind == DISK_VIRTIO) {
        ret = check_virtio_map(arg, d, seen);
    }
    free(copy);
    return ret;
}

/* Does the kernel command line @cmdline say console=... already? */
static bool cmdline_names_console(const char *cmdline)
{
    for (const char *p = cmdline; p && (p = strstr(p, "console=")); p++) {
        /* A word of its own, not the end of netconsole= */
        if (p == cmdline || p[-1] == ' ') {
            return true;
        }
    }
    return false;
}

/*
 * Linux writes its console to ttyS0 only when told; minivmm's UART is
 * ttyS0, so tell it unless the user chose (--auto-console off, a console=
 * of their own, or --serial none).
 */
static int add_console(MachineConfig *cfg)
{
    static const char word[] = "console=ttyS0";
    size_t len = cfg->append ? strlen(cfg->append) : 0;
    char *s;

    if (!cfg->auto_console || cmdline_names_console(cfg->append) ||
        (cfg->serial && !strcmp(cfg->serial, "none"))) {
        return 0;
    }
    s = malloc(len + sizeof(word) + 1);
    if (!s) {
        return fail("out of memory");
    }
    snprintf(s, len + sizeof(word) + 1, "%s%s%s", len ? cfg->append : "",
             len ? " " : "", word);
    free(cfg->append);
    cfg->append = s;
    return 0;
}

enum {
    OPT_ACCEL = 256,
    OPT_QTEST,
    OPT_MEMORY,
    OPT_DISK,
    OPT_IOTHREADS,
    OPT_POLL_MAX,
    OPT_POLL_WEIGHT,
    OPT_URING_FLAGS,
    OPT_MAIN_URING_FLAGS,
    OPT_EVENT_LOOP,
    OPT_NOTIFY_ON_SQE,
    OPT_DEFER_KICK,
    OPT_MAIN_LOOP_TIMEOUT,
    OPT_STATS,
    OPT_SERIAL,
    OPT_KERNEL,
    OPT_INITRD,
    OPT_APPEND,
    OPT_AUTO_CONSOLE,
    OPT_TIMEOUT,
    OPT_CPUS,
    OPT_DUMP_DTB,
    OPT_ACPI,
    OPT_DUMP_ACPI,
    OPT_TRACE,
    OPT_SECCOMP,
    OPT_URING_MULTISHOT,
    OPT_URING_NOTIFIER_READ,
    OPT_NOTIFY_AFTER_POLL,
};

/* "on" or "off" for @name into *on; anything else is an error. */
static int parse_on_off(const char *name, const char *arg, bool *on)
{
    if (strcmp(arg, "on") && strcmp(arg, "off")) {
        return fail("%s expects on or off, not '%s'", name, arg);
    }
    *on = !strcmp(arg, "on");
    return 0;
}

int config_parse(MachineConfig *cfg, int argc, char **argv)
{
    static const struct option options[] = {
        {"accel", required_argument, NULL, OPT_ACCEL},
        {"qtest", required_argument, NULL, OPT_QTEST},
        {"memory", required_argument, NULL, OPT_MEMORY},
        {"disk", required_argument, NULL, OPT_DISK},
        {"iothreads", required_argument, NULL, OPT_IOTHREADS},
        {"iothread-poll-max-ns", required_argument, NULL, OPT_POLL_MAX},
        {"iothread-poll-weight", required_argument, NULL, OPT_POLL_WEIGHT},
        {"iothread-uring-flags", required_argument, NULL, OPT_URING_FLAGS},
        {"main-loop-uring-flags", required_argument, NULL,
         OPT_MAIN_URING_FLAGS},
        {"event-loop", required_argument, NULL, OPT_EVENT_LOOP},
        {"aio-notify-on-sqe", required_argument, NULL, OPT_NOTIFY_ON_SQE},
        {"main-loop-defer-kick", required_argument, NULL, OPT_DEFER_KICK},
        {"main-loop-timeout-ms", required_argument, NULL,
         OPT_MAIN_LOOP_TIMEOUT},
        {"stats", no_argument, NULL, OPT_STATS},
        {"serial", required_argument, NULL, OPT_SERIAL},
        {"kernel", required_argument, NULL, OPT_KERNEL},
        {"initrd", required_argument, NULL, OPT_INITRD},
        {"append", required_argument, NULL, OPT_APPEND},
        {"auto-console", required_argument, NULL, OPT_AUTO_CONSOLE},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"cpus", required_argument, NULL, OPT_CPUS},
        {"dump-dtb", required_argument, NULL, OPT_DUMP_DTB},
        {"acpi", required_argument, NULL, OPT_ACPI},
        {"dump-acpi", required_argument, NULL, OPT_DUMP_ACPI},
        {"trace", required_argument, NULL, OPT_TRACE},
        {"seccomp", required_argument, NULL, OPT_SECCOMP},
        {"uring-multishot", required_argument, NULL, OPT_URING_MULTISHOT},
        {"uring-notifier-read", required_argument, NULL,
         OPT_URING_NOTIFIER_READ},
        {"aio-notify-after-poll", required_argument, NULL,
         OPT_NOTIFY_AFTER_POLL},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    long long n;
    bool on = false;
    int c;

    *cfg = (MachineConfig){
        .accel = ACCEL_KVM,
        .ram_size = 256ULL << 20,
        .cpus = 1,
        .fdmon = AIO_FDMON_AUTO,
        .notify_on_sqe = true,
        .main_loop_defer_kick = true,
        .main_loop_timeout_ms = MAIN_LOOP_TIMEOUT_MS_DEFAULT,
        .auto_console = true,
        .iothread_poll = {.max_ns = AIO_POLL_MAX_NS_DEFAULT,
                          .weight = AIO_POLL_WEIGHT_DEFAULT},
        .iothread_uring_flags = AIO_IOTHREAD_URING_FLAGS_DEFAULT,
        .main_uring_flags = AIO_MAIN_URING_FLAGS_DEFAULT,
        .acpi = true,
        .seccomp = SANDBOX_DEFAULT_ON,
    };
    opterr = 0;
    /*
     * 0, not 1: glibc then also forgets where it was inside a cluster of
     * short options. After "-hV" returned at 'h', optind = 1 would make the
     * next config_parse() carry on with the 'V' of the old argv, which
     * may be freed memory by then (tests/fuzz/fuzz-options.c parses again
     * and again in one process).
     */
    optind = 0;
    for (;;) {
        int at = optind ? optind : 1; /* the argument getopt looks at */

        c = getopt_long(argc, argv, ":hV", options, NULL);
        if (c == -1) {
            break;
        }
        switch (c) {
        case OPT_ACCEL:
            if (!strcmp(optarg, "qtest")) {
                cfg->accel = ACCEL_QTEST;
            } else if (!strcmp(optarg, "kvm")) {
                cfg->accel = ACCEL_KVM;
            } else {
                return fail("--accel expects kvm or qtest, not '%s'", optarg);
            }
            break;
        case OPT_QTEST:
            if (strncmp(optarg, "unix:", 5) != 0 || !optarg[5]) {
                return fail("--qtest expects unix:PATH[,server], not '%s'",
                            optarg);
            }
            if (set_string(&cfg->qtest_spec, optarg)) {
                return -EINVAL;
            }
            break;
        case OPT_MEMORY:
            if (parse_size_mib("--memory", optarg, MIN_RAM_SIZE, MAX_RAM_SIZE,
                               &cfg->ram_size)) {
                return -EINVAL;
            }
            break;
        case OPT_DISK:
            if (cfg->ndisks == MAX_DISKS) {
                return fail("at most %d disks", MAX_DISKS);
            }
            if (parse_disk(optarg, &cfg->disks[cfg->ndisks++])) {
                return -EINVAL;
            }
            break;
        case OPT_IOTHREADS:
            if (parse_long("--iothreads", optarg, 0, MAX_IOTHREADS, &n)) {
                return -EINVAL;
            }
            cfg->iothreads = n;
            break;
        case OPT_POLL_MAX:
            if (parse_long("--iothread-poll-max-ns", optarg, 0, 1000000000,
                           &n)) {
                return -EINVAL;
            }
            cfg->iothread_poll.max_ns = n;
            break;
        case OPT_POLL_WEIGHT:
            if (parse_long("--iothread-poll-weight", optarg, 0,
                           AIO_POLL_WEIGHT_MAX, &n)) {
                return -EINVAL;
            }
            cfg->iothread_poll.weight = n;
            break;
        case OPT_URING_FLAGS:
            if (aio_uring_flags_parse(optarg, &cfg->iothread_uring_flags)) {
                return fail("--iothread-uring-flags expects none or a comma "
                            "list of single-issuer, coop, defer%s, not '%s'",
#ifdef IORING_SETUP_NO_SQARRAY
                            ", no-sqarray",
#else
                            "",
#endif
                            optarg);
            }
            break;
        case OPT_MAIN_URING_FLAGS:
            if (aio_uring_flags_parse(optarg, &cfg->main_uring_flags) ||
                (cfg->main_uring_flags & AIO_URING_SINGLE_THREAD_FLAGS)) {
                return fail("--main-loop-uring-flags expects none or coop, "
                            "not '%s' (vCPU threads use the main loop's "
                            "ring too)",
                            optarg);
            }
            break;
        case OPT_EVENT_LOOP:
            if (!strcmp(optarg, "io_uring")) {
                cfg->fdmon = AIO_FDMON_IO_URING;
            } else if (!strcmp(optarg, "poll")) {
                cfg->fdmon = AIO_FDMON_POLL;
            } else {
                return fail("--event-loop expects io_uring or poll, not "
                            "'%s'",
                            optarg);
            }
            break;
        case OPT_NOTIFY_ON_SQE:
            if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
                return fail("--aio-notify-on-sqe expects on or off, not "
                            "'%s'",
                            optarg);
            }
            cfg->notify_on_sqe = !strcmp(optarg, "on");
            break;
        case OPT_DEFER_KICK:
            if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
                return fail("--main-loop-defer-kick expects on or off, not "
                            "'%s'",
                            optarg);
            }
            cfg->main_loop_defer_kick = !strcmp(optarg, "on");
            break;
        case OPT_MAIN_LOOP_TIMEOUT:
            if (parse_long("--main-loop-timeout-ms", optarg, -1, 3600000, &n)) {
                return -EINVAL;
            }
            if (n == 0) {
                return fail("--main-loop-timeout-ms must be -1 (no cap) or "
                            "at least 1");
            }
            cfg->main_loop_timeout_ms = n;
            break;
        case OPT_STATS:
            cfg->stats = true;
            break;
        /*
         * The event loop's io_uring switches are process-wide and read when
         * each context is created, which is after parsing: set them here.
         */
        case OPT_URING_MULTISHOT:
            if (parse_on_off("--uring-multishot", optarg, &on)) {
                return -EINVAL;
            }
            aio_set_uring_multishot(on);
            break;
        case OPT_URING_NOTIFIER_READ:
            if (parse_on_off("--uring-notifier-read", optarg, &on)) {
                return -EINVAL;
            }
            aio_set_uring_notifier_read(on);
            break;
        case OPT_NOTIFY_AFTER_POLL:
            if (parse_on_off("--aio-notify-after-poll", optarg, &on)) {
                return -EINVAL;
            }
            aio_set_notify_after_poll(on);
            break;
        case OPT_SERIAL:
            if (strcmp(optarg, "stdio") && strcmp(optarg, "none") &&
                (strncmp(optarg, "file:", 5) || !optarg[5])) {
                return fail("--serial expects stdio, file:PATH or none, not "
                            "'%s'",
                            optarg);
            }
            if (set_string(&cfg->serial, optarg)) {
                return -EINVAL;
            }
            break;
        case OPT_KERNEL:
            if (set_string(&cfg->kernel, optarg)) {
                return -EINVAL;
            }
            break;
        case OPT_INITRD:
            if (set_string(&cfg->initrd, optarg)) {
                return -EINVAL;
            }
            break;
        case OPT_APPEND:
            if (set_string(&cfg->append, optarg)) {
                return -EINVAL;
            }
            break;
        case OPT_AUTO_CONSOLE:
            if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
                return fail("--auto-console expects on or off, not '%s'",
                            optarg);
            }
            cfg->auto_console = !strcmp(optarg, "on");
            break;
        case OPT_TIMEOUT:
            if (parse_long("--timeout", optarg, 1, MAX_TIMEOUT_S, &n)) {
                return -EINVAL;
            }
            cfg->timeout_s = (int)n;
            break;
        case OPT_CPUS:
            if (parse_long("--cpus", optarg, 1, 64, &n)) {
                return -EINVAL;
            }
            cfg->cpus = (int)n;
            break;
        case OPT_DUMP_DTB:
            if (set_string(&cfg->dump_dtb, optarg)) {
                return -EINVAL;
            }
            break;
        case OPT_ACPI:
            if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
                return fail("--acpi expects on or off, not '%s'", optarg);
            }
            cfg->acpi = !strcmp(optarg, "on");
            break;
        case OPT_DUMP_ACPI:
            if (set_string(&cfg->dump_acpi, optarg)) {
                return -EINVAL;
            }
            break;
        case OPT_SECCOMP:
            if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
                return fail("--seccomp expects on or off, not '%s'", optarg);
            }
            cfg->seccomp = !strcmp(optarg, "on");
            break;
        case OPT_TRACE:
            /* Checked by trace_start() in main(), which opens the file. */
            if (set_string(&cfg->trace, optarg)) {
                return -EINVAL;
            }
            break;
        case 'h':
            usage(stdout);
            return 1;
        case 'V':
            printf("minivmm %s\n", MINIVMM_VERSION);
            return 1;
        case ':':
            return fail("option '%s' needs a value (try --help)",
                        argv[optind - 1]);
        default:
            return fail_unknown_option(argc, argv, at);
        }
    }
    if (optind < argc) {
        return fail("unexpected argument '%s' (try --help)", argv[optind]);
    }
    /* Cross-checks that need the whole command line. */
    if (cfg->dump_acpi && !cfg->acpi) {
        return fail("--dump-acpi needs --acpi on");
    }
    if (cfg->accel == ACCEL_KVM && !cfg->kernel && !cfg->dump_dtb &&
        !cfg->dump_acpi) {
        return fail("nothing to run: give --kernel FILE (or --accel qtest)");
    }
    if (cfg->accel == ACCEL_KVM && cfg->ram_size < (64ULL << 20)) {
        return fail("--memory must be at least 64M to boot a guest");
    }
    if (cfg->accel == ACCEL_QTEST && (cfg->kernel || cfg->initrd)) {
        return fail("--kernel and --initrd need --accel kvm");
    }
    if (cfg->initrd && !cfg->kernel) {
        return fail("--initrd needs --kernel");
    }
    if (cfg->accel == ACCEL_QTEST && !cfg->qtest_spec) {
        return fail("--accel qtest needs --qtest unix:PATH");
    }
    if (cfg->accel == ACCEL_KVM && add_console(cfg) < 0) {
        return -EINVAL;
    }
    for (int i = 0, sata = 0; i < cfg->ndisks; i++) {
        DiskConfig *d = &cfg->disks[i];

        if (d->kind == DISK_SATA && ++sata > MAX_SATA_PORTS) {
            return fail("at most %d sata disks (one per AHCI port)",
                        MAX_SATA_PORTS);
        }
        if (d->kind == DISK_VIRTIO && d->iothread >= cfg->iothreads) {
            return fail("--disk %s: iothread=%d does not exist (see "
                        "--iothreads)",
                        d->path, d->iothread);
        }
        for (int k = 0; d->kind == DISK_VIRTIO && k < d->nmap; k++) {
            if (d->iothread_map[k] >= cfg->iothreads) {
                return fail("--disk %s: iothreads= names IOThread %d, "
                            "which does not exist (see --iothreads)",
                            d->path, d->iothread_map[k]);
            }
        }
    }
    return 0;
}

void config_free(MachineConfig *cfg)
{
    for (int i = 0; i < cfg->ndisks; i++) {
        free(cfg->disks[i].path);
        free(cfg->disks[i].block_opts);
        free(cfg->disks[i].serial);
        free(cfg->disks[i].model);
        free(cfg->disks[i].fwrev);
    }
    free(cfg->qtest_spec);
    free(cfg->kernel);
    free(cfg->initrd);
    free(cfg->append);
    free(cfg->serial);
    free(cfg->dump_dtb);
    free(cfg->dump_acpi);
    free(cfg->trace);
    memset(cfg, 0, sizeof(*cfg));
}
