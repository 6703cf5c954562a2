/*
 * What util/trace.c records and util/trace-json.c writes: not for trace
 * points, which use util/trace.h.
 */
#ifndef MINIVMM_UTIL_TRACE_INTERNAL_H
#define MINIVMM_UTIL_TRACE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/types.h>

#include "util/trace.h"

#define TRACE_FILE_BUFFER (1 << 20)
#define TRACE_NAME_LEN    16 /* 15 characters, as a comm */

/* An event's names, from TRACE_EVENTS: "" for an argument it does not use. */
typedef struct TraceEventInfo {
    const char *name;
    const char *arg[TRACE_MAX_ARGS];
    const char *str[TRACE_MAX_STRS];
} TraceEventInfo;

extern const TraceEventInfo trace_events[TRACE_EVENT_COUNT];

typedef struct TraceRecord {
    int64_t ts_ns; /* clock_ns() */
    uint64_t id;
    uint16_t event; /* a TraceEvent */
    uint64_t a[TRACE_MAX_ARGS];
    const char *s[TRACE_MAX_STRS];
} TraceRecord;

/* One thread's ring; only that thread writes it, until trace_finish(). */
typedef struct TraceThread {
    struct TraceThread *next; /* on trace_state.threads */
    pid_t tid;
    char name[TRACE_NAME_LEN];
    size_t cap;       /* records in rec[] */
    size_t next_slot; /* where the next record goes */
    uint64_t emitted; /* records ever written: above cap, the oldest lost */
    TraceRecord rec[];
} TraceThread;

typedef struct TraceString {
    struct TraceString *next;
    char s[];
} TraceString;

typedef struct TraceState {
    pthread_mutex_t lock; /* threads and strings */
    FILE *file;           /* open from trace_start() to trace_finish() */
    char *path;
    char *events; /* the events= patterns as given; NULL: all */
    size_t size;  /* records per thread */
    /* Changes when the rings are made or freed (see trace.c's self). */
    unsigned generation;
    atomic_uint_fast64_t next_id;
    TraceThread *threads;
    TraceString *strings;
} TraceState;

extern TraceState trace_state;

/* Write every ring to @f as Chrome's Trace Event JSON; 0 or -errno. */
int trace_write_json(FILE *f);

#endif
