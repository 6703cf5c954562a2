/*
 * One virtio-blk disk's queues spread over IOThreads (--disk
 * virtio:...,iothreads=A+B+...). The mapping is parsed by vmm/options.c and
 * read back with disk_queue_iothread(), the function the board uses; the
 * device then runs on vblk-machine.c's two IOThreads with that mapping.
 *
 * That each queue is served and completed on its own thread is read from a
 * trace (util/trace.h): every request carries one id from virtq_pop() to
 * virtio_done, and every record names the thread that emitted it. So the
 * kick handler (virtq_pop), the block layer's submission (blk_submit, with
 * the context it was queued in), the io_uring completion (cqe_dispatch) and
 * the used ring update (virtio_done) must all be on the queue's IOThread,
 * with aio=io_uring and with aio=threads, whose workers hand the result back
 * through a BH. A reset must drain both IOThreads; two queues on two
 * IOThreads under load are the case for ThreadSanitizer.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/virtio_blk.h>

#include "tests/unit/suites.h"
#include "tests/unit/vblk-machine.h"
#include "util/trace.h"
#include "vmm/config.h"

#define NQ_MAX      VIRTIO_BLK_MAX_QUEUES
#define PER_QUEUE   12
#define CHUNK       4096
#define MAX_THREADS 32

static const char *const engines[] = {"aio=io_uring", "aio=threads"};

/* ---- The option ------------------------------------------------------------
 */

/* Parse "--iothreads 2 --disk virtio:null://1M,@opts" under qtest. */
static int parse_virtio(const char *opts, MachineConfig *cfg)
{
    char disk[128];
    char *argv[] = {"minivmm",     "--accel", "qtest",  "--qtest", "unix:/x",
                    "--iothreads", "2",       "--disk", disk,      NULL};

    snprintf(disk, sizeof(disk), "virtio:null://1M,%s", opts);
    return config_parse(cfg, 9, argv);
}

START_TEST(test_mapping_parsed)
{
    static const struct {
        const char *opts;
        int queues;
        int owner[4]; /* IOThread per queue; -1: the main loop */
    } ok[] = {
        {"queues=2", 2, {-1, -1}},
        {"iothread=1,queues=3", 3, {1, 1, 1}},
        /* queues= follows the list when not given. */
        {"iothreads=0+1", 2, {0, 1}},
        {"iothreads=0+1,queues=4", 4, {0, 1, 0, 1}},
        {"queues=3,iothreads=1+0", 3, {1, 0, 1}},
        /* An explicit map is a list as long as the queues. */
        {"iothreads=1+1+0,queues=3", 3, {1, 1, 0}},
        {"iothreads=1,queues=2", 2, {1, 1}},
    };

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        MachineConfig cfg;

        ck_assert_msg(parse_virtio(ok[i].opts, &cfg) == 0, "%s", ok[i].opts);
        ck_assert_int_eq(cfg.ndisks, 1);
        ck_assert_int_eq(cfg.disks[0].queues, ok[i].queues);
        for (int q = 0; q < ok[i].queues; q++) {
            ck_assert_msg(disk_queue_iothread(&cfg.disks[0], q) ==
                              ok[i].owner[q],
                          "%s: queue %d", ok[i].opts, q);
        }
        config_free(&cfg);
    }
}
END_TEST

/* Each mistake is one error and no machine (the message: test-cli.c). */
START_TEST(test_mapping_errors)
{
    static const char *const bad[] = {
        "iothreads=0+1,iothread=0", /* two ways to place them */
        "iothread=0,iothreads=0",
        "iothreads=0+1,queues=1", /* an entry with no queue */
        "iothreads=0+2",          /* only 2 IOThreads */
        "iothreads=0+1,iothreads=1",
        "iothreads=",
        "iothreads=0++1",
        "iothreads=+0",
        "iothreads=0+",
        "iothreads=0+x",
        "iothreads=-1",
        "iothreads=0+1+0+1+0+1+0+1+0", /* more than MAX_VIRTIO_QUEUES */
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        MachineConfig cfg;

        ck_assert_msg(parse_virtio(bad[i], &cfg) < 0, "%s accepted", bad[i]);
        config_free(&cfg);
    }
}
END_TEST

/* ---- Which thread did what: the trace ------------------------------------ */

typedef struct Seen {
    int nthreads;
    struct {
        long tid;
        char name[32];
    } thread[MAX_THREADS];
    /* Per queue: requests popped, and records on a thread not its own. */
    int popped[NQ_MAX];
    int cqes;
    int wrong;
    char why[256];
} Seen;

/* The number after "@key": in @line, or -1. */
static long num_field(const char *line, const char *key)
{
    char pat[48];
    const char *at;

    snprintf(pat, sizeof(pat), "\"%s\":", key);
    at = strstr(line, pat);
    return at ? strtol(at + strlen(pat), NULL, 10) : -1;
}

/* The string after "@key": copied into @out, or "". */
static void str_field(const char *line, const char *key, char *out, size_t n)
{
    char pat[48];
    const char *at;
    size_t len = 0;

    snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    at = strstr(line, pat);
    if (at) {
        at += strlen(pat);
        while (at[len] && at[len] != '"' && len + 1 < n) {
            len++;
        }
        memcpy(out, at, len);
    }
    out[len] = '\0';
}

static const char *thread_name(const Seen *seen, long tid)
{
    for (int i = 0; i < seen->nthreads; i++) {
        if (seen->thread[i].tid == tid) {
            return seen->thread[i].name;
        }
    }
    return "?";
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf;
    long len;

    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    rewind(f);
    buf = malloc(len + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(fread(buf, 1, len, f), len);
    buf[len] = '\0';
    fclose(f);
    return buf;
}

/* The queue each request id was popped from; ids are small and dense. */
#define MAX_IDS 4096
static int queue_of[MAX_IDS];

/*
 * Read the trace at @path. The thread names come first in the file; then
 * each request's virtq_pop names its queue before the later steps, as
 * each thread's records are in time order and a request's first step
 * happens on the thread that pops it.
 */
static void read_trace(const char *path, const char *const *owner_name,
                       Seen *seen)
{
    static const char *const steps[] = {"virtq_pop", "blk_submit",
                                        "cqe_dispatch", "virtio_done"};
    char *doc = slurp(path), *save = NULL, *line;

    memset(seen, 0, sizeof(*seen));
    memset(queue_of, 0xff, sizeof(queue_of));
    for (line = strtok_r(doc, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (strstr(line, "\"name\":\"thread_name\"")) {
            ck_assert_int_lt(seen->nthreads, MAX_THREADS);
            seen->thread[seen->nthreads].tid = num_field(line, "tid");
            str_field(strstr(line, "\"args\""), "name",
                      seen->thread[seen->nthreads].name,
                      sizeof(seen->thread[0].name));
            seen->nthreads++;
        }
    }
    free(doc);

    /* Pops first: a request's later steps may sit earlier in the file. */
    for (int pass = 0; pass < 2; pass++) {
        doc = slurp(path);
        save = NULL;
        for (line = strtok_r(doc, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
            long req = num_field(line, "req"), tid = num_field(line, "tid");
            char ctx[32];
            int q;

            if (req <= 0 || req >= MAX_IDS || !strstr(line, "\"ph\":\"X\"")) {
                continue;
            }
            if (pass == 0) {
                if (strstr(line, "\"name\":\"virtq_pop\"")) {
                    q = (int)num_field(line, "queue");
                    ck_assert(q >= 0 && q < NQ_MAX);
                    queue_of[req] = q;
                    seen->popped[q]++;
                }
                continue;
            }
            q = queue_of[req];
            if (q < 0) {
                continue; /* not a virtio request (none here) */
            }
            for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
                char pat[48];

                snprintf(pat, sizeof(pat), "\"name\":\"%s\"", steps[s]);
                if (!strstr(line, pat)) {
                    continue;
                }
                seen->cqes += s == 2;
                ctx[0] = '\0';
                if (s == 1) {
                    str_field(line, "ctx", ctx, sizeof(ctx));
                }
                if (strcmp(thread_name(seen, tid), owner_name[q]) ||
                    (s == 1 && strcmp(ctx, owner_name[q]))) {
                    if (!seen->wrong++) {
                        snprintf(seen->why, sizeof(seen->why),
                                 "queue %d (of %s): %s on %s, ctx '%s'", q,
                                 owner_name[q], steps[s],
                                 thread_name(seen, tid), ctx);
                    }
                }
            }
        }
        free(doc);
    }
}

/* ---- Each queue on its thread -------------------------------------------- */

/*
 * Reads and writes on every queue at once, each queue's batch made
 * available before any is kicked, so that both IOThreads are busy together.
 */
static void run_batches(QVirtioBlk *b, int nq, uint64_t buf, int rounds)
{
    static QVirtioBlkReq r[NQ_MAX][PER_QUEUE];

    for (int round = 0; round < rounds; round++) {
        for (int q = 0; q < nq; q++) {
            for (int k = 0; k < PER_QUEUE; k++) {
                int n = q * PER_QUEUE + k;
                uint64_t data = buf + (uint64_t)n * CHUNK;
                bool write = (k + round) % 3 == 0;

                if (write) {
                    vm_fill(data, CHUNK, (uint8_t)(n + round));
                }
                r[q][k] = (QVirtioBlkReq){.type = write ? VIRTIO_BLK_T_OUT
                                                        : VIRTIO_BLK_T_IN,
                                          .sector = (uint64_t)n * (CHUNK / 512),
                                          .data = data,
                                          .len = CHUNK};
                qvirtio_blk_submit(b, q, &r[q][k]);
            }
        }
        for (int q = 0; q < nq; q++) {
            qvirtio_blk_kick(b, q);
        }
        for (int q = 0; q < nq; q++) {
            for (int k = 0; k < PER_QUEUE; k++) {
                ck_assert(qvirtio_blk_wait(b, q, &r[q][k], VM_TIMEOUT_MS));
                ck_assert_uint_eq(r[q][k].status, VIRTIO_BLK_S_OK);
            }
        }
    }
}

/* The data survived the trip: each block holds its last write, or the image. */
static void check_blocks(QVirtioBlk *b, int nq, uint64_t buf, int rounds)
{
    for (int q = 0; q < nq; q++) {
        for (int k = 0; k < PER_QUEUE; k++) {
            int n = q * PER_QUEUE + k, last = -1;
            uint64_t data = buf + (uint64_t)n * CHUNK;

            for (int round = 0; round < rounds; round++) {
                last = (k + round) % 3 == 0 ? round : last;
            }
            ck_assert_int_eq(qvirtio_blk_rw(b, (q + 1) % nq, VIRTIO_BLK_T_IN,
                                            (uint64_t)n * (CHUNK / 512), data,
                                            CHUNK),
                             VIRTIO_BLK_S_OK);
            if (last < 0) {
                ck_assert(
                    vm_check_pattern(0, data, (uint64_t)n * CHUNK, CHUNK));
            } else {
                uint64_t want = vm_alloc(CHUNK);

                vm_fill(want, CHUNK, (uint8_t)(n + last));
                ck_assert(!memcmp(gm_ptr(&vm.ram, data, CHUNK),
                                  gm_ptr(&vm.ram, want, CHUNK), CHUNK));
            }
        }
    }
}

/*
 * The mapping comes from the command line through disk_queue_iothread(),
 * as the board takes it: "iothreads=1+0,queues=3" puts queues 0 and 2 on
 * IOThread 1 and queue 1 on IOThread 0.
 */
START_TEST(test_queue_runs_on_its_iothread)
{
    static const char *const io_name[2] = {"vblk-io0", "vblk-io1"};
    const char *engine = engines[_i];
    const char *owner_name[NQ_MAX];
    char path[64], spec[96], err[256];
    MachineConfig cfg;
    VmOptions o = {.owners_set = true, .blk_options = engine};
    QVirtioBlk b;
    bool msi_home[NQ_MAX], ring;
    Seen seen;
    uint64_t buf;
    int nq, fd;

    ck_assert_int_eq(parse_virtio("iothreads=1+0,queues=3", &cfg), 0);
    nq = cfg.disks[0].queues;
    ck_assert_int_eq(nq, 3);
    o.num_queues = nq;
    for (int q = 0; q < nq; q++) {
        int io = disk_queue_iothread(&cfg.disks[0], q);

        ck_assert(io == 0 || io == 1);
        o.owner[q] = ON_IO0 + io;
        owner_name[q] = io_name[io];
    }
    config_free(&cfg);

    snprintf(path, sizeof(path), "/tmp/minivmm-vqmap-XXXXXX");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    snprintf(spec, sizeof(spec), "%s,size=65536", path);
    ck_assert_int_eq(trace_start(spec, err, sizeof(err)), 0);

    vm_start(&o);
    vm_driver(&b, 0,
              &(QVirtioBlkOptions){.num_queues = nq,
                                   .msix = true,
                                   .features = 1ull << VIRTIO_BLK_F_MQ});
    buf = vm_alloc((uint64_t)nq * PER_QUEUE * CHUNK);
    run_batches(&b, nq, buf, 4);
    for (int q = 0; q < nq; q++) {
        /* The interrupt too: vblk-machine records who sent each vector. */
        msi_home[q] = pthread_equal(atomic_load(&vm.msi[0].thread[q + 1]),
                                    vm_owner_thread(o.owner[q]));
    }
    check_blocks(&b, nq, buf, 4);
    /* Where io_uring is missing the IOThreads poll, and the pool serves. */
    ring = aio_context_has_io_uring(iothread_get_context(vm.io[0]));
    vm_stop(); /* the threads stop: the trace may be written */
    ck_assert_int_eq(trace_finish(), 0);

    read_trace(path, owner_name, &seen);
    unlink(path);
    for (int q = 0; q < nq; q++) {
        /* 4 rounds, then the check's reads of the previous queue's blocks. */
        ck_assert_int_eq(seen.popped[q], 5 * PER_QUEUE);
    }
    ck_assert_msg(seen.wrong == 0, "%d records off their thread; first: %s",
                  seen.wrong, seen.why);
    if (!strcmp(engine, "aio=io_uring") && ring) {
        ck_assert_int_eq(seen.cqes, nq * 5 * PER_QUEUE);
    } else {
        ck_assert_int_eq(seen.cqes, 0); /* the pool, not a ring */
    }
    for (int q = 0; q < nq; q++) {
        ck_assert_msg(msi_home[q], "queue %d interrupted from elsewhere", q);
    }
}
END_TEST

/*
 * Two queues on two IOThreads against one image, the engines sharing their
 * per-backend state (in-flight count, per-context list, the thread pool)
 * between the two threads: the case for ThreadSanitizer (make check
 * TSAN=1). Each round writes and reads on both queues at once; a flush on
 * each queue covers both; the data and the counters must add up.
 */
START_TEST(test_two_iothreads_stress)
{
    enum { ROUNDS = 40 };
    const char *engine = engines[_i];
    VmOptions o = {.num_queues = 2,
                   .owners_set = true,
                   .owner = {ON_IO0, ON_IO1},
                   .blk_options = engine};
    QVirtioBlk b;
    BlockStats st;
    uint64_t buf;

    vm_start(&o);
    vm_driver(&b, 0,
              &(QVirtioBlkOptions){.num_queues = 2,
                                   .msix = true,
                                   .features = 1ull << VIRTIO_BLK_F_MQ |
                                               1ull << VIRTIO_BLK_F_FLUSH});
    buf = vm_alloc(2 * PER_QUEUE * CHUNK);
    run_batches(&b, 2, buf, ROUNDS);
    for (int q = 0; q < 2; q++) {
        QVirtioBlkReq f = {.type = VIRTIO_BLK_T_FLUSH};

        ck_assert_int_eq(qvirtio_blk_request(&b, q, &f), VIRTIO_BLK_S_OK);
    }
    check_blocks(&b, 2, buf, ROUNDS);
    blk_get_stats(vm.blk[0], &st);
    ck_assert_uint_eq(st.op[BLOCK_OP_READ].ops + st.op[BLOCK_OP_WRITE].ops,
                      (ROUNDS + 1) * 2 * PER_QUEUE);
    ck_assert_uint_eq(st.op[BLOCK_OP_FLUSH].ops, 2);
    ck_assert_uint_eq(st.in_flight, 0);
    vm_stop();
}
END_TEST

static bool all_in_flight(void *opaque)
{
    return blk_in_flight(vm.blk[0]) >= *(unsigned *)opaque;
}

/*
 * A virtio reset with requests of both queues held in the block layer
 * (an injected delay, so the guest cannot finish them first): the status
 * write returns only when each IOThread has run its queue's requests to
 * the end, the engine's completion path included.
 */
START_TEST(test_reset_drains_both_iothreads)
{
    enum { PER = 6 };
    static QVirtioBlkReq r[2][PER];
    const char *engine = engines[_i];
    VmOptions o = {.num_queues = 2,
                   .owners_set = true,
                   .owner = {ON_IO1, ON_IO0},
                   .blk_options = engine};
    QVirtioBlkOptions d = {
        .num_queues = 2, .msix = true, .features = 1ull << VIRTIO_BLK_F_MQ};
    unsigned want = 2 * PER;
    QVirtioBlk b;
    uint64_t buf;

    vm_start(&o);
    vm_driver(&b, 0, &d);
    buf = vm_alloc(2 * PER * CHUNK);
    blk_inject_delay_us(vm.blk[0], 200000);
    for (int q = 0; q < 2; q++) {
        for (int k = 0; k < PER; k++) {
            r[q][k] = (QVirtioBlkReq){.type = VIRTIO_BLK_T_IN,
                                      .sector = (q * PER + k) * 8,
                                      .data = buf + (q * PER + k) * CHUNK,
                                      .len = CHUNK};
            qvirtio_blk_submit(&b, q, &r[q][k]);
        }
        qvirtio_blk_kick(&b, q);
    }
    ck_assert(qos_wait(all_in_flight, &want, VM_TIMEOUT_MS));
    ck_assert(qvirtio_reset(&b.dev));
    ck_assert_uint_eq(blk_in_flight(vm.blk[0]), 0);
    for (int q = 0; q < 2; q++) {
        ck_assert_uint_eq(qvirtqueue_used_idx(&b.vq[q]), PER);
    }
    blk_inject_delay_us(vm.blk[0], 0);
    vm_driver(&b, 0, &d);
    for (int q = 0; q < 2; q++) {
        ck_assert_int_eq(
            qvirtio_blk_rw(&b, q, VIRTIO_BLK_T_IN, 100 + q, buf, CHUNK), 0);
        ck_assert(vm_check_pattern(0, buf, (100 + q) * 512, CHUNK));
    }
    vm_stop();
}
END_TEST

Suite *vq_mapping_suite(void)
{
    Suite *s = suite_create("vq-mapping");
    TCase *tc = tcase_create("option");

    tcase_add_test(tc, test_mapping_parsed);
    tcase_add_test(tc, test_mapping_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("threads");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_queue_runs_on_its_iothread, 0, 2);
    tcase_add_loop_test(tc, test_two_iothreads_stress, 0, 2);
    tcase_add_loop_test(tc, test_reset_drains_both_iothreads, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}
