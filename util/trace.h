/*
 * Trace events: one request, followed step by step across threads.
 *
 * Each trace point is one line in the code:
 *
 *     TRACE(AHCI_CMD, id, .a = {port, slot, cmd, lba, count});
 *
 * and costs, while tracing is off, one load of a global mask and one
 * never-taken branch (what that comes to, and what tracing costs when on:
 * docs/tracing.md). When `--trace FILE[,events=GLOB]` turned the event on,
 * trace_emit() appends a record to the calling thread's own buffer (no lock,
 * no system call: a CLOCK_MONOTONIC read through the vDSO and a copy), and at
 * exit trace_finish() writes every buffer to FILE as Chrome's Trace Event
 * JSON, which Perfetto's UI and chrome://tracing open: one track per thread,
 * one flow arrow per request. scripts/trace-report reads the same file.
 *
 * A request id (@id) is what follows a request from thread to thread: the
 * device gets a fresh one from trace_new_id() when a request is born (an
 * AHCI command starts, virtq_pop() returns a chain) and hands it down with
 * the request (BlockRequest, CqeHandler), so that the vCPU's exit, the
 * main loop's submit and the IOThread's completion carry the same number.
 * 0 means "no request". Steps that do not see the request struct (the
 * address-space dispatch, the interrupt) take the thread's current id,
 * trace_current_id(), which the step above them set with
 * trace_set_current_id().
 *
 * Memory is bounded: each thread's buffer is a ring of a fixed number of
 * records (`--trace FILE,size=N`); when it is full the oldest records are
 * overwritten and counted as dropped in the file's metadata.
 */
#ifndef MINIVMM_UTIL_TRACE_H
#define MINIVMM_UTIL_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The events: X(NAME, "json name", "arg0", .. "arg4", "str0", "str1").
 * An empty name ("") marks an unused argument. Numeric arguments go to the
 * JSON as numbers (signed 64-bit, so that -1 or a -errno reads as one),
 * strings (which must outlive the trace: literals, or trace_intern()) as
 * strings, a NULL string not at all; every event also gets "req": its id.
 */
#define TRACE_EVENTS(X)                                                        \
    /* DATAPATH 1: a vCPU exit. kind: 0 MMIO, 1 PIO; write: 0/1 */             \
    X(VCPU_EXIT, "vcpu_exit", "kind", "addr", "len", "write", "", "", "")      \
    /* DATAPATH 2: the address space found the region of an access */          \
    X(AS_DISPATCH, "as_dispatch", "addr", "len", "write", "", "", "region",    \
      "space")                                                                 \
    /* DATAPATH 3: the guest wrote PxCI (ci: the bits written) */              \
    X(AHCI_PXCI, "ahci_pxci", "port", "ci", "", "", "", "", "")                \
    /* DATAPATH 3: one AHCI command starts */                                  \
    X(AHCI_CMD, "ahci_cmd", "port", "slot", "cmd", "lba", "count", "", "")     \
    /* DATAPATH 1 (virtio): a queue's notify seen by its home thread */        \
    X(VIRTIO_NOTIFY, "virtio_notify", "queue", "", "", "", "", "dev", "")      \
    /* DATAPATH 3 (virtio): a chain popped off the available ring */           \
    X(VIRTQ_POP, "virtq_pop", "queue", "head", "", "", "", "dev", "")          \
    /* DATAPATH 4: the block layer takes a request */                          \
    X(BLK_SUBMIT, "blk_submit", "offset", "bytes", "", "", "", "op", "ctx")    \
    /* DATAPATH 5: an SQE queued. asleep: its home thread was waiting; */      \
    /* kick: 0 no notify, 1 eventfd written, 2 deferred to bql_unlock() */     \
    X(AIO_ADD_SQE, "aio_add_sqe", "asleep", "kick", "", "", "", "ctx", "")     \
    /* DATAPATH 5: the event loop goes to sleep (timeout_ns -1: none) */       \
    X(LOOP_SLEEP, "loop_sleep", "timeout_ns", "", "", "", "", "ctx", "")       \
    /* DATAPATH 5: ... and wakes: why ("timeout", "notify", "io") */           \
    X(LOOP_WAKE, "loop_wake", "slept_ns", "", "", "", "", "ctx", "why")        \
    /* DATAPATH 5: io_uring_submit() of @count SQEs */                         \
    X(URING_SUBMIT, "uring_submit", "count", "", "", "", "", "ctx", "")        \
    /* DATAPATH 5: this request's SQE was in that submit */                    \
    X(SQE_SUBMIT, "sqe_submit", "", "", "", "", "", "ctx", "")                 \
    /* DATAPATH 6: a CQE handed to its request */                              \
    X(CQE_DISPATCH, "cqe_dispatch", "res", "", "", "", "", "ctx", "")          \
    /* DATAPATH 6: the device completed a request (fis: "sdb", "d2h") */       \
    X(AHCI_DONE, "ahci_done", "port", "slot", "status", "", "", "fis", "")     \
    X(VIRTIO_DONE, "virtio_done", "queue", "head", "status", "len", "", "dev", \
      "")                                                                      \
    /* DATAPATH 7: an interrupt ("irqfd", "msi-ioctl", "intx", "intx-bh",      \
     * "ram") */                                                               \
    X(IRQ, "irq", "vector", "level", "", "", "", "how", "")

#define TRACE_ENUM(name, ...) TRACE_##name,
typedef enum TraceEvent {
    TRACE_EVENTS(TRACE_ENUM) TRACE_EVENT_COUNT
} TraceEvent;
#undef TRACE_ENUM

#define TRACE_MAX_ARGS 5
#define TRACE_MAX_STRS 2

typedef struct TraceArgs {
    uint64_t a[TRACE_MAX_ARGS];
    const char *s[TRACE_MAX_STRS];
} TraceArgs;

/*
 * Bit n set: event n is on. Set by trace_start() before any thread emits,
 * cleared by trace_finish() after they have all stopped.
 */
extern uint64_t trace_event_mask;

#ifndef MINIVMM_TRACE_NONE
#define TRACE_ON(ev) __builtin_expect(!!(trace_event_mask & (1ULL << (ev))), 0)
/* Any event on: for work done only for the trace (a request's id). */
#define TRACE_ANY() (trace_event_mask != 0)
#else
/*
 * -DMINIVMM_TRACE_NONE: the trace points compile to nothing. TRACE() below
 * becomes dead code (its arguments still compiled, never evaluated), which
 * the compiler drops, and the request-id helpers at the end do nothing. Not
 * a build to ship: it is the baseline against which `make bench-aio` and
 * `make bench-block` measure what the trace points cost while off
 * (docs/tracing.md).
 */
#define TRACE_ON(ev) 0
#define TRACE_ANY()  0
#endif

#define TRACE(ev, id, ...)                                                     \
    do {                                                                       \
        if (TRACE_ON(TRACE_##ev)) {                                            \
            trace_emit(TRACE_##ev, (id), (TraceArgs){__VA_ARGS__});            \
        }                                                                      \
    } while (0)

void trace_emit(TraceEvent ev, uint64_t id, TraceArgs args);

/* Records per thread's ring (size=N), the newest kept. */
#define TRACE_SIZE_DEFAULT 262144
#define TRACE_SIZE_MIN     1024
#define TRACE_SIZE_MAX     (16 * 1024 * 1024)

/*
 * Parse "FILE[,events=GLOB][,size=N]" (GLOB: shell patterns on the JSON
 * names, ':'-separated, e.g. "ahci_*:blk_*"; N: records per thread, 1024 or
 * more) and turn tracing on. Call before any thread emits. Returns 0, or
 * -EINVAL with a one-line reason in @err.
 */
int trace_start(const char *spec, char *err, size_t errlen);

/*
 * Write FILE (if tracing) and free the buffers: at exit, threads stopped.
 * Returns 0, or -errno after logging one line if FILE could not be written.
 */
int trace_finish(void);

bool trace_active(void);

/*
 * Records emitted since trace_start(), by every thread, kept or dropped.
 * Call, as trace_finish(), once the threads that emit have stopped.
 */
uint64_t trace_emitted(void);

/*
 * Name the calling thread's track ("vcpu0", "main", "iothread0", ...) and,
 * but for the main thread, the thread itself (its first 15 bytes, as top
 * -H and perf show it).
 */
void trace_set_thread_name(const char *name);

/* A fresh request id (never 0), or 0 while tracing is off. */
uint64_t trace_new_id(void);

/* The calling thread's current request id (see above). */
extern __thread uint64_t trace_cur_id;

#ifndef MINIVMM_TRACE_NONE
static inline void trace_set_current_id(uint64_t id)
{
    trace_cur_id = id;
}

static inline uint64_t trace_current_id(void)
{
    return trace_cur_id;
}

/*
 * A vCPU exit (or a qtest access) begins: a fresh current id, so that what
 * the exit sets off carries it. 0, and nothing else, while tracing is off.
 */
static inline uint64_t trace_begin_exit(void)
{
    trace_cur_id = trace_event_mask ? trace_new_id() : 0;
    return trace_cur_id;
}

/*
 * A request is born: it takes the exit's id if the exit has not given it
 * away yet (the first AHCI command a PxCI write starts), else a fresh one.
 */
static inline uint64_t trace_take_id(void)
{
    uint64_t id = trace_cur_id;

    if (!trace_event_mask) {
        return 0;
    }
    trace_cur_id = 0;
    return id ? id : trace_new_id();
}
#else
static inline void trace_set_current_id(uint64_t id)
{
    (void)id;
}

static inline uint64_t trace_current_id(void)
{
    return 0;
}

static inline uint64_t trace_begin_exit(void)
{
    return 0;
}

static inline uint64_t trace_take_id(void)
{
    return 0;
}
#endif

/* A copy of @s that lives until trace_finish(), for names that do not. */
const char *trace_intern(const char *s);

#endif
