/*
 * The in-process machine of the AHCI tests (see ahci-machine.h).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aio/main-loop.h"
#include "tests/qos/qos-local.h"
#include "tests/unit/ahci-machine.h"
#include "util/clock.h"

AhciMachine am;

uint64_t am_pattern(int disk, uint64_t offset)
{
    uint64_t x = (offset / 8 + 1) * 0x9e3779b97f4a7c15ULL;

    return x ^ (x >> 29) ^ ((uint64_t)(disk + 1) << 56);
}

static void probe_set_level(void *opaque, int gsi, int level)
{
    IrqProbe *p = opaque;

    (void)gsi;
    if (level && !atomic_exchange(&p->level, 1)) {
        atomic_fetch_add(&p->raises, 1);
    } else if (!level) {
        atomic_store(&p->level, 0);
    }
}

static void probe_msi(void *opaque, uint64_t addr, uint32_t data)
{
    MsiProbe *p = opaque;

    atomic_store(&p->addr, addr);
    atomic_store(&p->data, data);
    atomic_fetch_add(&p->count, 1);
}

int am_add_disk(void)
{
    return am_add_disk_opts("", "aio=io_uring");
}

int am_add_disk_opts(const char *scheme, const char *options)
{
    const char *dir = getenv("MINIVMM_TEST_DIR");
    int i = am.ndisks++;
    char path[256], spec[300], err[256];
    uint64_t *buf = malloc(AM_DISK_SIZE);

    ck_assert_int_lt(i, AM_MAX_DISKS);
    snprintf(path, sizeof(path), "%s/minivmm-test-ahci-XXXXXX",
             dir && *dir ? dir : "/var/tmp");
    am.img_fd[i] = mkstemp(path);
    ck_assert_msg(am.img_fd[i] >= 0, "mkstemp %s: %s", path, strerror(errno));
    for (uint64_t off = 0; off < AM_DISK_SIZE; off += 8) {
        buf[off / 8] = am_pattern(i, off);
    }
    ck_assert_int_eq(pwrite(am.img_fd[i], buf, AM_DISK_SIZE, 0), AM_DISK_SIZE);
    free(buf);
    snprintf(spec, sizeof(spec), "%s%s", scheme, path);
    ck_assert_msg(
        blk_open_string(spec, options, &am.blk[i], err, sizeof(err)) == 0, "%s",
        err);
    unlink(path);
    return i;
}

void am_create_ahci(int i, uint8_t devfn)
{
    am.msi_sink[i] = (MsiSink){.send = probe_msi, .opaque = &am.msi[i]};
    ck_assert_int_eq(ahci_create(&am.ahci[i], &am.host, devfn, &am.ram,
                                 &am.msi_sink[i],
                                 (IrqLine){.set_level = probe_set_level,
                                           .opaque = &am.intx[i],
                                           .gsi = 16 + i}),
                     0);
}

void am_setup(void)
{
    am_setup_disk("", "aio=io_uring");
}

void am_setup_disk(const char *scheme, const char *options)
{
    memset(&am, 0, sizeof(am));
    ck_assert_int_eq(gm_init(&am.ram, AM_RAM_SIZE), 0);
    as_init(&am.as, &am.ram);
    pci_host_init(&am.host, &am.as);
    am_add_disk_opts(scheme, options);
    main_loop_thread_start(&am.loop,
                           &(MainLoopOptions){.fdmon = AIO_FDMON_IO_URING});
    bql_lock();
    am_create_ahci(0, AM_DEVFN);
    ck_assert_int_eq(ahci_attach_disk(am.ahci[0], 0, am.blk[0], NULL), 0);
    bql_unlock();
    qos_local_init(&am.q, &am.as);
    ck_assert(qahci_init(&am.a, &am.q, 0));
}

void am_teardown(void)
{
    bql_lock();
    ahci_destroy(am.ahci[0]);
    ahci_destroy(am.ahci[1]);
    for (int i = 0; i < am.ndisks; i++) {
        blk_close(am.blk[i]);
        close(am.img_fd[i]);
    }
    bql_unlock();
    main_loop_thread_stop(&am.loop);
    pci_host_cleanup(&am.host);
    as_cleanup(&am.as);
    gm_cleanup(&am.ram);
}

void am_check_pattern(int disk, uint64_t offset, uint64_t gpa, uint64_t bytes)
{
    for (uint64_t i = 0; i < bytes; i += 8) {
        uint64_t v;

        memcpy(&v, am_ram(gpa + i), 8);
        ck_assert_msg(v == am_pattern(disk, offset + i),
                      "disk %d offset %llu: 0x%llx, want 0x%llx", disk,
                      (unsigned long long)(offset + i), (unsigned long long)v,
                      (unsigned long long)am_pattern(disk, offset + i));
    }
}

void am_start_port(QAhci *a, int port)
{
    ck_assert_msg(qahci_port_start(a, port), "port %d did not start", port);
}

static int saved_stderr = -1;
static FILE *captured;

void am_stderr_begin(void)
{
    fflush(stderr);
    captured = tmpfile();
    ck_assert_ptr_nonnull(captured);
    saved_stderr = dup(2);
    dup2(fileno(captured), 2);
}

int am_stderr_end(void)
{
    char line[512];
    int n = 0;

    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    rewind(captured);
    while (fgets(line, sizeof(line), captured)) {
        fputs(line, stderr); /* keep the lines visible */
        n += strstr(line, "guest error") != NULL;
    }
    fclose(captured);
    return n;
}

/* Wait for @slots to leave PxCI/PxSACT, leaving PxIS alone. */
void am_wait_idle(QAhci *a, int port, uint32_t slots)
{
    int64_t deadline = clock_ns() + 10 * NS_PER_S;

    while ((qahci_px_rreg(a, port, QAHCI_PX_CI) |
            qahci_px_rreg(a, port, QAHCI_PX_SACT)) &
           slots) {
        ck_assert_msg(clock_ns() < deadline, "slots 0x%x never completed",
                      slots);
        usleep(50);
    }
}
