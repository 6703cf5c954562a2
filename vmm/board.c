#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "aio/main-loop.h"
#include "vmm/board.h"

static void board_irq_set(void *opaque, int gsi, int level)
{
    Machine *m = opaque;

    m->irq.set_level(m->irq.opaque, gsi, level);
}

static IrqLine board_irq_line(Machine *m, int gsi)
{
    return (IrqLine){.set_level = board_irq_set, .opaque = m, .gsi = gsi};
}

static int start_iothreads(Machine *m, char *err, size_t errlen)
{
    for (int i = 0; i < m->cfg->iothreads; i++) {
        AioContextOptions opts = {.fdmon = m->cfg->fdmon,
                                  .poll = m->cfg->iothread_poll};
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

int machine_create(Machine *m, const MachineConfig *cfg,
                   const MachineIrqOps *irq, char *err, size_t errlen)
{
    int ret;

    memset(m, 0, sizeof(*m));
    m->cfg = cfg;
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
    serial_init(&m->serial, &m->as, SERIAL_COM1_PORT,
                board_irq_line(m, SERIAL_COM1_IRQ), STDOUT_FILENO);
    fw_cfg_init(&m->fw_cfg, &m->as, cfg->ram_size, cfg->cpus);

    ret = start_iothreads(m, err, errlen);
    if (ret == 0) {
        ret = open_disks(m, err, errlen);
    }
    if (ret < 0) {
        machine_destroy(m);
        return ret;
    }
    return 0;
}

void machine_destroy(Machine *m)
{
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
    pci_host_cleanup(&m->pci);
    as_cleanup(&m->as);
    gm_cleanup(&m->ram);
}

void machine_print_stats(Machine *m, FILE *out)
{
    for (int i = 0; i < MAX_DISKS; i++) {
        if (m->blk[i]) {
            blk_stats_print(m->blk[i], out);
        }
    }
}
