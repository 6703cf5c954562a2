#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "aio/main-loop.h"
#include "util/base64.h"
#include "util/log.h"
#include "util/sandbox.h"
#include "util/trace.h"
#include "vmm/qtest.h"

/* Longest bulk transfer one command may ask for. */
#define QTEST_MAX_TRANSFER (64u << 20)

/* ---- Replies
 * --------------------------------------------------------------------- */

static char *reply_printf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static char *reply_printf(const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0) {
        abort();
    }
    va_end(ap);
    return s;
}

static void send_all(QtestServer *s, const char *text)
{
    size_t len = strlen(text), off = 0;

    pthread_mutex_lock(&s->send_lock);
    while (off < len && s->fd >= 0) {
        ssize_t n = send(s->fd, text + off, len - off, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break; /* the client went away; EOF handling stops us */
        }
        off += n;
    }
    pthread_mutex_unlock(&s->send_lock);
}

/* ---- Interrupts (any thread) ----------------------------------------------
 */

void qtest_server_set_irq(void *opaque, int gsi, int level)
{
    QtestServer *s = opaque;
    char line[32];
    bool changed;

    if (gsi < 0 || gsi >= QTEST_MAX_IRQ) {
        return;
    }
    TRACE(IRQ, trace_current_id(), .a = {gsi, level}, .s = {"intx"});
    pthread_mutex_lock(&s->send_lock);
    changed = s->irq_level[gsi] != !!level && s->irq_intercept;
    s->irq_level[gsi] = !!level;
    pthread_mutex_unlock(&s->send_lock);
    if (changed) {
        snprintf(line, sizeof(line), "IRQ %s %d\n", level ? "raise" : "lower",
                 gsi);
        send_all(s, line);
    }
}

void qtest_server_send_msi(void *opaque, uint64_t addr, uint32_t data)
{
    QtestServer *s = opaque;

    /* As on a PC without an APIC behind it: the message is a RAM write. */
    TRACE(IRQ, trace_current_id(), .a = {data & 0xff, 1}, .s = {"ram"});
    if (gm_write(s->as->ram, addr, &data, sizeof(data)) < 0) {
        log_guest_error("MSI to 0x%" PRIx64 " is outside RAM; dropped", addr);
    }
}

/* ---- Commands
 * ---------------------------------------------------------------------- */

static bool parse_u64(const char *word, uint64_t *out)
{
    char *end;

    if (!word || !*word) {
        return false;
    }
    errno = 0;
    *out = strtoull(word, &end, 0);
    return !errno && !*end;
}

/*
 * An access carries only its own bytes, as on a bus (and as QEMU's qtest
 * and KVM's exits pass them): "writeb ADDR 0x101" writes 0x01.
 */
static uint64_t truncate_to(uint64_t value, unsigned size)
{
    return size >= 8 ? value : value & ((1ULL << (8 * size)) - 1);
}

/* The access size encoded in the last letter of "inb", "readq", ... */
static unsigned size_suffix(char c)
{
    switch (c) {
    case 'b':
        return 1;
    case 'w':
        return 2;
    case 'l':
        return 4;
    case 'q':
        return 8;
    default:
        return 0;
    }
}

static char *cmd_pio(QtestServer *s, char **words, bool is_write)
{
    unsigned size = size_suffix(words[0][strlen(words[0]) - 1]);
    uint64_t port, value = 0;

    if (size > 4 || !parse_u64(words[1], &port) || port > 0xffff ||
        (is_write && !parse_u64(words[2], &value))) {
        return reply_printf("FAIL bad arguments to %s\n", words[0]);
    }
    value = truncate_to(value, size);
    uint64_t id = trace_begin_exit();

    TRACE(VCPU_EXIT, id, .a = {1, port, size, is_write});
    bql_lock();
    if (is_write) {
        as_write(s->as, AS_PIO, port, size, value);
    } else {
        as_read(s->as, AS_PIO, port, size, &value);
    }
    bql_unlock();
    return is_write ? strdup("OK\n")
                    : reply_printf("OK 0x%04" PRIx64 "\n", value);
}

static char *cmd_mmio(QtestServer *s, char **words, bool is_write)
{
    unsigned size = size_suffix(words[0][strlen(words[0]) - 1]);
    uint64_t addr, value = 0;

    if (!parse_u64(words[1], &addr) ||
        (is_write && !parse_u64(words[2], &value))) {
        return reply_printf("FAIL bad arguments to %s\n", words[0]);
    }
    value = truncate_to(value, size);
    /* DATAPATH 1 (qtest): the access a KVM exit would have brought. */
    uint64_t id = trace_begin_exit();

    TRACE(VCPU_EXIT, id, .a = {0, addr, size, is_write});
    bql_lock();
    if (is_write) {
        as_write(s->as, AS_MMIO, addr, size, value);
    } else {
        as_read(s->as, AS_MMIO, addr, size, &value);
    }
    bql_unlock();
    return is_write ? strdup("OK\n")
                    : reply_printf("OK 0x%016" PRIx64 "\n", value);
}

static char *cmd_read(QtestServer *s, char **words, bool b64)
{
    uint64_t addr, len;
    uint8_t *data;
    char *reply;

    if (!parse_u64(words[1], &addr) || !parse_u64(words[2], &len) || len == 0 ||
        len > QTEST_MAX_TRANSFER) {
        return reply_printf("FAIL bad arguments to %s\n", words[0]);
    }
    data = malloc(len);
    bql_lock();
    as_rw_bytes(s->as, addr, data, len, false);
    bql_unlock();
    if (b64) {
        reply = malloc(base64_encoded_len(len) + 5);
        memcpy(reply, "OK ", 3);
        base64_encode(data, len, reply + 3);
        strcat(reply, "\n");
    } else {
        static const char hex[] = "0123456789abcdef";

        /* Not sprintf() per byte: a 3 MiB read took 10 s in the fuzzer. */
        reply = malloc(2 * len + 7);
        strcpy(reply, "OK 0x");
        for (uint64_t i = 0; i < len; i++) {
            reply[5 + 2 * i] = hex[data[i] >> 4];
            reply[6 + 2 * i] = hex[data[i] & 0xf];
        }
        strcpy(reply + 5 + 2 * len, "\n");
    }
    free(data);
    return reply;
}

static int hex_nibble(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static char *cmd_write(QtestServer *s, char **words, bool b64)
{
    uint64_t addr, len;
    uint8_t *data;
    const char *src = words[3];

    if (!parse_u64(words[1], &addr) || !parse_u64(words[2], &len) ||
        len > QTEST_MAX_TRANSFER || !src) {
        return reply_printf("FAIL bad arguments to %s\n", words[0]);
    }
    data = calloc(1, len + strlen(src)); /* room for any decoding */
    if (b64) {
        long n = base64_decode(src, data);

        if (n < 0) {
            free(data);
            return strdup("FAIL bad base64 data\n");
        }
    } else {
        /* As QEMU: "0x" then hex digits; missing digits mean zero bytes. */
        if (strncmp(src, "0x", 2) != 0) {
            free(data);
            return strdup("FAIL data must start with 0x\n");
        }
        src += 2;
        for (uint64_t i = 0; i < len && src[2 * i] && src[2 * i + 1]; i++) {
            int hi = hex_nibble(src[2 * i]), lo = hex_nibble(src[2 * i + 1]);

            if (hi < 0 || lo < 0) {
                free(data);
                return strdup("FAIL bad hex data\n");
            }
            data[i] = hi << 4 | lo;
        }
    }
    bql_lock();
    as_rw_bytes(s->as, addr, data, len, true);
    bql_unlock();
    free(data);
    return strdup("OK\n");
}

static char *cmd_memset(QtestServer *s, char **words)
{
    uint64_t addr, len, pattern;
    uint8_t *data;

    if (!parse_u64(words[1], &addr) || !parse_u64(words[2], &len) ||
        !parse_u64(words[3], &pattern) || len > QTEST_MAX_TRANSFER) {
        return strdup("FAIL bad arguments to memset\n");
    }
    if (len) {
        data = malloc(len);
        memset(data, (int)pattern, len);
        bql_lock();
        as_rw_bytes(s->as, addr, data, len, true);
        bql_unlock();
        free(data);
    }
    return strdup("OK\n");
}

#define MAX_WORDS 8

void qtest_server_execute(QtestServer *s, char *line, char **reply)
{
    char *words[MAX_WORDS + 1] = {0};
    char *save = NULL, *w;
    int n = 0;

    for (w = strtok_r(line, " ", &save); w && n < MAX_WORDS;
         w = strtok_r(NULL, " ", &save)) {
        words[n++] = w;
    }
    s->commands++;
    if (n == 0) {
        *reply = strdup("FAIL empty command\n");
    } else if (!strcmp(words[0], "outb") || !strcmp(words[0], "outw") ||
               !strcmp(words[0], "outl")) {
        *reply = cmd_pio(s, words, true);
    } else if (!strcmp(words[0], "inb") || !strcmp(words[0], "inw") ||
               !strcmp(words[0], "inl")) {
        *reply = cmd_pio(s, words, false);
    } else if (!strncmp(words[0], "write", 5) && strlen(words[0]) == 6 &&
               size_suffix(words[0][5])) {
        *reply = cmd_mmio(s, words, true);
    } else if (!strncmp(words[0], "read", 4) && strlen(words[0]) == 5 &&
               size_suffix(words[0][4])) {
        *reply = cmd_mmio(s, words, false);
    } else if (!strcmp(words[0], "read")) {
        *reply = cmd_read(s, words, false);
    } else if (!strcmp(words[0], "b64read")) {
        *reply = cmd_read(s, words, true);
    } else if (!strcmp(words[0], "write")) {
        *reply = cmd_write(s, words, false);
    } else if (!strcmp(words[0], "b64write")) {
        *reply = cmd_write(s, words, true);
    } else if (!strcmp(words[0], "memset")) {
        *reply = cmd_memset(s, words);
    } else if (!strcmp(words[0], "endianness")) {
        *reply = strdup("OK little\n");
    } else if (!strcmp(words[0], "irq_intercept_in") ||
               !strcmp(words[0], "irq_intercept_out")) {
        /* One interrupt controller: every line is reported from now on. */
        pthread_mutex_lock(&s->send_lock);
        s->irq_intercept = true;
        pthread_mutex_unlock(&s->send_lock);
        *reply = strdup("OK\n");
    } else {
        *reply = reply_printf("FAIL Unknown command '%s'\n", words[0]);
    }
}

/* ---- The vCPU-like thread
 * ------------------------------------------------------ */

static void *qtest_thread(void *opaque)
{
    QtestServer *s = opaque;
    size_t cap = 4096, used = 0;
    char *buf = malloc(cap);

    /* The guest's CPU, as far as the trace is concerned. */
    trace_set_thread_name("qtest");
    sandbox_enter(SANDBOX_QTEST); /* before the first command */

    for (;;) {
        char *nl;
        ssize_t n;

        while ((nl = memchr(buf, '\n', used))) {
            char *reply;

            *nl = '\0';
            if (nl > buf && nl[-1] == '\r') {
                nl[-1] = '\0';
            }
            qtest_server_execute(s, buf, &reply);
            send_all(s, reply);
            free(reply);
            used -= nl + 1 - buf;
            memmove(buf, nl + 1, used);
        }
        if (used == cap) {
            if (cap >= 2 * QTEST_MAX_TRANSFER + 64) {
                log_error("qtest: command line too long; closing");
                break;
            }
            cap *= 2;
            buf = realloc(buf, cap);
        }
        n = recv(s->fd, buf + used, cap - used, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break; /* end of input */
        }
        used += n;
    }
    free(buf);
    if (s->on_eof) {
        s->on_eof(s->on_eof_opaque);
    }
    return NULL;
}

/* ---- Set-up
 * ---------------------------------------------------------------------------
 */

int qtest_server_open(QtestServer *s, const char *spec, AddressSpace *as,
                      char *err, size_t errlen)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    const char *path;
    size_t path_len;
    bool server = false;
    int fd, ret;

    memset(s, 0, sizeof(*s));
    s->as = as;
    s->fd = -1;
    s->listen_fd = -1;
    pthread_mutex_init(&s->send_lock, NULL);

    if (strncmp(spec, "unix:", 5) != 0) {
        snprintf(err, errlen, "--qtest expects unix:PATH[,server], not '%s'",
                 spec);
        return -EINVAL;
    }
    path = spec + 5;
    path_len = strcspn(path, ",");
    if (path[path_len]) {
        if (strcmp(path + path_len, ",server") != 0) {
            snprintf(err, errlen, "--qtest: unknown option '%s'",
                     path + path_len + 1);
            return -EINVAL;
        }
        server = true;
    }
    if (path_len == 0 || path_len >= sizeof(addr.sun_path)) {
        snprintf(err, errlen, "--qtest: bad socket path in '%s'", spec);
        return -EINVAL;
    }
    memcpy(addr.sun_path, path, path_len);

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ret = -errno;
        snprintf(err, errlen, "qtest socket: %s", strerror(errno));
        return ret;
    }
    if (!server) {
        if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
            ret = -errno;
            snprintf(err, errlen, "cannot connect to qtest socket %s: %s",
                     addr.sun_path, strerror(errno));
            close(fd);
            return ret;
        }
        s->fd = fd;
        return 0;
    }
    unlink(addr.sun_path);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(fd, 1) < 0) {
        ret = -errno;
        snprintf(err, errlen, "cannot listen on qtest socket %s: %s",
                 addr.sun_path, strerror(errno));
        close(fd);
        return ret;
    }
    s->listen_fd = fd;
    s->listen_path = strdup(addr.sun_path);
    s->fd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (s->fd < 0) {
        ret = -errno;
        snprintf(err, errlen, "qtest accept: %s", strerror(errno));
        return ret;
    }
    /*
     * One client, so the path has done its work: removed now, since the
     * main thread's seccomp allowlist has no unlink at exit.
     */
    close(s->listen_fd);
    unlink(s->listen_path);
    s->listen_fd = -1;
    return 0;
}

int qtest_server_start(QtestServer *s, void (*on_eof)(void *), void *opaque)
{
    int ret;

    s->on_eof = on_eof;
    s->on_eof_opaque = opaque;
    ret = pthread_create(&s->thread, NULL, qtest_thread, s);
    if (ret) {
        return -ret;
    }
    s->thread_started = true;
    return 0;
}

void qtest_server_stop(QtestServer *s)
{
    if (s->thread_started) {
        /* A recv() in progress returns 0: the thread sees end of input. */
        shutdown(s->fd, SHUT_RDWR);
        pthread_join(s->thread, NULL);
        s->thread_started = false;
    }
    pthread_mutex_lock(&s->send_lock);
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    pthread_mutex_unlock(&s->send_lock);
    if (s->listen_fd >= 0) {
        close(s->listen_fd);
        unlink(s->listen_path);
        s->listen_fd = -1;
    }
    free(s->listen_path);
    s->listen_path = NULL;
    pthread_mutex_destroy(&s->send_lock);
}
