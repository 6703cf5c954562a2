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

/* The end of every run: make the guest's writes durable, report, tear down. */
static void machine_finish(Machine *m, const MachineConfig *cfg)
{
    flush_disks(m);
    if (cfg->stats) {
        machine_print_stats(m, stderr);
    }
    machine_destroy(m);
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
        return 1;
    }
    return 0;
}

/* The qtest accelerator: a test client's accesses stand in for a guest. */
static int run_qtest(Machine *m, const MachineConfig *cfg)
{
    QtestServer qtest;
    MachineIrqOps irq = {.set_level = qtest_server_set_irq,
                         .send_msi = qtest_server_send_msi,
                         .opaque = &qtest};
    char err[512];
    int ret;

    ret = machine_create(m, cfg, &irq, err, sizeof(err));
    if (ret < 0) {
        fprintf(stderr, "minivmm: %s\n", err);
        return 1;
    }
    ret = qtest_server_open(&qtest, cfg->qtest_spec, &m->as, err, sizeof(err));
    if (ret == 0) {
        ret = qtest_server_start(&qtest, qtest_eof, NULL);
    }
    if (ret == 0) {
        main_loop_run();
        /* The qtest thread may be waiting for the lock: let it finish. */
        bql_unlock();
        qtest_server_stop(&qtest);
        bql_lock();
    } else {
        fprintf(stderr, "minivmm: %s\n", err);
    }
    machine_finish(m, cfg);
    if (ret < 0) {
        return 1;
    }
    /* A write to the test exit port ends a qtest run too. */
    return atomic_load(&m->exit_status) > 0 ? atomic_load(&m->exit_status) : 0;
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
    char err[512];
    int ret, status;

    /* The user's files first: their mistakes deserve a clearer word. */
    const char *files[] = {cfg->kernel, cfg->initrd};
    for (int i = 0; i < 2; i++) {
        if (files[i] && access(files[i], R_OK) < 0) {
            fprintf(stderr, "minivmm: cannot read %s: %s\n", files[i],
                    strerror(errno));
            return 1;
        }
    }
    ret = kvm_vm_init(&vm, err, sizeof(err));
    if (ret < 0) {
        fprintf(stderr, "minivmm: %s\n", err);
        return 1;
    }
    ret = machine_create(m, cfg, &irq, err, sizeof(err));
    if (ret < 0) {
        fprintf(stderr, "minivmm: %s\n", err);
        kvm_vm_cleanup(&vm);
        return 1;
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
        main_loop_run();
    } else {
        fprintf(stderr, "minivmm: %s\n", err);
    }
    /* vCPUs take the lock to finish an exit: let them, then join them. */
    bql_unlock();
    kvm_vcpus_stop(&vm);
    bql_lock();

    machine_finish(m, cfg);
    kvm_vm_cleanup(&vm);
    if (ret < 0) {
        return 1;
    }
    status = atomic_load(&m->exit_status);
    return status >= 0 ? status : 0; /* a signal ended the run */
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
        return ret > 0 ? 0 : 2;
    }
    signals_block(&set);
    aio_set_notify_on_sqe(cfg.notify_on_sqe);
    ml_opts = (MainLoopOptions){.fdmon = cfg.fdmon,
                                .timeout_ms = cfg.main_loop_timeout_ms,
                                .uring_flags = cfg.main_uring_flags};
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

    if (cfg.accel == ACCEL_QTEST) {
        ret = run_qtest(&machine, &cfg);
    } else if (!cfg.kernel) {
        ret = run_dump_dtb(&machine, &cfg);
    } else {
        ret = run_kvm(&machine, &cfg);
    }
    if (sig.signo && cfg.accel == ACCEL_KVM) {
        /* The guest did not finish: say so, as a shell would. */
        fprintf(stderr, "minivmm: terminating on signal %d\n", sig.signo);
        ret = 128 + sig.signo;
    }

    aio_set_fd_handler(main_loop_context(), sig.fd, NULL, NULL, NULL, NULL,
                       NULL);
    close(sig.fd);
    main_loop_cleanup();
    config_free(&cfg);
    return ret;
}
