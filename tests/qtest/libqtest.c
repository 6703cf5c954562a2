#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/qtest/libqtest.h"
#include "util/base64.h"
#include "util/clock.h"

static const QosOps qtest_qos_ops;

#define CONNECT_TIMEOUT_MS 20000
#define EXIT_TIMEOUT_MS    10000

QTestTarget qtest_target_from_env(void)
{
    const char *t = getenv("QTEST_TARGET");

    return t && !strcmp(t, "qemu") ? QTEST_QEMU : QTEST_MINIVMM;
}

const char *qtest_target_name(QTestTarget target)
{
    return target == QTEST_QEMU ? "qemu" : "minivmm";
}

/* ---- Starting the machine
 * ------------------------------------------------------- */

static int listen_unix(char *path_out)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    static int counter;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(addr.sun_path, sizeof(addr.sun_path), "/tmp/qtest-%d-%d.sock",
             getpid(), counter++);
    unlink(addr.sun_path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(fd, 1) < 0) {
        perror("qtest: listen");
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    strcpy(path_out, addr.sun_path);
    return fd;
}

/* Split @cmdline on spaces into a NULL-terminated argv (strings leaked to
 * the child, which execs at once). */
static char **split_args(const char *cmdline)
{
    char *copy = strdup(cmdline), *save = NULL, *w;
    char **argv = calloc(strlen(cmdline) / 2 + 2, sizeof(char *));
    int n = 0;

    for (w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        argv[n++] = w;
    }
    argv[n] = NULL;
    return argv;
}

/* The machine's stdin (and for a terminal, its stdout) in the child. */
static void child_stdio(const char *path, bool tty)
{
    int fd;

    if (!path) {
        return;
    }
    if (tty && setsid() < 0) {
        _exit(126);
    }
    /* A session leader's first terminal becomes its controlling one. */
    fd = open(path, tty ? O_RDWR : O_RDONLY);
    if (fd < 0 || dup2(fd, STDIN_FILENO) < 0 ||
        (tty && dup2(fd, STDOUT_FILENO) < 0)) {
        _exit(126);
    }
}

static QTest *start(QTestTarget target, unsigned ram_mb, const char *args,
                    const char *stdin_path, bool tty);

QTest *qtest_start(QTestTarget target, unsigned ram_mb, const char *args)
{
    return start(target, ram_mb, args, NULL, false);
}

QTest *qtest_start_stdin(QTestTarget target, unsigned ram_mb, const char *args,
                         const char *stdin_path)
{
    return start(target, ram_mb, args, stdin_path, false);
}

QTest *qtest_start_tty(QTestTarget target, unsigned ram_mb, const char *args,
                       const char *tty_path)
{
    return start(target, ram_mb, args, tty_path, true);
}

static QTest *start(QTestTarget target, unsigned ram_mb, const char *args,
                    const char *stdin_path, bool tty)
{
    QTest *t = calloc(1, sizeof(*t));
    const char *bin = getenv("MINIVMM");
    char *cmdline;
    struct pollfd pfd;
    int64_t deadline;

    t->target = target;
    t->fd = -1;
    t->listen_fd = listen_unix(t->sock_path);
    if (t->listen_fd < 0) {
        free(t);
        return NULL;
    }
    if (target == QTEST_QEMU) {
        if (asprintf(&cmdline,
                     "qemu-system-x86_64 -qtest unix:%s -qtest-log none "
                     "-machine q35 -accel tcg -S -display none -nodefaults "
                     "-nic none -m %u %s",
                     t->sock_path, ram_mb, args ? args : "") < 0) {
            abort();
        }
    } else if (asprintf(&cmdline,
                        "%s --accel qtest --qtest unix:%s --memory %uM %s",
                        bin ? bin : "build/minivmm", t->sock_path, ram_mb,
                        args ? args : "") < 0) {
        abort();
    }

    t->pid = fork();
    if (t->pid == 0) {
        char **argv = split_args(cmdline);

        /*
         * The machine dies with the test: a failed check ends the test's
         * process at once, with no qtest_quit(), and nothing may be left
         * running (a differential test has two machines up).
         */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        child_stdio(stdin_path, tty);
        execvp(argv[0], argv);
        fprintf(stderr, "qtest: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    free(cmdline);

    /* Wait for the connection, or for the machine to die trying. */
    pfd = (struct pollfd){.fd = t->listen_fd, .events = POLLIN};
    deadline = clock_ns() + CONNECT_TIMEOUT_MS * NS_PER_MS;
    while (clock_ns() < deadline) {
        int status;

        if (poll(&pfd, 1, 100) == 1) {
            t->fd = accept4(t->listen_fd, NULL, NULL, SOCK_CLOEXEC);
            break;
        }
        if (waitpid(t->pid, &status, WNOHANG) == t->pid) {
            fprintf(stderr, "qtest: %s exited before connecting (status %d)\n",
                    qtest_target_name(target), WEXITSTATUS(status));
            t->pid = 0;
            break;
        }
    }
    if (t->fd < 0) {
        fprintf(stderr, "qtest: %s did not connect\n",
                qtest_target_name(target));
        qtest_quit(t);
        return NULL;
    }

    /* Learn the RAM size the way firmware does: from fw_cfg. */
    uint64_t ram = 0;
    free(qtest_command(t, "outw 0x510 0x3"));
    for (int i = 0; i < 8; i++) {
        char *r = qtest_command(t, "inb 0x511");

        ram |= strtoull(r + 3, NULL, 16) << (8 * i);
        free(r);
    }
    qos_init(&t->qos, &qtest_qos_ops, t, ram);
    return t;
}

static int wait_exit(QTest *t)
{
    int64_t deadline = clock_ns() + EXIT_TIMEOUT_MS * NS_PER_MS;
    int status;

    if (t->pid <= 0) {
        return -1;
    }
    while (clock_ns() < deadline) {
        if (waitpid(t->pid, &status, WNOHANG) == t->pid) {
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        usleep(1000);
    }
    fprintf(stderr, "qtest: %s did not exit; killing it\n",
            qtest_target_name(t->target));
    kill(t->pid, SIGKILL);
    waitpid(t->pid, &status, 0);
    return -1;
}

static int finish(QTest *t, int status)
{
    if (t->listen_fd >= 0) {
        close(t->listen_fd);
        unlink(t->sock_path);
    }
    free(t->rx);
    free(t);
    return status;
}

int qtest_quit(QTest *t)
{
    if (t->fd >= 0) {
        close(t->fd);
        t->fd = -1;
    }
    if (t->target == QTEST_QEMU && t->pid > 0) {
        kill(t->pid, SIGTERM); /* QEMU does not exit on a qtest hang-up */
    }
    return finish(t, wait_exit(t));
}

int qtest_kill_term(QTest *t)
{
    return qtest_kill(t, SIGTERM);
}

int qtest_kill(QTest *t, int sig)
{
    int status;

    if (t->pid > 0 && sig) {
        kill(t->pid, sig);
    }
    status = wait_exit(t);
    if (t->fd >= 0) {
        close(t->fd);
    }
    return finish(t, status);
}

/* ---- Talking
 * ------------------------------------------------------------------------- */

/* One line from the socket, without its newline; NULL at end of input. */
static char *recv_line(QTest *t)
{
    for (;;) {
        char *nl = t->rx ? memchr(t->rx, '\n', t->rx_len) : NULL;

        if (nl) {
            size_t n = nl - t->rx;
            char *line = strndup(t->rx, n);

            t->rx_len -= n + 1;
            memmove(t->rx, nl + 1, t->rx_len);
            return line;
        }
        if (t->rx_cap - t->rx_len < 4096) {
            t->rx_cap = t->rx_cap ? t->rx_cap * 2 : 65536;
            t->rx = realloc(t->rx, t->rx_cap);
        }
        ssize_t got = recv(t->fd, t->rx + t->rx_len, t->rx_cap - t->rx_len, 0);

        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            return NULL;
        }
        t->rx_len += got;
    }
}

/* Send @len bytes of @cmd, which ends in a newline. */
static void send_line(QTest *t, const char *cmd, size_t len)
{
    for (size_t off = 0; off < len;) {
        ssize_t n = send(t->fd, cmd + off, len - off, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            fprintf(stderr, "qtest: lost the connection to %s\n",
                    qtest_target_name(t->target));
            abort();
        }
        off += n;
    }
    t->commands++;
}

static void vsend_command(QTest *t, const char *fmt, va_list ap)
{
    char *cmd;
    int len = vasprintf(&cmd, fmt, ap);

    if (len < 0) {
        abort();
    }
    cmd = realloc(cmd, len + 2);
    cmd[len] = '\n';
    send_line(t, cmd, len + 1);
    free(cmd);
}

/* The next reply line, with IRQ lines recorded and skipped. */
static char *recv_reply(QTest *t)
{
    char *line;

    while ((line = recv_line(t))) {
        int irq;

        if (sscanf(line, "IRQ raise %d", &irq) == 1 && irq >= 0 && irq < 256) {
            t->irq_level[irq] = true;
        } else if (sscanf(line, "IRQ lower %d", &irq) == 1 && irq >= 0 &&
                   irq < 256) {
            t->irq_level[irq] = false;
        } else {
            return line;
        }
        free(line);
    }
    fprintf(stderr, "qtest: %s closed the connection\n",
            qtest_target_name(t->target));
    abort();
}

/* Collect the "OK"s owed to pipelined writes. */
static void collect_pending(QTest *t)
{
    while (t->pending_ok) {
        char *line = recv_reply(t);

        if (strcmp(line, "OK") != 0) {
            fprintf(stderr, "qtest: a pipelined write to %s failed: %s\n",
                    qtest_target_name(t->target), line);
            abort();
        }
        free(line);
        t->pending_ok--;
    }
}

char *qtest_command(QTest *t, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsend_command(t, fmt, ap);
    va_end(ap);
    t->round_trips++;
    collect_pending(t);
    return recv_reply(t);
}

/* Past this many replies owed, collect them (the machine's socket buffer). */
#define MAX_PENDING_OK 512

void qtest_write_async(QTest *t, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsend_command(t, fmt, ap);
    va_end(ap);
    if (++t->pending_ok >= MAX_PENDING_OK) {
        collect_pending(t);
    }
}

bool qtest_irq_level(QTest *t, int irq)
{
    return irq >= 0 && irq < 256 && t->irq_level[irq];
}

/* ---- QosOps over the protocol
 * ------------------------------------------------------ */

static const char size_letter[9] = {0, 'b', 'w', 0, 'l', 0, 0, 0, 'q'};

/* "OK 0x..." -> the number; anything else is a broken machine. */
static uint64_t reply_value(QTest *t, char *reply)
{
    uint64_t v;

    if (strncmp(reply, "OK ", 3) != 0) {
        fprintf(stderr, "qtest: unexpected reply from %s: %s\n",
                qtest_target_name(t->target), reply);
        abort();
    }
    v = strtoull(reply + 3, NULL, 0);
    free(reply);
    return v;
}

static uint64_t qt_pio_read(void *opaque, uint16_t port, unsigned size)
{
    QTest *t = opaque;

    return reply_value(t,
                       qtest_command(t, "in%c 0x%x", size_letter[size], port));
}

static void qt_pio_write(void *opaque, uint16_t port, uint64_t value,
                         unsigned size)
{
    QTest *t = opaque;

    qtest_write_async(t, "out%c 0x%x 0x%" PRIx64, size_letter[size], port,
                      value);
}

static uint64_t qt_mmio_read(void *opaque, uint64_t addr, unsigned size)
{
    QTest *t = opaque;

    return reply_value(
        t, qtest_command(t, "read%c 0x%" PRIx64, size_letter[size], addr));
}

static void qt_mmio_write(void *opaque, uint64_t addr, uint64_t value,
                          unsigned size)
{
    QTest *t = opaque;

    qtest_write_async(t, "write%c 0x%" PRIx64 " 0x%" PRIx64, size_letter[size],
                      addr, value);
}

static void qt_memread(void *opaque, uint64_t addr, void *buf, size_t len)
{
    QTest *t = opaque;
    char *reply;

    if (len == 0) {
        return;
    }
    reply = qtest_command(t, "b64read 0x%" PRIx64 " 0x%zx", addr, len);
    if (strncmp(reply, "OK ", 3) != 0 ||
        base64_decode(reply + 3, buf) != (long)len) {
        fprintf(stderr, "qtest: bad b64read reply\n");
        abort();
    }
    free(reply);
}

static void qt_memwrite(void *opaque, uint64_t addr, const void *buf,
                        size_t len)
{
    QTest *t = opaque;
    char *enc;

    if (len == 0) {
        return;
    }
    enc = malloc(base64_encoded_len(len) + 1);
    base64_encode(buf, len, enc);
    qtest_write_async(t, "b64write 0x%" PRIx64 " 0x%zx %s", addr, len, enc);
    free(enc);
}

static const QosOps qtest_qos_ops = {
    .pio_read = qt_pio_read,
    .pio_write = qt_pio_write,
    .mmio_read = qt_mmio_read,
    .mmio_write = qt_mmio_write,
    .memread = qt_memread,
    .memwrite = qt_memwrite,
};
