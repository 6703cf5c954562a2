/*
 * minivmm: parse the command line, build the machine, run the main loop
 * until the guest (or the test client, or a signal) ends it, then drain,
 * flush and exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "aio/main-loop.h"
#include "vmm/board.h"
#include "vmm/config.h"
#include "vmm/qtest.h"

/* SIGTERM, SIGINT and SIGHUP arrive on a signalfd the main loop watches. */
typedef struct SignalWatch {
    int fd;
    int signo;
} SignalWatch;

static void signal_readable(void *opaque)
{
    SignalWatch *w = opaque;
    struct signalfd_siginfo info;

    if (read(w->fd, &info, sizeof(info)) == sizeof(info)) {
        w->signo = info.ssi_signo;
        main_loop_quit();
    }
}

static int signals_block(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    /* Before any thread exists, so that every thread inherits the mask. */
    return pthread_sigmask(SIG_BLOCK, set, NULL);
}

static void qtest_eof(void *opaque)
{
    (void)opaque;
    main_loop_quit(); /* the client hung up: the run is over */
}

/*
 * Everything the guest was told is written must be durable when we exit,
 * not only in the page cache.
 */
static void flush_done(void *opaque, int ret)
{
    *(int *)opaque = ret;
}

static void flush_disks(Machine *m)
{
    for (int i = 0; i < MAX_DISKS; i++) {
        BlockBackend *blk = m->blk[i];
        int ret = 1;
        BlockRequest req = {
            .op = BLOCK_OP_FLUSH, .cb = flush_done, .opaque = &ret};

        if (!blk || blk_is_readonly(blk) || blk_submit(blk, &req) < 0) {
            continue;
        }
        blk_drain(blk);
        if (ret < 0) {
            fprintf(stderr, "minivmm: flushing %s failed: %s\n", blk_path(blk),
                    strerror(-ret));
        }
    }
}

/*
 * A closed stdin, stdout or stderr would be handed out again by the next
 * eventfd() or socket(), and the console would then read our own eventfd.
 */
static void ensure_std_fds(void)
{
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) < 0) {
            abort();
        }
    }
}

int main(int argc, char **argv)
{
    MachineConfig cfg;
    MainLoopOptions ml_opts;
    SignalWatch sig = {.fd = -1};
    QtestServer qtest;
    MachineIrqOps irq;
    Machine machine;
    sigset_t set;
    char err[512];
    int ret;

    ensure_std_fds();
    ret = config_parse(&cfg, argc, argv);
    if (ret != 0) {
        config_free(&cfg);
        return ret > 0 ? 0 : 2;
    }
    signals_block(&set);
    aio_set_notify_on_sqe(cfg.notify_on_sqe);
    ml_opts = (MainLoopOptions){.fdmon = cfg.fdmon,
                                .timeout_ms = cfg.main_loop_timeout_ms};
    ret = main_loop_init(&ml_opts);
    if (ret < 0) {
        fprintf(stderr, "minivmm: cannot set up the main loop: %s\n",
                strerror(-ret));
        config_free(&cfg);
        return 1;
    }
    sig.fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    aio_set_fd_handler(main_loop_context(), sig.fd, signal_readable, NULL, NULL,
                       NULL, &sig);

    irq = (MachineIrqOps){.set_level = qtest_server_set_irq,
                          .send_msi = qtest_server_send_msi,
                          .opaque = &qtest};
    ret = machine_create(&machine, &cfg, &irq, err, sizeof(err));
    if (ret < 0) {
        fprintf(stderr, "minivmm: %s\n", err);
        goto out_loop;
    }
    ret = qtest_server_open(&qtest, cfg.qtest_spec, &machine.as, err,
                            sizeof(err));
    if (ret == 0) {
        ret = qtest_server_start(&qtest, qtest_eof, NULL);
    }
    if (ret < 0) {
        fprintf(stderr, "minivmm: %s\n", err);
        goto out_machine;
    }

    main_loop_run();

    /* The qtest thread may be waiting for the lock: let it finish. */
    bql_unlock();
    qtest_server_stop(&qtest);
    bql_lock();
out_machine:
    flush_disks(&machine);
    if (cfg.stats) {
        machine_print_stats(&machine, stderr);
    }
    machine_destroy(&machine);
out_loop:
    aio_set_fd_handler(main_loop_context(), sig.fd, NULL, NULL, NULL, NULL,
                       NULL);
    close(sig.fd);
    main_loop_cleanup();
    config_free(&cfg);
    return ret < 0 ? 1 : 0;
}
