/*
 * The end of a run (vmm/board.h): quiesce the devices, drain the disks,
 * then flush. A write still in flight when the machine is told to quit
 * must complete first, and the flush must come after it: a flush covers
 * only the writes completed before it was issued.
 */
#include <check.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aio/iothread.h"
#include "aio/main-loop.h"
#include "block/block.h"
#include "tests/unit/suites.h"
#include "vmm/board.h"
#include "vmm/config.h"

#define IMG_SIZE (1u << 20)
#define WRITE_AT 65536
#define HOLD_US  100000 /* how long the write stays in flight */
#define PATTERN  0x5a

/* One write, submitted as virtio-blk submits a request an IOThread popped. */
typedef struct InFlightWrite {
    BlockBackend *blk;
    BlockRequest req;
    struct iovec iov;
    char buf[4096];
    atomic_bool done;
    int ret;
    uint64_t syncs_at_done; /* flushes issued before it completed */
} InFlightWrite;

static void write_done(void *opaque, int ret)
{
    InFlightWrite *w = opaque;
    BlockStats st;

    blk_get_stats(w->blk, &st);
    w->syncs_at_done = st.syncs;
    w->ret = ret;
    atomic_store(&w->done, true);
}

static void submit_write(void *opaque)
{
    InFlightWrite *w = opaque;

    ck_assert_int_eq(blk_submit(w->blk, &w->req), 0);
}

static void no_irq(void *opaque, int gsi, int level)
{
    (void)opaque, (void)gsi, (void)level;
}

static void no_msi(void *opaque, uint64_t addr, uint32_t data)
{
    (void)opaque, (void)addr, (void)data;
}

static uint64_t syncs_of(BlockBackend *blk)
{
    BlockStats st;

    blk_get_stats(blk, &st);
    return st.syncs;
}

START_TEST(test_write_in_flight_at_exit_completes_then_flushed)
{
    char path[] = "/tmp/minivmm-exit-XXXXXX";
    char disk[64], err[512], back[4096];
    MachineIrqOps irq = {.set_level = no_irq, .send_msi = no_msi};
    MainLoopOptions ml_opts = {0};
    static InFlightWrite w;
    MachineConfig cfg;
    Machine m;
    uint64_t syncs;
    int fd = mkstemp(path);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, IMG_SIZE), 0);
    snprintf(disk, sizeof(disk), "virtio:%s,iothread=0", path);
    char *argv[] = {
        "minivmm",     "--accel", "qtest",  "--qtest", "unix:/nonexistent",
        "--iothreads", "1",       "--disk", disk,      "--serial",
        "none",        NULL};
    ck_assert_int_eq(config_parse(&cfg, 11, argv), 0);
    ck_assert_int_eq(main_loop_init(&ml_opts), 0);
    ck_assert_msg(machine_create(&m, &cfg, &irq, err, sizeof(err)) == 0, "%s",
                  err);

    /* The guest's write, held in the block layer when the run ends. */
    w.blk = m.blk[0];
    memset(w.buf, PATTERN, sizeof(w.buf));
    w.iov = (struct iovec){.iov_base = w.buf, .iov_len = sizeof(w.buf)};
    w.req = (BlockRequest){.op = BLOCK_OP_WRITE,
                           .offset = WRITE_AT,
                           .iov = &w.iov,
                           .iovcnt = 1,
                           .cb = write_done,
                           .opaque = &w};
    blk_inject_delay_us(w.blk, HOLD_US);
    aio_run_in_context(iothread_get_context(m.iothreads[0]), submit_write, &w);
    blk_inject_delay_us(w.blk, 0); /* a flush would run at once */
    ck_assert(!atomic_load(&w.done));
    syncs = syncs_of(w.blk);

    /* What machine_finish() does, step by step. */
    machine_quiesce(&m);
    ck_assert(atomic_load(&w.done));
    ck_assert_int_eq(w.ret, 0);
    ck_assert_uint_eq(w.syncs_at_done, syncs); /* no flush before it */
    ck_assert_int_eq(machine_flush(&m), 0);
    ck_assert_uint_eq(syncs_of(w.blk), syncs + 1);
    machine_destroy(&m);
    main_loop_cleanup();
    config_free(&cfg);

    ck_assert_int_eq(pread(fd, back, sizeof(back), WRITE_AT), sizeof(back));
    for (size_t i = 0; i < sizeof(back); i++) {
        ck_assert_int_eq((unsigned char)back[i], PATTERN);
    }
    close(fd);
    unlink(path);
}
END_TEST

Suite *exit_suite(void)
{
    Suite *s = suite_create("exit");
    TCase *tc = tcase_create("order");

    tcase_add_test(tc, test_write_in_flight_at_exit_completes_then_flushed);
    suite_add_tcase(s, tc);
    return s;
}
