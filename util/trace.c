/*
 * Trace events (see util/trace.h): recording.
 *
 * Each thread that emits gets a ring of fixed-size records of its own, made
 * at its first trace_emit(). Only the making takes the lock (to put the ring
 * on the list trace_finish() walks); after that a record costs a clock read
 * and a copy, and no other thread ever touches the ring until every thread
 * has stopped and trace_finish() writes them all (util/trace-json.c).
 */
#include "util/trace.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/trace-internal.h"

_Static_assert(TRACE_EVENT_COUNT <= 64, "trace_event_mask has 64 bits");

#define TRACE_INFO(name, json, a0, a1, a2, a3, a4, s0, s1)                     \
    [TRACE_##name] = {json, {a0, a1, a2, a3, a4}, {s0, s1}},
const TraceEventInfo trace_events[TRACE_EVENT_COUNT] = {
    TRACE_EVENTS(TRACE_INFO)};
#undef TRACE_INFO

uint64_t trace_event_mask;
__thread uint64_t trace_cur_id;

TraceState trace_state = {.lock = PTHREAD_MUTEX_INITIALIZER};

/*
 * The calling thread's ring, valid while @self_generation matches
 * trace_state.generation: a thread that outlived a trace_finish() (unit tests
 * trace several times in one process) must not write to its freed ring.
 */
static __thread TraceThread *self;
static __thread unsigned self_generation;
/* The name trace_set_thread_name() gave, kept for a ring not made yet. */
static __thread char self_name[TRACE_NAME_LEN];

/* A thread's first record while tracing: make its ring and list it. */
static TraceThread *trace_thread_register(void)
{
    size_t cap = trace_state.size;
    /*
     * Not cleared: every slot is written before it is read, and pages left
     * untouched (glibc maps a large ring on its own) cost no memory, so a
     * thread that emits little costs little.
     */
    TraceThread *t = malloc(sizeof(*t) + cap * sizeof(TraceRecord));

    self = t;
    self_generation = trace_state.generation;
    if (!t) {
        log_error("trace: no memory for a ring of %zu records: thread %d is "
                  "not traced",
                  cap, (int)gettid());
        return NULL;
    }
    t->tid = gettid();
    if (self_name[0]) {
        memcpy(t->name, self_name, sizeof(t->name));
    } else {
        snprintf(t->name, sizeof(t->name), "thread-%d", (int)t->tid);
    }
    t->cap = cap;
    t->next_slot = 0;
    t->emitted = 0;

    pthread_mutex_lock(&trace_state.lock);
    t->next = trace_state.threads;
    trace_state.threads = t;
    pthread_mutex_unlock(&trace_state.lock);
    return t;
}

void trace_emit(TraceEvent ev, uint64_t id, TraceArgs args)
{
    TraceThread *t = self;
    TraceRecord *r;

    if (__builtin_expect(self_generation != trace_state.generation, 0)) {
        t = trace_thread_register();
    }
    if (!t) {
        return; /* its ring could not be made (and that was said) */
    }
    r = &t->rec[t->next_slot];
    /* Full: the slot taken is the oldest record's, which is dropped. */
    t->next_slot = t->next_slot + 1 == t->cap ? 0 : t->next_slot + 1;
    t->emitted++;

    r->ts_ns = clock_ns();
    r->id = id;
    r->event = ev;
    memcpy(r->a, args.a, sizeof(r->a));
    memcpy(r->s, args.s, sizeof(r->s));
}

void trace_set_thread_name(const char *name)
{
    /*
     * The system's name too, for top -H, perf and gdb. Not the main
     * thread's: its name is the process's, which ps and pkill look for.
     * prctl (not pthread_setname_np) since it names the caller without
     * opening /proc, which a sandboxed thread may not.
     */
    if (gettid() != getpid()) {
        prctl(PR_SET_NAME, name, 0, 0, 0);
    }
    snprintf(self_name, sizeof(self_name), "%s", name);
    if (self && self_generation == trace_state.generation) {
        memcpy(self->name, self_name, sizeof(self->name));
    }
}

uint64_t trace_new_id(void)
{
    if (!trace_event_mask) {
        return 0;
    }
    return atomic_fetch_add_explicit(&trace_state.next_id, 1,
                                     memory_order_relaxed);
}

bool trace_active(void)
{
    return trace_state.file != NULL;
}

uint64_t trace_emitted(void)
{
    uint64_t n = 0;

    pthread_mutex_lock(&trace_state.lock);
    for (TraceThread *t = trace_state.threads; t; t = t->next) {
        n += t->emitted;
    }
    pthread_mutex_unlock(&trace_state.lock);
    return n;
}

const char *trace_intern(const char *s)
{
    TraceString *str;

    if (!s) {
        return NULL;
    }
    pthread_mutex_lock(&trace_state.lock);
    /* A device interns its name once; reuse keeps repeated calls bounded. */
    for (str = trace_state.strings; str; str = str->next) {
        if (!strcmp(str->s, s)) {
            break;
        }
    }
    if (!str) {
        str = malloc(sizeof(*str) + strlen(s) + 1);
        if (str) {
            strcpy(str->s, s);
            str->next = trace_state.strings;
            trace_state.strings = str;
        }
    }
    pthread_mutex_unlock(&trace_state.lock);
    return str ? str->s : NULL; /* NULL: the argument is left out */
}

/* ---- trace_start(): the spec ------------------------------------------- */

static int spec_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int spec_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* "ahci_*:blk_*": the mask of the events the patterns name. */
static int parse_events(const char *glob, uint64_t *mask, char *err,
                        size_t errlen)
{
    char *copy = strdup(glob), *save = NULL, *pattern;
    int ret = 0;

    if (!copy) {
        return spec_error(err, errlen, "out of memory");
    }
    *mask = 0;
    /* strtok_r() would skip an empty pattern; a typo should not vanish. */
    if (!*glob || strstr(glob, "::") || glob[0] == ':' ||
        glob[strlen(glob) - 1] == ':') {
        ret = spec_error(err, errlen, "events= has an empty pattern");
    }
    for (pattern = strtok_r(copy, ":", &save); !ret && pattern;
         pattern = strtok_r(NULL, ":", &save)) {
        uint64_t matched = 0;

        for (int ev = 0; ev < TRACE_EVENT_COUNT; ev++) {
            if (!fnmatch(pattern, trace_events[ev].name, 0)) {
                matched |= 1ULL << ev;
            }
        }
        if (!matched) {
            ret = spec_error(err, errlen,
                             "events=: '%s' matches no event (names such as "
                             "ahci_cmd, virtq_pop, irq)",
                             pattern);
        }
        *mask |= matched;
    }
    free(copy);
    return ret;
}

static int parse_size(const char *val, size_t *size, char *err, size_t errlen)
{
    unsigned long long n;
    char *end;

    errno = 0;
    n = strtoull(val, &end, 10);
    if (val[0] < '0' || val[0] > '9' || *end || errno || n < TRACE_SIZE_MIN ||
        n > TRACE_SIZE_MAX) {
        return spec_error(err, errlen,
                          "size= is records per thread, %d to %d, not '%s'",
                          TRACE_SIZE_MIN, TRACE_SIZE_MAX, val);
    }
    *size = n;
    return 0;
}

/* What the options after the FILE asked for. */
typedef struct TraceOptions {
    char *events; /* the events= patterns as given; NULL: all */
    uint64_t mask;
    size_t size;
    bool has_events, has_size;
} TraceOptions;

/* One "key=value" after the FILE. */
static int parse_option(char *item, TraceOptions *o, char *err, size_t errlen)
{
    char *eq = strchr(item, '=');
    const char *val;

    if (!eq) {
        return spec_error(err, errlen,
                          "'%s' is not key=value (FILE[,events=GLOB][,size=N])",
                          item);
    }
    *eq = '\0';
    val = eq + 1;
    if (!strcmp(item, "events")) {
        if (o->has_events) {
            return spec_error(err, errlen, "events= given twice");
        }
        o->has_events = true;
        o->events = strdup(val);
        if (!o->events) {
            return spec_error(err, errlen, "out of memory");
        }
        return parse_events(val, &o->mask, err, errlen);
    }
    if (!strcmp(item, "size")) {
        if (o->has_size) {
            return spec_error(err, errlen, "size= given twice");
        }
        o->has_size = true;
        return parse_size(val, &o->size, err, errlen);
    }
    *eq = '=';
    return spec_error(
        err, errlen, "unknown option '%s' (FILE[,events=GLOB][,size=N])", item);
}

int trace_start(const char *spec, char *err, size_t errlen)
{
    const char *comma = strchr(spec, ',');
    size_t path_len = comma ? (size_t)(comma - spec) : strlen(spec);
    TraceOptions o = {.mask = (1ULL << TRACE_EVENT_COUNT) - 1,
                      .size = TRACE_SIZE_DEFAULT};
    char *copy = NULL, *path = NULL, *item, *next;
    FILE *file = NULL;
    int ret = 0;

    if (trace_active()) {
        return spec_error(err, errlen, "tracing is already on");
    }
    if (path_len == 0) {
        return spec_error(
            err, errlen, "no FILE in '%s' (FILE[,events=GLOB][,size=N])", spec);
    }
    copy = strdup(spec);
    path = strndup(spec, path_len);
    if (!copy || !path) {
        ret = spec_error(err, errlen, "out of memory");
    }
    /* Split by hand: strtok_r() would take ",size=N" for a FILE. */
    for (item = copy && comma ? copy + path_len + 1 : NULL; !ret && item;
         item = next) {
        next = strchr(item, ',');
        if (next) {
            *next++ = '\0';
        }
        ret = parse_option(item, &o, err, errlen);
    }
    free(copy);
    if (ret == 0) {
        /* Now, not at exit: a path that cannot be written is a usage error. */
        file = fopen(path, "we");
        if (!file) {
            ret = spec_error(err, errlen, "cannot create %s: %s", path,
                             strerror(errno));
        } else {
            /* Big writes: a trace can be a gigabyte. */
            setvbuf(file, NULL, _IOFBF, TRACE_FILE_BUFFER);
        }
    }
    if (ret < 0) {
        free(path);
        free(o.events);
        return ret;
    }
    trace_state.file = file;
    trace_state.path = path;
    trace_state.events = o.events;
    trace_state.size = o.size;
    trace_state.generation++; /* every thread makes a new ring */
    atomic_store(&trace_state.next_id, 1);
    trace_event_mask = o.mask;
    return 0;
}

/* ---- trace_finish() ----------------------------------------------------- */

int trace_finish(void)
{
    int ret = 0;

    trace_event_mask = 0;
    if (trace_state.file) {
        ret = trace_write_json(trace_state.file);
        if (fclose(trace_state.file) != 0 && ret == 0) {
            ret = -errno;
        }
        if (ret < 0) {
            log_error("trace: cannot write %s: %s", trace_state.path,
                      strerror(-ret));
        }
        trace_state.file = NULL;
    }
    while (trace_state.threads) {
        TraceThread *t = trace_state.threads;

        trace_state.threads = t->next;
        free(t);
    }
    while (trace_state.strings) {
        TraceString *s = trace_state.strings;

        trace_state.strings = s->next;
        free(s);
    }
    free(trace_state.path);
    free(trace_state.events);
    trace_state.path = trace_state.events = NULL;
    trace_state
        .generation++; /* the rings are gone: no thread may use its own */
    return ret;
}
