/*
 * Trace events (see util/trace.h): the file, in Chrome's Trace Event JSON
 * as Perfetto's UI and chrome://tracing read it.
 *
 *   {"traceEvents":[
 *   {"name":"process_name","ph":"M",...},
 *   {"name":"thread_name","ph":"M","pid":P,"tid":T,"args":{"name":"vcpu0"}},
 *   {"name":"thread_sort_index","ph":"M","pid":P,"tid":T,"args":{...}},
 *   {"name":"ahci_cmd","cat":"minivmm","ph":"X","ts":12.345,"dur":0.100,
 *    "pid":P,"tid":T,"args":{"req":7,"ts_ns":12345,"port":0,...}},
 *   {"name":"request","cat":"req","id":7,"ph":"s","ts":12.345,...,"bp":"e"},
 *   ...
 *   ],
 *   "displayTimeUnit":"ns",
 *   "otherData":{"format":"minivmm-trace-1",...,"dropped":N,"events":"*"}}
 *
 * One event per line. Each record is an "X" slice on its thread's track,
 * in time order across all threads; a request id seen in two records or
 * more also gets flow events ("s" at its first record, "t" at the middle
 * ones, "f" at its last), bound to the slices they sit in.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/trace-internal.h"

/* A slice lasts until the next record on its track, but at most this. */
#define SLICE_MAX_NS NS_PER_US

/* Nanoseconds as the format's microseconds, to the nanosecond. */
#define US_FMT     "%" PRId64 ".%03" PRId64
#define US_ARG(ns) (int64_t)((ns) / NS_PER_US), (int64_t)((ns) % NS_PER_US)

/* ---- A thread's ring, oldest record first ------------------------------ */

/* The slot of the oldest record @t still holds; *@count: how many it holds. */
static size_t ring_first(const TraceThread *t, uint64_t *count)
{
    bool wrapped = t->emitted > t->cap;

    *count = wrapped ? t->cap : t->emitted;
    return wrapped ? t->next_slot : 0;
}

static size_t ring_next(const TraceThread *t, size_t slot)
{
    return slot + 1 == t->cap ? 0 : slot + 1;
}

/* ---- Thread order: main, then vcpuN, then iothreadN, then the rest ------ */

/* @name is @prefix and a decimal number: put the number in *@n. */
static bool numbered(const char *name, const char *prefix, unsigned long *n)
{
    size_t len = strlen(prefix);
    char *end;

    if (strncmp(name, prefix, len) || name[len] < '0' || name[len] > '9') {
        return false;
    }
    *n = strtoul(name + len, &end, 10);
    return *end == '\0';
}

static void thread_rank(const TraceThread *t, int *class, unsigned long *n)
{
    *n = 0;
    if (!strcmp(t->name, "main")) {
        *class = 0;
    } else if (numbered(t->name, "vcpu", n)) {
        *class = 1;
    } else if (numbered(t->name, "iothread", n)) {
        *class = 2;
    } else {
        *class = 3;
    }
}

static int thread_cmp(const void *pa, const void *pb)
{
    const TraceThread *a = *(TraceThread *const *)pa;
    const TraceThread *b = *(TraceThread *const *)pb;
    unsigned long na, nb;
    int ca, cb;

    thread_rank(a, &ca, &na);
    thread_rank(b, &cb, &nb);
    if (ca != cb) {
        return ca - cb;
    }
    if (na != nb) {
        return na < nb ? -1 : 1;
    }
    return (a->tid > b->tid) - (a->tid < b->tid); /* same name: by tid */
}

/* ---- Request ids: each one's records, counted for its flow ------------- */

typedef struct FlowEntry {
    uint64_t id;    /* 0: a free entry */
    uint32_t count; /* records with this id in the file */
    uint32_t seen;  /* of which written so far */
} FlowEntry;

/* Open addressing, at most half full: ids are as many as records at most. */
typedef struct FlowTable {
    FlowEntry *e;
    unsigned bits; /* 2^bits entries */
} FlowTable;

/* @id's entry, claimed if it has none yet. */
static FlowEntry *flow_entry(FlowTable *ft, uint64_t id)
{
    size_t mask = ((size_t)1 << ft->bits) - 1;
    /* Fibonacci hashing: consecutive ids land far apart. */
    size_t i = (size_t)((id * 0x9e3779b97f4a7c15ULL) >> (64 - ft->bits));

    while (ft->e[i].id && ft->e[i].id != id) {
        i = (i + 1) & mask;
    }
    ft->e[i].id = id;
    return &ft->e[i];
}

static int flow_table_fill(FlowTable *ft, TraceThread **threads, size_t n)
{
    uint64_t records = 0;

    for (size_t i = 0; i < n; i++) {
        records += threads[i]->emitted < threads[i]->cap ? threads[i]->emitted
                                                         : threads[i]->cap;
    }
    ft->bits = 4;
    while (((uint64_t)1 << ft->bits) < 2 * records) {
        ft->bits++;
    }
    ft->e = calloc((size_t)1 << ft->bits, sizeof(*ft->e));
    if (!ft->e) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const TraceThread *t = threads[i];
        uint64_t count;
        size_t slot = ring_first(t, &count);

        for (uint64_t k = 0; k < count; k++, slot = ring_next(t, slot)) {
            if (t->rec[slot].id) {
                flow_entry(ft, t->rec[slot].id)->count++;
            }
        }
    }
    return 0;
}

/* A request's @seen-th record of @count: its arrow starts, steps or ends. */
static char flow_phase(uint32_t seen, uint32_t count)
{
    if (seen == 1) {
        return 's';
    }
    return seen == count ? 'f' : 't';
}

/* ---- Writing ------------------------------------------------------------ */

typedef struct Writer {
    FILE *f;
    int pid;
    FlowTable flows;
} Writer;

/*
 * A JSON string. Names are ASCII in practice; any other byte is written as
 * \u00XX (its Latin-1 reading), so that the file is valid JSON, and valid
 * UTF-8, whatever a device called itself.
 */
static void put_string(FILE *f, const char *s)
{
    putc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') {
            putc('\\', f);
            putc(*c, f);
        } else if (*c < 0x20 || *c >= 0x7f) {
            fprintf(f, "\\u%04x", *c);
        } else {
            putc(*c, f);
        }
    }
    putc('"', f);
}

/* The process's and each thread's name, and the threads' order. */
static void put_metadata(Writer *w, TraceThread **threads, size_t n)
{
    fprintf(w->f,
            "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,"
            "\"args\":{\"name\":\"minivmm\"}}",
            w->pid, w->pid);
    for (size_t i = 0; i < n; i++) {
        fprintf(w->f,
                ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,"
                "\"tid\":%d,\"args\":{\"name\":",
                w->pid, (int)threads[i]->tid);
        put_string(w->f, threads[i]->name);
        fprintf(w->f,
                "}},\n{\"name\":\"thread_sort_index\",\"ph\":\"M\","
                "\"pid\":%d,\"tid\":%d,\"args\":{\"sort_index\":%zu}}",
                w->pid, (int)threads[i]->tid, i);
    }
}

static void put_slice(Writer *w, const TraceThread *t, const TraceRecord *r,
                      int64_t ts, int64_t dur)
{
    const TraceEventInfo *ev = &trace_events[r->event];

    fprintf(
        w->f,
        ",\n{\"name\":\"%s\",\"cat\":\"minivmm\",\"ph\":\"X\",\"ts\":" US_FMT
        ",\"dur\":" US_FMT ",\"pid\":%d,\"tid\":%d,\"args\":{\"req\":%" PRIu64
        ",\"ts_ns\":%" PRId64,
        ev->name, US_ARG(ts), US_ARG(dur), w->pid, (int)t->tid, r->id,
        r->ts_ns);
    for (int i = 0; i < TRACE_MAX_ARGS; i++) {
        /* Signed, so that a -1 or a negative errno reads as one. */
        if (ev->arg[i][0]) {
            fprintf(w->f, ",\"%s\":%" PRId64, ev->arg[i], (int64_t)r->a[i]);
        }
    }
    for (int i = 0; i < TRACE_MAX_STRS; i++) {
        if (ev->str[i][0] && r->s[i]) {
            fprintf(w->f, ",\"%s\":", ev->str[i]);
            put_string(w->f, r->s[i]);
        }
    }
    fputs("}}", w->f);
}

/* Where @id's arrow meets the slice just written ("bp":"e": that slice). */
static void put_flow(Writer *w, const TraceThread *t, uint64_t id, char phase,
                     int64_t ts)
{
    fprintf(w->f,
            ",\n{\"name\":\"request\",\"cat\":\"req\",\"id\":%" PRIu64
            ",\"ph\":\"%c\",\"ts\":" US_FMT ",\"pid\":%d,\"tid\":%d,"
            "\"bp\":\"e\"}",
            id, phase, US_ARG(ts), w->pid, (int)t->tid);
}

/*
 * One thread's records, oldest first, as the merge takes them. A record's
 * time on the track is its clock reading, but at least 1 ns after the
 * record before it: two records read in the same nanosecond would
 * otherwise be two slices at one instant (args.ts_ns keeps the reading).
 */
typedef struct Cursor {
    const TraceThread *t;
    uint64_t left; /* records not yet written, this one included */
    size_t slot;   /* this record's */
    int64_t ts;    /* its time on the track */
} Cursor;

static int64_t track_time(const TraceRecord *r, int64_t prev)
{
    return r->ts_ns > prev ? r->ts_ns : prev + 1;
}

/* Write @c's record as a slice (and its flow event), and step past it. */
static void put_cursor(Writer *w, Cursor *c)
{
    const TraceRecord *r = &c->t->rec[c->slot];
    int64_t dur = SLICE_MAX_NS, next_ts = 0;

    if (c->left > 1) {
        next_ts = track_time(&c->t->rec[ring_next(c->t, c->slot)], c->ts);
        dur = next_ts - c->ts;
        /* A sleep lasts until its wake; anything else is a moment. */
        if (r->event != TRACE_LOOP_SLEEP && dur > SLICE_MAX_NS) {
            dur = SLICE_MAX_NS;
        }
    }
    put_slice(w, c->t, r, c->ts, dur);
    if (r->id) {
        FlowEntry *e = flow_entry(&w->flows, r->id);

        e->seen++;
        if (e->count > 1) {
            put_flow(w, c->t, r->id, flow_phase(e->seen, e->count), c->ts);
        }
    }
    c->left--;
    c->slot = ring_next(c->t, c->slot);
    c->ts = next_ts;
}

/* Every record of every thread, in time order: merge the sorted rings. */
static void put_records(Writer *w, TraceThread **threads, Cursor *cursors,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        Cursor *c = &cursors[i];

        c->t = threads[i];
        c->slot = ring_first(c->t, &c->left);
        c->ts = c->left ? c->t->rec[c->slot].ts_ns : 0;
    }
    for (;;) {
        Cursor *first = NULL;

        /* Threads are few: a linear scan beats keeping a heap. */
        for (size_t i = 0; i < n; i++) {
            if (cursors[i].left && (!first || cursors[i].ts < first->ts)) {
                first = &cursors[i];
            }
        }
        if (!first) {
            break;
        }
        put_cursor(w, first);
    }
}

int trace_write_json(FILE *f)
{
    Writer w = {.f = f, .pid = getpid()};
    TraceThread **threads;
    Cursor *cursors;
    uint64_t dropped = 0;
    size_t n = 0, i = 0;
    int ret = 0;

    for (TraceThread *t = trace_state.threads; t; t = t->next) {
        n++;
    }
    threads = calloc(n + 1, sizeof(*threads));
    cursors = calloc(n + 1, sizeof(*cursors));
    if (!threads || !cursors) {
        ret = -ENOMEM;
        goto out;
    }
    for (TraceThread *t = trace_state.threads; t; t = t->next) {
        threads[i++] = t;
        dropped += t->emitted > t->cap ? t->emitted - t->cap : 0;
    }
    qsort(threads, n, sizeof(*threads), thread_cmp);
    ret = flow_table_fill(&w.flows, threads, n);
    if (ret < 0) {
        goto out;
    }

    fputs("{\"traceEvents\":[\n", f);
    put_metadata(&w, threads, n);
    put_records(&w, threads, cursors, n);
    /*
     * After the events: Perfetto once took a displayTimeUnit it found at
     * the start of a file for the unit of "ts"; the format says it is only
     * how to display times, and "ts" is in microseconds.
     */
    fprintf(f,
            "\n],\n\"displayTimeUnit\":\"ns\",\n"
            "\"otherData\":{\"format\":\"minivmm-trace-1\","
            "\"clock\":\"CLOCK_MONOTONIC\",\"dropped\":%" PRIu64 ",\"events\":",
            dropped);
    put_string(f, trace_state.events ? trace_state.events : "*");
    fputs("}}\n", f);
    if (fflush(f) == EOF) {
        ret = -errno;
    } else if (ferror(f)) {
        ret = -EIO; /* an earlier write failed; its errno is long gone */
    }
out:
    free(w.flows.e);
    free(cursors);
    free(threads);
    return ret;
}
