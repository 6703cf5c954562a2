#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "aio/main-loop.h"
#include "devices/ahci.h"
#include "devices/virtio-blk.h"
#include "devices/virtio-pci.h"
#include "firmware/pci-assign.h"
#include "util/clock.h"
#include "util/exit-status.h"
#include "vmm/board.h"

#define PCI_SLOT_AHCI     0x1f
#define AHCI_DEVFN        PCI_DEVFN(PCI_SLOT_AHCI, 2)
#define VIRTIO_FIRST_SLOT 2

static void board_irq_set(void *opaque, int gsi, int level)
{
    Machine *m = opaque;

    m->irq.set_level(m->irq.opaque, gsi, level);
}

static IrqLine board_irq_line(Machine *m, int gsi)
{
    return (IrqLine){.set_level = board_irq_set, .opaque = m, .gsi = gsi};
}

/* ---- The UART's console: stdout and stdin, a file, or nothing -------------
 */

static void stdin_readable(void *opaque);

static void stdin_watch(Machine *m, bool on)
{
    if (on != m->stdin_watched) {
        aio_set_fd_handler(main_loop_context(), STDIN_FILENO,
                           on ? stdin_readable : NULL, NULL, NULL, NULL, m);
        m->stdin_watched = on;
    }
}

/* Move what stdin has into the receive FIFO, as much as fits. */
static void stdin_readable(void *opaque)
{
    Machine *m = opaque;
    uint8_t buf[SERIAL_RX_FIFO];
    unsigned room = serial_rx_room(&m->serial);
    ssize_t n;

    if (room) {
        n = read(STDIN_FILENO, buf, room);
        if (n > 0) {
            /* The escape keys only take bytes out: they still fit. */
            n = console_input(&m->console, buf, n);
            serial_receive(&m->serial, buf, n);
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            m->stdin_done = true; /* end of input: nothing more will come */
        }
    }
    /* A full FIFO: wait for the guest to read (serial_rx_space()). */
    stdin_watch(m, !m->stdin_done && serial_rx_room(&m->serial) > 0);
}

static void serial_rx_space(void *opaque)
{
    Machine *m = opaque;

    stdin_watch(m, !m->stdin_done);
}

/* Ctrl-A x: the user ends the run, as a Ctrl-C did before raw mode. */
static void console_quit(void *opaque)
{
    static const char msg[] = "\r\nminivmm: terminating on Ctrl-A x\r\n";
    ssize_t r = write(STDERR_FILENO, msg, sizeof(msg) - 1);

    (void)r;
    machine_request_exit(opaque, EXIT_STATUS_SIGNAL_BASE + SIGINT);
}

static int setup_serial(Machine *m, char *err, size_t errlen)
{
    const char *how = m->cfg->serial ? m->cfg->serial : "stdio";
    int out_fd = -1;

    m->serial_file_fd = -1;
    if (!strcmp(how, "stdio")) {
        out_fd = STDOUT_FILENO;
        console_open(&m->console, console_quit, m);
    } else if (!strncmp(how, "file:", 5)) {
        m->serial_file_fd =
            open(how + 5, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (m->serial_file_fd < 0) {
            int ret = -errno;

            snprintf(err, errlen, "--serial: cannot open %s: %s", how + 5,
                     strerror(errno));
            return ret;
        }
        out_fd = m->serial_file_fd;
    }
    serial_init(&m->serial, &m->as, SERIAL_COM1_PORT,
                board_irq_line(m, SERIAL_COM1_IRQ), out_fd);
    m->serial.rx_space = serial_rx_space;
    m->serial.rx_space_opaque = m;
    if (strcmp(how, "none") != 0) {
        stdin_watch(m, true); /* input comes from stdin either way */
    }
    return 0;
}

static int start_iothreads(Machine *m, char *err, size_t errlen)
{
    for (int i = 0; i < m->cfg->iothreads; i++) {
        AioContextOptions opts = {.fdmon = m->cfg->fdmon,
                                  .poll = m->cfg->iothread_poll,
                                  .uring_flags = m->cfg->iothread_uring_flags};
        char name[32];

        snprintf(name, sizeof(name), "iothread%d", i);
        m->iothreads[i] = iothread_new(name, &opts);
        if (!m->iothreads[i]) {
            int ret = -errno;

            snprintf(err, errlen, "cannot start %s: %s", name, strerror(errno));
            return ret;
        }
    }
    return 0;
}

static int open_disks(Machine *m, char *err, size_t errlen)
{
    for (int i = 0; i < m->cfg->ndisks; i++) {
        const DiskConfig *d = &m->cfg->disks[i];
        int ret =
            blk_open_string(d->path, d->block_opts, &m->blk[i], err, errlen);

        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

/* The disks' devices, in command-line order. */
static int create_disk_devices(Machine *m, char *err, size_t errlen)
{
    int sata_port = 0, slot = VIRTIO_FIRST_SLOT;
    int ret;

    for (int i = 0; i < m->cfg->ndisks; i++) {
        const DiskConfig *d = &m->cfg->disks[i];

        if (d->kind == DISK_SATA) {
            AhciDiskOptions opts = {
                .serial = d->serial, .model = d->model, .fwrev = d->fwrev};

            ret = ahci_attach_disk(m->ahci, sata_port++, m->blk[i], &opts);
        } else {
            VirtioBlkOptions opts = {.num_queues = d->queues,
                                     .serial = d->serial};

            for (int q = 0; q < d->queues; q++) {
                int io = disk_queue_iothread(d, q);

                opts.ctx[q] = io >= 0 ? iothread_get_context(m->iothreads[io])
                                      : NULL; /* the main loop */
            }
            ret = virtio_blk_create(&m->virtio[m->nvirtio], &m->pci,
                                    PCI_DEVFN(slot, 0), &m->ram, &m->msi,
                                    board_irq_line(m, board_pci_gsi(slot)),
                                    m->blk[i], &opts);
            if (ret == 0) {
                if (m->irq.virtio_notify) {
                    virtio_pci_set_notify_hook(
                        virtio_blk_pci(m->virtio[m->nvirtio]),
                        m->irq.virtio_notify, m->irq.opaque);
                }
                m->nvirtio++;
                slot++;
            }
        }
        if (ret < 0) {
            snprintf(err, errlen, "%s: cannot create its device: %s", d->path,
                     strerror(-ret));
            return ret;
        }
    }
    return 0;
}

int machine_create(Machine *m, const MachineConfig *cfg,
                   const MachineIrqOps *irq, char *err, size_t errlen)
{
    int ret;

    memset(m, 0, sizeof(*m));
    m->serial_file_fd = -1; /* machine_destroy() may run before the UART */
    m->cfg = cfg;
    m->created_ns = clock_ns();
    m->irq = *irq;
    m->msi = (MsiSink){.send = irq->send_msi, .opaque = irq->opaque};

    ret = gm_init(&m->ram, cfg->ram_size);
    if (ret < 0) {
        snprintf(err, errlen, "cannot allocate %llu MiB of guest RAM: %s",
                 (unsigned long long)(cfg->ram_size >> 20), strerror(-ret));
        return ret;
    }
    as_init(&m->as, &m->ram);
    pci_host_init(&m->pci, &m->as);
    ret = setup_serial(m, err, errlen);
    if (ret < 0) {
        machine_destroy(m);
        return ret;
    }
    fw_cfg_init(&m->fw_cfg, &m->as, cfg->ram_size, cfg->cpus);
    atomic_store(&m->exit_status, -1);
    exit_ports_init(&m->exit_ports, &m->as, machine_request_exit, m);
    rtc_init(&m->rtc, &m->as);
    if (cfg->acpi) {
        /* What the ACPI tables (firmware/acpi.c) tell the guest is there. */
        ret = acpi_pm_init(&m->acpi_pm, &m->as, machine_request_exit, m);
        if (ret == 0) {
            ret = pci_host_map_ecam(&m->pci, PCI_ECAM_BASE, PCI_ECAM_BUSES);
        }
        if (ret < 0) {
            snprintf(err, errlen, "cannot map the ACPI registers and ECAM: %s",
                     strerror(-ret));
            machine_destroy(m);
            return ret;
        }
    }

    /*
     * Q35's ICH9 LPC bridge, for its place only: Linux scans functions 1-7
     * of a slot only if function 0 exists and says "multi-function".
     */
    pci_device_init(&m->lpc, "lpc", 0x8086, 0x2918, 0x060100, 2);
    pci_set_byte(&m->lpc, PCI_HEADER_TYPE, 0x80);
    pci_set_byte(&m->lpc, PCI_INTERRUPT_PIN, 0);
    pci_host_plug(&m->pci, &m->lpc, PCI_DEVFN(PCI_SLOT_AHCI, 0));

    /* Q35 always has its AHCI controller, with or without disks. */
    ret = ahci_create(&m->ahci, &m->pci, AHCI_DEVFN, &m->ram, &m->msi,
                      board_irq_line(m, board_pci_gsi(PCI_SLOT_AHCI)));
    if (ret < 0) {
        snprintf(err, errlen, "cannot create the AHCI controller: %s",
                 strerror(-ret));
        machine_destroy(m);
        return ret;
    }
    ret = start_iothreads(m, err, errlen);
    if (ret == 0) {
        ret = open_disks(m, err, errlen);
    }
    if (ret == 0) {
        ret = create_disk_devices(m, err, errlen);
    }
    if (ret < 0) {
        machine_destroy(m);
        return ret;
    }
    return 0;
}

void machine_request_exit(void *opaque, int status)
{
    Machine *m = opaque;
    int running = -1;

    if (atomic_compare_exchange_strong(&m->exit_status, &running, status)) {
        main_loop_quit();
    }
}

void machine_quiesce(Machine *m)
{
    /*
     * The devices first. An IOThread may still pop a request the guest
     * kicked before its vCPUs stopped; a drain before that would return
     * while the request was yet to start, and the flush would miss it.
     */
    for (int i = 0; i < m->nvirtio; i++) {
        virtio_blk_quiesce(m->virtio[i]);
    }
    if (m->ahci) {
        ahci_quiesce(m->ahci);
    }
    /*
     * Then every disk, whoever submitted to it: from the main loop's thread
     * blk_drain() also waits for requests completing on IOThreads.
     */
    for (int i = 0; i < MAX_DISKS; i++) {
        if (m->blk[i]) {
            blk_drain(m->blk[i]);
        }
    }
}

static void flush_done(void *opaque, int ret)
{
    *(int *)opaque = ret;
}

int machine_flush(Machine *m)
{
    int failed = 0;

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
            failed = ret;
        }
    }
    return failed;
}

void machine_destroy(Machine *m)
{
    /* Devices first: they drain their requests before the disks close. */
    for (int i = 0; i < m->nvirtio; i++) {
        virtio_blk_destroy(m->virtio[i]);
        m->virtio[i] = NULL;
    }
    m->nvirtio = 0;
    if (m->ahci) {
        ahci_destroy(m->ahci);
        m->ahci = NULL;
    }
    for (int i = 0; i < MAX_DISKS; i++) {
        if (m->blk[i]) {
            blk_close(m->blk[i]);
            m->blk[i] = NULL;
        }
    }
    /* IOThreads go last: devices and disks may still have used them. */
    for (int i = 0; i < MAX_IOTHREADS; i++) {
        iothread_free(m->iothreads[i]);
        m->iothreads[i] = NULL;
    }
    stdin_watch(m, false);
    console_close(&m->console);
    if (m->serial_file_fd >= 0) {
        close(m->serial_file_fd);
        m->serial_file_fd = -1;
    }
    if (m->lpc.host) {
        pci_host_unplug(&m->pci, &m->lpc);
        pci_device_cleanup(&m->lpc);
    }
    pci_host_cleanup(&m->pci);
    as_cleanup(&m->as);
    gm_cleanup(&m->ram);
}

/* One event loop: its ring, its thread's CPU time, what it did. */
static void print_context_stats(FILE *out, const char *name, AioContext *ctx,
                                int64_t cpu_ns, const AioPollParams *poll)
{
    AioContextStats st;
    char flags[64];

    aio_context_get_stats(ctx, &st);
    aio_uring_flags_name(aio_context_uring_flags(ctx), flags, sizeof(flags));
    fprintf(out, "loop %s: %s", name, aio_context_fdmon_name(ctx));
    if (aio_context_has_io_uring(ctx)) {
        fprintf(out, ", flags %s", flags);
    }
    if (poll && poll->max_ns) {
        fprintf(out, ", polling up to %" PRId64 " ns, weight %u", poll->max_ns,
                poll->weight);
    }
    fprintf(out,
            "\n  cpu_s=%.3f iterations=%" PRIu64 " waits=%" PRIu64
            " notify_writes=%" PRIu64 " sqes=%" PRIu64 "\n",
            cpu_ns / 1e9, st.iterations, st.waits, st.notify_writes,
            st.sqes_queued);
    /* How the sleeps ended: by timeout is how the 500 ms stall shows. */
    fprintf(out,
            "  wakes: timeout=%" PRIu64 " notify=%" PRIu64 " io=%" PRIu64 "\n",
            st.wait_timeouts, st.wait_notified, st.wait_io);
    /*
     * The event loop's own system calls, as counted where they are made
     * (ring enters, eventfd reads, ppolls; not the devices' or the block
     * layer's), and the one-shot polls re-armed.
     */
    fprintf(out,
            "  syscalls=%" PRIu64 " uring_enters=%" PRIu64
            " notifier_reads=%" PRIu64 " notifier_wakes=%" PRIu64
            " poll_rearms=%" PRIu64 "\n",
            st.syscalls, st.uring_enters, st.notifier_reads, st.notifier_wakes,
            st.poll_rearms);
    if (poll && poll->max_ns) {
        fprintf(out, "  poll_s=%.3f poll_successes=%" PRIu64 "\n",
                st.poll_time_ns / 1e9, st.poll_successes);
    }
}

void machine_print_stats(Machine *m, FILE *out)
{
    /* Called on the main loop's thread. */
    fprintf(out, "minivmm: wall_s=%.3f\n", (clock_ns() - m->created_ns) / 1e9);
    print_context_stats(out, "main", main_loop_context(), thread_cpu_ns(),
                        NULL);
    for (int i = 0; i < m->cfg->iothreads; i++) {
        AioContext *ctx = iothread_get_context(m->iothreads[i]);

        print_context_stats(out, aio_context_name(ctx), ctx,
                            iothread_cpu_ns(m->iothreads[i]),
                            &m->cfg->iothread_poll);
    }
    for (int i = 0; i < MAX_DISKS; i++) {
        if (m->blk[i]) {
            blk_stats_print(m->blk[i], out);
        }
    }
}
