/*
 * minivmm: parse the command line, build the machine, run the main loop
 * until the guest (or the test client, or a signal) ends it, then quiesce,
 * drain, flush and exit.
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
#include "util/clock.h"
#include "util/exit-status.h"
#include "util/sandbox.h"
#include "util/trace.h"
#include "vmm/board.h"
#include "vmm/config.h"
#include "vmm/kvm.h"
#include "vmm/machine-boot.h"
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

/*
 * The end of every run, once nothing outside starts requests (the vCPUs
 * or the qtest server stopped): quiesce the devices and drain the disks,
 * then make the guest's writes durable, report, tear down (vmm/board.h).
 * Returns the run's @status, or EXIT_STATUS_VMM_ERROR if a flush failed:
 * whatever the guest said, what it wrote may be lost.
 */
static int machine_finish(Machine *m, const MachineConfig *cfg, int status)
{
    machine_quiesce(m);
    if (machine_flush(m) < 0) {
        status = EXIT_STATUS_VMM_ERROR;
    }
    if (cfg->stats) {
        machine_print_stats(m, stderr);
    }
    machine_destroy(m);
    return status;
}

/*
 * --timeout: the guest (or the qtest client) has SECONDS from the start of
 * the run to end it; then the run ends as any other, with status 5.
 */
static void timeout_expired(void *opaque)
{
    Machine *m = opaque;

    machine_request_exit(m, EXIT_STATUS_TIMEOUT);
    if (atomic_load(&m->exit_status) == EXIT_STATUS_TIMEOUT) {
        fprintf(stderr,
                "minivmm: the guest did not finish within %d s "
                "(--timeout)\n",
                m->cfg->timeout_s);
    }
}

static AioTimer *timeout_arm(Machine *m)
{
    AioTimer *t;

    if (!m->cfg->timeout_s) {
        return NULL;
    }
    t = aio_timer_new(main_loop_context(), timeout_expired, m);
    aio_timer_mod(t, clock_ns() + m->cfg->timeout_s * NS_PER_S);
    return t;
}

/* --dump-dtb or --dump-acpi without a guest: build, describe, exit. */
static void no_irq(void *opaque, int gsi, int level)
{
    (void)opaque, (void)gsi, (void)level;
}

static void no_msi(void *opaque, uint64_t addr, uint32_t data)
{
    (void)opaque, (void)addr, (void)data;
}

static int run_dump_dtb(Machine *m, const MachineConfig *cfg)
{
    MachineIrqOps irq = {.set_level = no_irq, .send_msi = no_msi};
    BootCpuState cpu;
    char err[512];
    int ret;

    ret = machine_create(m, cfg, &irq, err, sizeof(err));
    if (ret == 0) {
        ret = machine_prepare_boot(m, &cpu, err, sizeof(err));
        machine_destroy(m);
    }
    if (ret < 0) {
        fprintf(stderr, "minivmm: %s\n", err);
        return EXIT_STATUS_VMM_ERROR;
    }
    return EXIT_STATUS_OK;
}

/* The qtest accelerator: a test client's accesses stand in for a guest. */
static int run_qtest(Machine *m, const MachineConfig *cfg)
{
    QtestServer qtest;
    MachineIrqOps irq = {.set_level = qtest_server_set_irq,
                         .send_msi = qtest_server_send_msi,
                         .opaque = &qtest};
    AioTimer *timeout = NULL;
    char err[512];
    int ret, status;

    ret = machine_create(m, cfg, &irq, err, sizeof(err));
    if (ret < 0) {
        fprintf(stderr, "minivmm: %s\n", err);
        return EXIT_STATUS_VMM_ERROR;
    }
    ret = qtest_server_open(&qtest, cfg->qtest_spec, &m->as, err, sizeof(err));
    if (ret == 0) {
        ret = qtest_server_start(&qtest, qtest_eof, NULL);
    }
    if (ret == 0) {
        timeout = timeout_arm(m);
        sandbox_enter(SANDBOX_MAIN); /* every thread exists now */
        main_loop_run();
        aio_timer_free(timeout);
        /* The qtest thread may be waiting for the lock: let it finish. */
        bql_unlock();
        qtest_server_stop(&qtest);
        bql_lock();
    } else {
        fprintf(stderr, "minivmm: %s\n", err);
    }
    /* A hang-up leaves no status; the test exit port or --timeout do. */
    status = ret < 0 ? EXIT_STATUS_VMM_ERROR : atomic_load(&m->exit_status);
    return machine_finish(m, cfg, status >= 0 ? status : EXIT_STATUS_OK);
}

/* KVM: boot the guest and run until it ends or a signal stops us. */
static int run_kvm(Machine *m, const MachineConfig *cfg)
{
    KvmVm vm;
    BootCpuState cpu;
    MachineIrqOps irq = {.set_level = kvm_set_irq,
                         .send_msi = kvm_send_msi,
                         .virtio_notify = kvm_virtio_notify_hook,
                         .opaque = &vm};
    AioTimer *timeout = NULL;
    char err[512];
    int ret, status;

    /* The user's files first: their mistakes deserve a clearer word. */
    const char *files[] = {cfg->kernel, cfg->initrd};
    for (int i = 0; i < 2; i++) {
        if (files[i] && access(files[i], R_OK) < 0) {
            fprintf(stderr, "minivmm: cannot read %s: %s\n", files[i],
                    strerror(errno));
            return EXIT_STATUS_VMM_ERROR;
        }
    }
    ret = kvm_vm_init(&vm, err, sizeof(err));
    if (ret < 0) {
        fprintf(stderr, "minivmm: %s\n", err);
        return EXIT_STATUS_VMM_ERROR;
    }
    ret = machine_create(m, cfg, &irq, err, sizeof(err));
    if (ret < 0) {
        fprintf(stderr, "minivmm: %s\n", err);
        kvm_vm_cleanup(&vm);
        return EXIT_STATUS_VMM_ERROR;
    }
    ret = kvm_vm_map_ram(&vm, &m->ram, &m->as, err, sizeof(err));
    if (ret == 0) {
        ret = machine_prepare_boot(m, &cpu, err, sizeof(err));
    }
    if (ret == 0) {
        ret = kvm_vcpus_create(&vm, cfg->cpus, &cpu, err, sizeof(err));
    }
    if (ret == 0) {
        ret = kvm_vcpus_start(&vm, machine_request_exit, m);
        if (ret < 0) {
            snprintf(err, sizeof(err), "cannot start the vCPU threads: %s",
                     strerror(-ret));
        }
    }
    if (ret == 0) {
        timeout = timeout_arm(m);
        sandbox_enter(SANDBOX_MAIN); /* every thread exists now */
        main_loop_run();
        aio_timer_free(timeout);
    } else {
        fprintf(stderr, "minivmm: %s\n", err);
    }
    /* vCPUs take the lock to finish an exit: let them, then join them. */
    bql_unlock();
    kvm_vcpus_stop(&vm);
    bql_lock();

    /* No status: a signal ended the run (main() says which). */
    status = ret < 0 ? EXIT_STATUS_VMM_ERROR : atomic_load(&m->exit_status);
    status = machine_finish(m, cfg, status >= 0 ? status : EXIT_STATUS_OK);
    kvm_vm_cleanup(&vm);
    return status;
}

/*
 * --trace: on before any thread exists, so that every thread records, and
 * the file opened now, so that a path that cannot be written is a mistake
 * on the command line rather than a surprise at exit.
 */
static int trace_begin(const MachineConfig *cfg)
{
    char err[512];

    if (cfg->trace && trace_start(cfg->trace, err, sizeof(err)) < 0) {
        fprintf(stderr, "minivmm: --trace: %s\n", err);
        return -EINVAL;
    }
    trace_set_thread_name("main");
    return 0;
}

/*
 * The trace is written last, once every thread that records has been
 * joined. A run that lost its trace failed, unless it had failed already.
 */
static int trace_end(int status)
{
    if (trace_finish() < 0 && status == EXIT_STATUS_OK) {
        return EXIT_STATUS_VMM_ERROR;
    }
    return status;
}

int main(int argc, char **argv)
{
    MachineConfig cfg;
    MainLoopOptions ml_opts;
    SignalWatch sig = {.fd = -1};
    Machine machine;
    sigset_t set;
    int ret;

    ensure_std_fds();
    ret = config_parse(&cfg, argc, argv);
    if (ret != 0) {
        config_free(&cfg);
        return ret > 0 ? EXIT_STATUS_OK : EXIT_STATUS_USAGE;
    }
    if (trace_begin(&cfg) < 0) {
        config_free(&cfg);
        return EXIT_STATUS_USAGE;
    }
    if (sandbox_setup(cfg.seccomp) < 0) { /* it says why */
        config_free(&cfg);
        return trace_end(EXIT_STATUS_VMM_ERROR);
    }
    signals_block(&set);
    aio_set_notify_on_sqe(cfg.notify_on_sqe);
    main_loop_set_defer_kick(cfg.main_loop_defer_kick);
    ml_opts = (MainLoopOptions){.fdmon = cfg.fdmon,
                                .timeout_ms = cfg.main_loop_timeout_ms,
                                .uring_flags = cfg.main_uring_flags};
    ret = main_loop_init(&ml_opts);
    if (ret < 0) {
        fprintf(stderr, "minivmm: cannot set up the main loop: %s\n",
                strerror(-ret));
        config_free(&cfg);
        return trace_end(EXIT_STATUS_VMM_ERROR);
    }
    sig.fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sig.fd < 0) {
        /* With the signals blocked, none could stop the run: do not start. */
        fprintf(stderr, "minivmm: cannot watch for signals (signalfd): %s\n",
                strerror(errno));
        main_loop_cleanup();
        config_free(&cfg);
        return trace_end(EXIT_STATUS_VMM_ERROR);
    }
    aio_set_fd_handler(main_loop_context(), sig.fd, signal_readable, NULL, NULL,
                       NULL, &sig);

    if (cfg.accel == ACCEL_QTEST) {
        ret = run_qtest(&machine, &cfg);
    } else if (!cfg.kernel) {
        ret = run_dump_dtb(&machine, &cfg);
    } else {
        ret = run_kvm(&machine, &cfg);
    }
    if (sig.signo && cfg.accel == ACCEL_KVM && ret == EXIT_STATUS_OK) {
        /* The guest did not finish: say so, as a shell would. */
        fprintf(stderr, "minivmm: terminating on signal %d\n", sig.signo);
        ret = EXIT_STATUS_SIGNAL_BASE + sig.signo;
    }

    aio_set_fd_handler(main_loop_context(), sig.fd, NULL, NULL, NULL, NULL,
                       NULL);
    close(sig.fd);
    main_loop_cleanup();
    config_free(&cfg);
    return trace_end(ret);
}
