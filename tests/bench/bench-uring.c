/*
 * bench-uring: io_uring setup flags and adaptive polling policies, measured
 * on the virtio-blk data path of one IOThread.
 *
 * The bench thread is the guest: through the in-process qos transport (no
 * qtest socket, so no protocol in the way) it drives a virtio-blk disk with
 * 4 KiB random reads at QD1 and QD64, spinning on the used ring for
 * completions (MSIs land in guest RAM and nobody waits for them). The disk's
 * queue runs on one IOThread, or, in the main-loop rows, on the main loop:
 * it never polls, and the guest thread takes the big lock for each register
 * access, as a vCPU thread does. By default the guest thread and the IOThread
 * are pinned to different CPUs ("apart"): left to the scheduler, the two
 * share a CPU now and then and the numbers measure that instead. "same" puts
 * both on CPU 0 (the guest then yields when it has nothing to do, as a
 * halted vCPU would): no cross-CPU wake-up, which on a VM costs tens of us.
 *
 * Every run builds a fresh IOThread (the flags are fixed at ring setup) and
 * device, warms up briefly, then counts completed reads for the run time.
 * The IOThread's CPU time is read on the IOThread itself
 * (CLOCK_THREAD_CPUTIME_ID, through aio_run_in_context()) at the start and
 * end; wall time is the guest's clock_ns() over the same span.
 *
 * One run says little: whether adaptive polling catches completions or pays
 * a wake-up for each is decided early in a run and sticks, so neighbouring
 * runs of one configuration differ by 2x and more. Each configuration
 * therefore runs several rounds, interleaved (round-robin, so a slow spell
 * of the machine hits every configuration alike); the tables give medians,
 * the IOPS spread (max - min, in % of the median) and ratios of medians.
 *
 * Environment:
 *   BENCH_URING_ROUNDS    rounds per configuration (default 5)
 *   BENCH_URING_SECONDS   seconds per run (default 1; BENCH_URING_SECS,
 *                         the older name, still works)
 *   BENCH_URING_PLACEMENT apart (default: guest on CPU 0, IOThread on 1)
 *                         or same (both on CPU 0)
 *   BENCH_URING_WEIGHT    poll weight of the "weighted" rows (default: the
 *                         IOThread default, or 3 where that is grow/shrink)
 *   BENCH_URING_WEIGHTS   weights to sweep, e.g. 1,2,3,4,6,8 (default: that
 *                         one weight): weighted polling on the file, QD1 and
 *                         QD64, no flags and the default flags
 *   BENCH_URING_TARGET    null or file: run only that target (the summary
 *                         line then needs the null one)
 *   BENCH_URING_MODE      syscalls: instead of the above, system calls per
 *                         I/O before and after each event loop switch
 *                         (bench-uring-syscalls.c; make bench-uring-syscalls)
 *   BENCH_URING_MULTISHOT, BENCH_URING_NOTIFIER_READ,
 *   BENCH_URING_NOTIFY_AFTER_POLL
 *                         on or off (default on): the event-loop switches
 *                         --uring-multishot, --uring-notifier-read and
 *                         --aio-notify-after-poll, for every configuration
 *   BENCH_URING_VERBOSE   print each loop thread's counters with its tid,
 *                         to compare with strace -f
 *   MINIVMM_BENCH_DIR     where the image lives (default /var/tmp)
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/virtio_blk.h>

#include "aio/iothread.h"
#include "aio/main-loop.h"
#include "block/block.h"
#include "devices/address-space.h"
#include "devices/pci.h"
#include "devices/virtio-blk.h"
#include "tests/bench/bench-uring-stats.h"
#include "tests/bench/bench-uring-syscalls.h"
#include "tests/qos/qos-local.h"
#include "tests/qos/virtio-blk.h"
#include "util/clock.h"

#define RAM_SIZE  (64u << 20)
#define IMG_SIZE  (256ull << 20)
#define IO_SIZE   4096
#define GUEST_CPU 0
#define WARMUP_NS (100 * NS_PER_MS)

typedef struct Machine {
    GuestMemory ram;
    AddressSpace as;
    PciHost host;
    pthread_t main_thread;
    volatile int main_ready;
    Qos q;
} Machine;

static Machine m;
static unsigned main_flags; /* the main loop's io_uring setup flags */

static int iothread_cpu = 1; /* GUEST_CPU with BENCH_URING_PLACEMENT=same */

static void pin_self(int cpu)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void pin_iothread(void *opaque)
{
    (void)opaque;
    pin_self(iothread_cpu);
}

/* What the IOThread has spent: CPU time in all, and busy-polling. */
typedef struct Spent {
    int64_t cpu_ns;
    int64_t sys_ns; /* of that, in the kernel (tick-sampled) */
    int64_t poll_ns;
    AioContextStats st; /* the loop's counters, system calls among them */
} Spent;

/* Runs on the IOThread: its CPU clock is only readable there. */
static void read_spent(void *opaque)
{
    Spent *s = opaque;
    AioContextStats st;
    struct rusage ru;

    aio_context_get_stats(aio_current_context(), &st);
    getrusage(RUSAGE_THREAD, &ru);
    s->sys_ns = (int64_t)ru.ru_stime.tv_sec * NS_PER_S +
                (int64_t)ru.ru_stime.tv_usec * 1000;
    s->cpu_ns = thread_cpu_ns();
    s->poll_ns = (int64_t)st.poll_time_ns;
    s->st = st;
    if (getenv("BENCH_URING_VERBOSE")) {
        fprintf(stderr,
                "bench-uring: tid %ld: enters %llu, eventfd reads %llu, "
                "eventfd writes %llu, iterations %llu, waits %llu (io %llu, "
                "notify %llu), polls that found work %llu, poll_ns idle "
                "%lld io %lld\n",
                (long)gettid(), (unsigned long long)st.uring_enters,
                (unsigned long long)st.notifier_reads,
                (unsigned long long)st.notify_writes,
                (unsigned long long)st.iterations, (unsigned long long)st.waits,
                (unsigned long long)st.wait_io,
                (unsigned long long)st.wait_notified,
                (unsigned long long)st.poll_successes, (long long)st.poll_ns,
                (long long)st.poll_io_ns);
    }
}

/* MSIs are DMA writes; the guest does not wait for them, it polls. */
static void msi_land(void *opaque, uint64_t addr, uint32_t data)
{
    uint32_t *p = gm_ptr(&m.ram, addr, 4);

    (void)opaque;
    if (p && !(addr & 3)) {
        __atomic_store_n(p, data, __ATOMIC_RELEASE);
    }
}

static void irq_none(void *opaque, int gsi, int level)
{
    (void)opaque;
    (void)gsi;
    (void)level;
}

static void *main_loop_fn(void *opaque)
{
    MainLoopOptions opts = {.fdmon = AIO_FDMON_AUTO, .uring_flags = main_flags};

    (void)opaque;
    if (main_loop_init(&opts) < 0) {
        abort();
    }
    __atomic_store_n(&m.main_ready, 1, __ATOMIC_RELEASE);
    main_loop_run();
    bql_unlock();
    return NULL;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void new_read(QVirtioBlkReq *r, uint64_t data, uint64_t sectors,
                     uint64_t *rng)
{
    uint64_t blocks = sectors / (IO_SIZE / 512);

    *r = (QVirtioBlkReq){.type = VIRTIO_BLK_T_IN,
                         .sector = rng_next(rng) % blocks * (IO_SIZE / 512),
                         .data = data,
                         .len = IO_SIZE};
}

/*
 * Keep @qd reads in flight until @end_ns; returns how many completed.
 * Errors abort: a benchmark of failing reads measures nothing.
 */
static uint64_t drive(QVirtioBlk *b, unsigned qd, uint64_t *bufs,
                      QVirtioBlkReq *reqs, int64_t end_ns, uint64_t *rng)
{
    QVirtQueue *vq = &b->vq[0];
    uint64_t done = 0;

    while (clock_ns() < end_ns) {
        unsigned ready[MAX_QD], n = 0;

        if (!qvirtqueue_poll_used(vq)) {
            if (iothread_cpu == GUEST_CPU) {
                sched_yield(); /* spinning would only keep the IOThread out */
            }
            continue;
        }
        /*
         * Find every finished request before reusing any descriptor: a new
         * chain may take the head of a finished request not looked at yet,
         * and starting a chain clears its head's done mark.
         */
        for (unsigned i = 0; i < qd; i++) {
            if (vq->done[reqs[i].head]) {
                vq->done[reqs[i].head] = false;
                ready[n++] = i;
            }
        }
        for (unsigned k = 0; k < n; k++) {
            unsigned i = ready[k];

            new_read(&reqs[i], bufs[i], b->capacity, rng);
            qvirtio_blk_submit(b, 0, &reqs[i]);
        }
        done += n;
        if (n) {
            qvirtio_blk_kick(b, 0);
        }
    }
    return done;
}

/* Let every request in flight come back, so the device can go. */
static void drain(QVirtioBlk *b, unsigned qd, QVirtioBlkReq *reqs)
{
    for (unsigned i = 0; i < qd; i++) {
        if (!qvirtio_blk_wait(b, 0, &reqs[i], QVIRTIO_BLK_TIMEOUT_MS)) {
            fprintf(stderr,
                    "bench-uring: read %u of %u timed out (avail %u, used "
                    "%u, seen %u)\n",
                    i, qd, b->vq[0].avail_idx, qvirtqueue_used_idx(&b->vq[0]),
                    b->vq[0].last_used);
            exit(1);
        }
        if (reqs[i].status != VIRTIO_BLK_S_OK) {
            fprintf(stderr, "bench-uring: read failed: status %u\n",
                    reqs[i].status);
            exit(1);
        }
    }
}

static void main_loop_start(unsigned flags)
{
    main_flags = flags;
    __atomic_store_n(&m.main_ready, 0, __ATOMIC_RELEASE);
    pthread_create(&m.main_thread, NULL, main_loop_fn, NULL);
    while (!__atomic_load_n(&m.main_ready, __ATOMIC_ACQUIRE)) {
        usleep(1000);
    }
}

static void main_loop_stop(void)
{
    main_loop_quit();
    pthread_join(m.main_thread, NULL);
    bql_lock();
    main_loop_cleanup();
}

/*
 * The main loop's flags, like the event loop switches, are fixed when its
 * context is set up: a new loop when either changed (@switches is the
 * caller's name for the set of switches).
 */
static unsigned main_switches;

static void main_loop_use(unsigned flags, unsigned switches)
{
    if (flags != main_flags || switches != main_switches) {
        main_loop_stop();
        main_switches = switches;
        main_loop_start(flags);
    }
}

/*
 * One run: the queue on a new IOThread, or on the main loop (@main_loop;
 * its thread stands in for QEMU's main thread, the guest's thread for a
 * vCPU). What it did goes to *r.
 */
void bench_uring_run(const char *path, const char *blk_opts, unsigned qd,
                     const AioPollParams *poll, unsigned flags,
                     bool on_main_loop, unsigned switches, int64_t run_ns,
                     BenchRun *r)
{
    AioContextOptions opts = {
        .fdmon = AIO_FDMON_IO_URING, .poll = *poll, .uring_flags = flags};
    VirtioBlkOptions bo = {.serial = "bench-uring"};
    QVirtioBlkOptions qo = {.msix = true};
    IrqLine intx = {.set_level = irq_none, .gsi = 10};
    MsiSink sink = {.send = msi_land};
    QVirtioBlkReq reqs[MAX_QD];
    uint64_t bufs[MAX_QD], rng = 0x9e3779b97f4a7c15ull, done;
    Spent s0, s1;
    int64_t t0, t1;
    double wall_s;
    BlockBackend *blk;
    IOThread *io = NULL;
    AioContext *ctx;
    VirtioBlk *vblk;
    QVirtioBlk b;
    char err[256];

    if (on_main_loop) {
        main_loop_use(flags, switches);
        ctx = main_loop_context();
    } else {
        io = iothread_new("bench-io", &opts);
        if (!io) {
            fprintf(stderr, "bench-uring: iothread: %s\n", strerror(errno));
            exit(1);
        }
        ctx = iothread_get_context(io);
        bo.ctx[0] = ctx;
    }
    r->got_flags = aio_context_uring_flags(ctx);
    aio_run_in_context(ctx, pin_iothread, NULL);
    if (blk_open_string(path, blk_opts, &blk, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench-uring: %s: %s\n", path, err);
        exit(1);
    }
    bql_lock();
    if (virtio_blk_create(&vblk, &m.host, PCI_DEVFN(4, 0), &m.ram, &sink, intx,
                          blk, &bo) < 0) {
        abort();
    }
    bql_unlock();
    /*
     * The driver takes its rings from where the last run's were, and does
     * not clear them: a stale used index would read as completions.
     */
    qos_alloc_reset(&m.q);
    memset(gm_ptr(&m.ram, 0, RAM_SIZE), 0, RAM_SIZE);
    if (!qvirtio_blk_init(&b, &m.q, 0, &qo)) {
        exit(1);
    }
    for (unsigned i = 0; i < qd; i++) {
        bufs[i] = qos_alloc(&m.q, IO_SIZE, IO_SIZE);
        new_read(&reqs[i], bufs[i], b.capacity, &rng);
        qvirtio_blk_submit(&b, 0, &reqs[i]);
    }
    qvirtio_blk_kick(&b, 0);

    drive(&b, qd, bufs, reqs, clock_ns() + WARMUP_NS, &rng);
    aio_run_in_context(ctx, read_spent, &s0);
    t0 = clock_ns();
    done = drive(&b, qd, bufs, reqs, t0 + run_ns, &rng);
    t1 = clock_ns();
    aio_run_in_context(ctx, read_spent, &s1);
    drain(&b, qd, reqs);

    wall_s = (double)(t1 - t0) / NS_PER_S;
    r->done = done;
    r->iops = done / wall_s;
    r->cpu_ns = s1.cpu_ns - s0.cpu_ns;
    r->sys_ns = s1.sys_ns - s0.sys_ns;
    r->poll_ns = s1.poll_ns - s0.poll_ns;
    r->before = s0.st;
    r->after = s1.st;

    bql_lock();
    virtio_blk_destroy(vblk);
    bql_unlock();
    blk_close(blk);
    if (io) {
        iothread_free(io);
    }
}

/* One run of @c, into its samples. */
static void run_one(const char *path, const char *blk_opts, unsigned qd,
                    const AioPollParams *poll, unsigned flags, int64_t run_ns,
                    Config *c)
{
    BenchRun r;
    double n;

    bench_uring_run(path, blk_opts, qd, poll, flags, c->poll == POLL_MAIN_LOOP,
                    main_switches, run_ns, &r);
    c->got_flags = r.got_flags;
    n = r.done ? (double)r.done : 1;
    samples_add(&c->s, r.iops, (double)r.cpu_ns / NS_PER_US / n,
                (double)r.sys_ns / NS_PER_US / n,
                (double)r.poll_ns / NS_PER_US / n);
}

/* A patterned image, kept between runs while its size is right. */
static int prepare_image(const char *path)
{
    static char buf[1 << 20];
    struct stat st;
    int fd;

    if (stat(path, &st) == 0 && (uint64_t)st.st_size == IMG_SIZE) {
        return 0;
    }
    fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0) {
        fprintf(stderr, "bench-uring: %s: %s\n", path, strerror(errno));
        return -errno;
    }
    memset(buf, 0xa5, sizeof(buf));
    for (uint64_t off = 0; off < IMG_SIZE; off += sizeof(buf)) {
        if (pwrite(fd, buf, sizeof(buf), off) != (ssize_t)sizeof(buf)) {
            close(fd);
            return -EIO;
        }
    }
    fsync(fd);
    close(fd);
    return 0;
}

/* cache=none where the filesystem has O_DIRECT (tmpfs in 6.1 has not). */
static const char *file_opts(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECT);

    if (fd < 0) {
        return "aio=io_uring,cache=writeback";
    }
    close(fd);
    return "aio=io_uring,cache=none";
}

static void machine_init(void)
{
    if (gm_init(&m.ram, RAM_SIZE) < 0) {
        abort();
    }
    as_init(&m.as, &m.ram);
    pci_host_init(&m.host, &m.as);
    main_loop_start(0);
    qos_local_init(&m.q, &m.as);
}

static void machine_cleanup(void)
{
    main_loop_stop();
    pci_host_cleanup(&m.host);
    as_cleanup(&m.as);
    gm_cleanup(&m.ram);
}

/*
 * BENCH_URING_MULTISHOT, BENCH_URING_NOTIFIER_READ and
 * BENCH_URING_NOTIFY_AFTER_POLL (on|off, default on, as minivmm's
 * --uring-multishot, --uring-notifier-read and --aio-notify-after-poll):
 * the event-loop changes of issue 15, each switchable to compare runs.
 */
static int env_switches(void)
{
    static const struct {
        const char *env;
        void (*set)(bool on);
    } sw[] = {
        {"BENCH_URING_MULTISHOT", aio_set_uring_multishot},
        {"BENCH_URING_NOTIFIER_READ", aio_set_uring_notifier_read},
        {"BENCH_URING_NOTIFY_AFTER_POLL", aio_set_notify_after_poll},
    };

    for (size_t i = 0; i < sizeof(sw) / sizeof(sw[0]); i++) {
        const char *v = getenv(sw[i].env);

        if (!v || !*v) {
            continue;
        }
        if (strcmp(v, "on") && strcmp(v, "off")) {
            fprintf(stderr, "bench-uring: %s: on or off, not '%s'\n", sw[i].env,
                    v);
            return -1;
        }
        sw[i].set(!strcmp(v, "on"));
        printf("switch: %s=%s\n", sw[i].env, v);
    }
    return 0;
}

int main(void)
{
    const char *env_place = getenv("BENCH_URING_PLACEMENT");
    const char *env_weights = getenv("BENCH_URING_WEIGHTS");
    const char *dir = getenv("MINIVMM_BENCH_DIR");
    const char *only = getenv("BENCH_URING_TARGET");
    const char *mode = getenv("BENCH_URING_MODE");
    unsigned weight = AIO_POLL_WEIGHT_DEFAULT ? AIO_POLL_WEIGHT_DEFAULT : 3;
    unsigned weights[STATS_MAX_WEIGHTS];
    double secs, rounds, w;
    int nweights = 1;
    char image[256];
    const char *paths[2], *opts[2];

    secs = env_number("BENCH_URING_SECONDS",
                      env_number("BENCH_URING_SECS", 1, 3600), 3600);
    rounds = env_number("BENCH_URING_ROUNDS", 5, STATS_MAX_ROUNDS);
    w = env_number("BENCH_URING_WEIGHT", weight, AIO_POLL_WEIGHT_MAX);
    if (secs < 0 || rounds < 1 || w < 1 || w != (unsigned)w ||
        rounds != (unsigned)rounds) {
        fprintf(stderr,
                "bench-uring: BENCH_URING_SECONDS must be > 0, "
                "BENCH_URING_ROUNDS 1..%d, BENCH_URING_WEIGHT 1..%d\n",
                STATS_MAX_ROUNDS, AIO_POLL_WEIGHT_MAX);
        return 1;
    }
    weight = (unsigned)w;
    weights[0] = weight;
    if (env_weights && *env_weights) {
        nweights = parse_weights(env_weights, AIO_POLL_WEIGHT_MAX, weights);
        if (nweights < 0) {
            fprintf(stderr,
                    "bench-uring: BENCH_URING_WEIGHTS: want a list "
                    "like 1,2,3 of weights 1..%d\n",
                    AIO_POLL_WEIGHT_MAX);
            return 1;
        }
    }
    if (env_switches() < 0) {
        return 1;
    }
    if (only && strcmp(only, "null") && strcmp(only, "file")) {
        fprintf(stderr, "bench-uring: BENCH_URING_TARGET: null or file\n");
        return 1;
    }
    if (env_place && !strcmp(env_place, "same")) {
        iothread_cpu = GUEST_CPU;
    } else if (env_place && *env_place && strcmp(env_place, "apart")) {
        fprintf(stderr, "bench-uring: BENCH_URING_PLACEMENT: apart or same\n");
        return 1;
    }
    snprintf(image, sizeof(image), "%s/minivmm-bench-uring.img",
             dir && *dir ? dir : "/var/tmp");
    if (prepare_image(image) < 0) {
        return 1;
    }
    paths[0] = "null://1G";
    opts[0] = NULL;
    paths[1] = image;
    opts[1] = file_opts(image);

    if (mode && !strcmp(mode, "syscalls")) {
        pin_self(GUEST_CPU);
        machine_init();
        printf("file: %s (%s)\n", image, opts[1]);
        bench_uring_syscalls(paths, opts, secs, (unsigned)rounds);
        machine_cleanup();
        return 0;
    } else if (mode && *mode) {
        fprintf(stderr, "bench-uring: BENCH_URING_MODE: syscalls or unset\n");
        return 1;
    }

    /*
     * Fewer rows than the full flags x polling grid, so that rounds fit in
     * the time one run of everything took: every flag set at grow-shrink
     * (the classic policy), polling off at no flags, weighted polling at no
     * flags and at the default flags, and the queue on the main loop without
     * flags and with coop (single-issuer is never used there).
     */
    for (int t = 0; t < 2; t++) {
        if (only && strcmp(only, target_names[t])) {
            continue;
        }
        for (int qi = 0; qi < 2; qi++) {
            config_want(t, qds[qi], 0, POLL_OFF, 0);
            config_want(t, qds[qi], 0, POLL_GROW_SHRINK, 0);
            config_want(t, qds[qi], 0, POLL_WEIGHTED, weight);
            config_want(t, qds[qi], DEFAULT_FLAGS, POLL_WEIGHTED, weight);
            config_want(t, qds[qi], 0, POLL_MAIN_LOOP, 0);
            config_want(t, qds[qi], DEFAULT_FLAGS, POLL_MAIN_LOOP, 0);
            for (unsigned f = 1; f < NFLAGS; f++) {
                config_want(t, qds[qi], f, POLL_GROW_SHRINK, 0);
            }
            if (t == 1) {
                for (int k = 0; k < nweights; k++) {
                    config_want(t, qds[qi], 0, POLL_WEIGHTED, weights[k]);
                    config_want(t, qds[qi], DEFAULT_FLAGS, POLL_WEIGHTED,
                                weights[k]);
                }
            }
        }
    }

    pin_self(GUEST_CPU);
    machine_init();
    printf("4 KiB random reads through virtio-blk on one IOThread.\n"
           "placement: %s (guest thread on CPU %d, IOThread on CPU %d)\n"
           "%u configurations x %u rounds of %.1f s, interleaved: about %.0f "
           "s\n"
           "IOPS and cpu us/io are medians over the rounds; spread is the "
           "IOPS range\n(max - min) in %% of the median. Ratios are of "
           "medians, to the no-flags,\ngrow-shrink row of the same target "
           "and QD.\n",
           iothread_cpu == GUEST_CPU ? "same" : "apart", GUEST_CPU,
           iothread_cpu, nconfigs, (unsigned)rounds, secs,
           nconfigs * rounds * (secs + 0.15));
    printf("file: %s (%s, %llu MiB)\n", image, opts[1], IMG_SIZE >> 20);
    printf("weighted: poll-weight %u; polling max %d ns\n", weight,
           AIO_POLL_MAX_NS_DEFAULT);
#ifdef IORING_SETUP_NO_SQARRAY
    printf("no-sqarray: defined by these headers, not measured here\n");
#else
    printf("no-sqarray: not measured: liburing's headers lack "
           "IORING_SETUP_NO_SQARRAY\n");
#endif
    fflush(stdout);

    for (unsigned r = 0; r < (unsigned)rounds; r++) {
        for (unsigned i = 0; i < nconfigs; i++) {
            Config *c = &configs[i];
            AioPollParams poll = {
                .max_ns = c->poll != POLL_OFF ? AIO_POLL_MAX_NS_DEFAULT : 0,
                .weight = c->poll == POLL_WEIGHTED ? c->weight : 0};

            run_one(paths[c->target], opts[c->target], c->qd, &poll,
                    flag_sets[c->flags_idx].flags, (int64_t)(secs * NS_PER_S),
                    c);
        }
        fprintf(stderr, "bench-uring: round %u of %u done\n", r + 1,
                (unsigned)rounds);
    }
    print_table();
    print_main_loop();
    if (!only || !strcmp(only, "file")) {
        print_sweep(weights, nweights);
    }
    print_summary(weight);
    machine_cleanup();
    return 0;
}
