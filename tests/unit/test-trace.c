/*
 * Trace events (util/trace.c, util/trace-json.c): what a trace point
 * records comes out in the file as Perfetto reads it.
 *
 * The file test emits from three named threads, one after another so that
 * the order is known: a request born on "main" goes through "vcpu0" and
 * "iothread0" and ends on "main", and "iothread0" overflows its ring. The
 * file is checked as JSON by a small validator here (and by python3's json
 * module when there is one), then line by line: the writer puts one event
 * on each line.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "tests/unit/suites.h"
#include "util/trace.h"

#define RING       1024 /* the smallest size= */
#define SLEEPS     3000 /* loop_sleep records iothread0 emits: overflows */
#define MAX_EVENTS 4096

/* ---- A JSON validator: just enough to say a document is well formed --- */

static bool json_value(const char **p);

static void json_space(const char **p)
{
    while (**p == ' ' || **p == '\n' || **p == '\t' || **p == '\r') {
        (*p)++;
    }
}

static bool json_string(const char **p)
{
    if (**p != '"') {
        return false;
    }
    for ((*p)++; **p != '"'; (*p)++) {
        if ((unsigned char)**p < 0x20) {
            return false;
        }
        if (**p == '\\') {
            (*p)++;
            if (**p == 'u') {
                for (int i = 1; i <= 4; i++) {
                    if (!strchr("0123456789abcdefABCDEF", (*p)[i]) ||
                        !(*p)[i]) {
                        return false;
                    }
                }
                *p += 4;
            } else if (!**p || !strchr("\"\\/bfnrt", **p)) {
                return false;
            }
        }
    }
    (*p)++;
    return true;
}

static bool json_number(const char **p)
{
    const char *start;

    if (**p == '-') {
        (*p)++;
    }
    start = *p;
    while (**p >= '0' && **p <= '9') {
        (*p)++;
    }
    if (*p == start || (*start == '0' && *p - start > 1)) {
        return false;
    }
    if (**p == '.') {
        start = ++*p;
        while (**p >= '0' && **p <= '9') {
            (*p)++;
        }
        if (*p == start) {
            return false;
        }
    }
    return true; /* the writer never uses exponents */
}

/* '{' members '}' or '[' values ']', after the opening character. */
static bool json_list(const char **p, char close, bool members)
{
    json_space(p);
    if (**p == close) {
        (*p)++;
        return true;
    }
    for (;;) {
        json_space(p);
        if (members) {
            if (!json_string(p)) {
                return false;
            }
            json_space(p);
            if (*(*p)++ != ':') {
                return false;
            }
        }
        if (!json_value(p)) {
            return false;
        }
        json_space(p);
        if (**p == close) {
            (*p)++;
            return true;
        }
        if (*(*p)++ != ',') {
            return false;
        }
    }
}

static bool json_value(const char **p)
{
    json_space(p);
    switch (**p) {
    case '{':
        (*p)++;
        return json_list(p, '}', true);
    case '[':
        (*p)++;
        return json_list(p, ']', false);
    case '"':
        return json_string(p);
    case 't':
    case 'f':
    case 'n':
        for (const char *const *w =
                 (const char *[]){"true", "false", "null", NULL};
             *w; w++) {
            if (!strncmp(*p, *w, strlen(*w))) {
                *p += strlen(*w);
                return true;
            }
        }
        return false;
    default:
        return json_number(p);
    }
}

static bool json_valid(const char *doc)
{
    const char *p = doc;

    if (!json_value(&p)) {
        return false;
    }
    json_space(&p);
    return *p == '\0';
}

/* ---- Reading the file back --------------------------------------------- */

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
    ck_assert_int_eq(fread(buf, 1, len, f), len);
    buf[len] = '\0';
    fclose(f);
    return buf;
}

/* The value after "key": in @line, or NULL. */
static const char *field(const char *line, const char *key)
{
    char pat[64];
    const char *at;

    snprintf(pat, sizeof(pat), "\"%s\":", key);
    at = strstr(line, pat);
    return at ? at + strlen(pat) : NULL;
}

static int64_t int_field(const char *line, const char *key)
{
    const char *v = field(line, key);

    ck_assert_msg(v, "no %s in %s", key, line);
    return strtoll(v, NULL, 10);
}

/* A time in the file's microseconds with three decimals, in ns. */
static int64_t us_field(const char *line, const char *key)
{
    const char *v = field(line, key);
    char *dot;
    int64_t us;

    ck_assert_msg(v, "no %s in %s", key, line);
    us = strtoll(v, &dot, 10);
    ck_assert_msg(*dot == '.' && dot[4] < '0', "%s not to the ns: %s", key,
                  line);
    return us * 1000 + strtoll(dot + 1, NULL, 10);
}

static bool has(const char *line, const char *s)
{
    return strstr(line, s) != NULL;
}

static char *temp_path(void)
{
    static char path[64];
    int fd;

    snprintf(path, sizeof(path), "/tmp/minivmm-trace-XXXXXX");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    return path;
}

/* ---- The file ------------------------------------------------------------ */

static uint64_t req, lone_req; /* one crosses all threads; one does not */
static pid_t tid_main, tid_vcpu, tid_io;
static char os_name[16], main_name[16]; /* prctl(PR_GET_NAME) */

/* Named only after its first record: a rename must still reach the file. */
static void *vcpu_thread(void *opaque)
{
    (void)opaque;
    tid_vcpu = gettid();
    TRACE(VCPU_EXIT, lone_req, .a = {0, 0xfebf0138, 4, 1});
    trace_set_thread_name("vcpu0");
    ck_assert_int_eq(prctl(PR_GET_NAME, os_name, 0, 0, 0), 0);
    ck_assert_str_eq(os_name, "vcpu0"); /* as top -H shows it */
    TRACE(BLK_SUBMIT, req, .a = {4096, 512}, .s = {"read", "q\"uote\\"});
    return NULL;
}

/* Named before it records; then more records than its ring holds. */
static void *iothread_thread(void *opaque)
{
    (void)opaque;
    tid_io = gettid();
    trace_set_thread_name("iothread0");
    for (int i = 0; i < SLEEPS; i++) {
        TRACE(LOOP_SLEEP, 0, .a = {i}, .s = {"iothread0"});
    }
    TRACE(CQE_DISPATCH, req, .a = {(uint64_t)-5}); /* no ctx: left out */
    return NULL;
}

static void run_thread(void *(*fn)(void *))
{
    pthread_t t;

    ck_assert_int_eq(pthread_create(&t, NULL, fn, NULL), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
}

typedef struct Event {
    const char *line;
    bool flow;
    int64_t ts;
    pid_t tid;
} Event;

START_TEST(test_trace_file)
{
    char spec[128], want[256], err[256];
    const char *path = temp_path();
    static Event ev[MAX_EVENTS];
    int n = 0, nx = 0, kept_sleeps = 0, first_sleep = -1, last_sleep = -1;
    char *doc, *save = NULL, *line;
    const char *x_cmd = NULL, *x_blk = NULL, *x_cqe = NULL, *x_irq = NULL;
    const char *flows = NULL;
    int64_t last_ts = 0, pid = getpid();
    char phases[8] = "";

    snprintf(spec, sizeof(spec), "%s,size=%d", path, RING);
    ck_assert_int_eq(trace_start(spec, err, sizeof(err)), 0);
    ck_assert(trace_active());
    tid_main = gettid();
    ck_assert_int_eq(prctl(PR_GET_NAME, main_name, 0, 0, 0), 0);
    trace_set_thread_name("main");
    /* The main thread keeps the process's name. */
    ck_assert_int_eq(prctl(PR_GET_NAME, os_name, 0, 0, 0), 0);
    ck_assert_str_eq(os_name, main_name);
    req = trace_new_id();
    lone_req = trace_new_id();
    ck_assert(req != 0 && lone_req != 0 && req != lone_req);
    TRACE(AHCI_CMD, req, .a = {1, 2, 0x25, 100, 8});
    run_thread(vcpu_thread);
    run_thread(iothread_thread);
    TRACE(AHCI_DONE, req, .a = {1, 2, 0x50}, .s = {"sdb"});
    TRACE(IRQ, req, .a = {33, 1}); /* no "how": left out */
    ck_assert_int_eq(trace_finish(), 0);
    ck_assert(!trace_active());
    ck_assert_int_eq(trace_event_mask, 0);

    doc = slurp(path);
    ck_assert_msg(json_valid(doc), "not JSON: %.300s", doc);
    if (access("/usr/bin/python3", X_OK) == 0) {
        char cmd[256];

        snprintf(cmd, sizeof(cmd),
                 "python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "
                 "%s",
                 path);
        ck_assert_int_eq(system(cmd), 0);
    }
    ck_assert(!strncmp(doc, "{\"traceEvents\":[\n", 17));
    ck_assert(has(doc, "\"displayTimeUnit\":\"ns\""));
    snprintf(want, sizeof(want),
             "\"otherData\":{\"format\":\"minivmm-trace-1\",\"clock\":"
             "\"CLOCK_MONOTONIC\",\"dropped\":%d,\"events\":\"*\"}}\n",
             SLEEPS + 1 - RING);
    ck_assert_msg(has(doc, want), "no %s", want);

    /* Each thread's track: its name, and main, vcpu0, iothread0 in order. */
    const struct {
        pid_t tid;
        const char *name;
    } tracks[] = {
        {tid_main, "main"}, {tid_vcpu, "vcpu0"}, {tid_io, "iothread0"}};
    for (int i = 0; i < 3; i++) {
        snprintf(want, sizeof(want),
                 "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,"
                 "\"tid\":%d,\"args\":{\"name\":\"%s\"}}",
                 (int)pid, (int)tracks[i].tid, tracks[i].name);
        ck_assert_msg(has(doc, want), "no %s", want);
        snprintf(want, sizeof(want),
                 "{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":%d,"
                 "\"tid\":%d,\"args\":{\"sort_index\":%d}}",
                 (int)pid, (int)tracks[i].tid, i);
        ck_assert_msg(has(doc, want), "no %s", want);
    }

    /* The slices and flow events, in the file's order. */
    for (line = strtok_r(doc, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        bool x = has(line, "\"ph\":\"X\"");
        bool flow = has(line, "\"cat\":\"req\"");

        if (!x && !flow) {
            continue;
        }
        ck_assert_int_lt(n, MAX_EVENTS);
        ev[n] = (Event){line, flow, us_field(line, "ts"),
                        (pid_t)int_field(line, "tid")};
        ck_assert_int_eq(int_field(line, "pid"), pid);
        /* In time order; a flow event sits on its slice's instant. */
        ck_assert_int_ge(ev[n].ts, last_ts);
        last_ts = ev[n].ts;
        if (flow) {
            ck_assert_int_eq(int_field(line, "id"), req);
            ck_assert(has(line, "\"name\":\"request\""));
            ck_assert(has(line, "\"bp\":\"e\""));
            ck_assert_msg(n > 0 && !ev[n - 1].flow &&
                              ev[n - 1].ts == ev[n].ts &&
                              ev[n - 1].tid == ev[n].tid,
                          "flow not on its slice: %s", line);
            ck_assert_int_eq(int_field(ev[n - 1].line, "req"), req);
            strncat(phases, field(line, "ph") + 1, 1);
            flows = flows ? flows : line;
        } else {
            nx++;
            ck_assert(has(line, "\"cat\":\"minivmm\""));
            /* The raw reading; the track time is never before it. */
            ck_assert_int_ge(ev[n].ts, int_field(line, "ts_ns"));
            ck_assert_int_ge(us_field(line, "dur"), 1);
        }
        if (has(line, "\"name\":\"ahci_cmd\"")) {
            x_cmd = line;
        } else if (has(line, "\"name\":\"blk_submit\"")) {
            x_blk = line;
        } else if (has(line, "\"name\":\"cqe_dispatch\"")) {
            x_cqe = line;
        } else if (has(line, "\"name\":\"irq\"")) {
            x_irq = line;
        } else if (has(line, "\"name\":\"loop_sleep\"")) {
            int timeout = (int)int_field(line, "timeout_ns");

            ck_assert_int_eq(ev[n].tid, tid_io);
            /* Oldest first, none missing in between. */
            ck_assert(first_sleep < 0 || timeout == last_sleep + 1);
            if (first_sleep < 0) {
                first_sleep = timeout;
            }
            last_sleep = timeout;
            kept_sleeps++;
        }
        n++;
    }

    /* iothread0 kept the newest records its ring holds, and only those. */
    ck_assert_int_eq(kept_sleeps, RING - 1);
    ck_assert_int_eq(first_sleep, SLEEPS + 1 - RING);
    ck_assert_int_eq(last_sleep, SLEEPS - 1);
    /* ahci_cmd, vcpu_exit, blk_submit, the sleeps, cqe_dispatch, 2 on main */
    ck_assert_int_eq(nx, 1 + 2 + (RING - 1) + 1 + 2);

    /* Every named argument, numbers signed, strings escaped, NULL left out. */
    ck_assert_ptr_nonnull(x_cmd);
    snprintf(want, sizeof(want),
             "\"args\":{\"req\":%" PRIu64 ",\"ts_ns\":", req);
    ck_assert_msg(has(x_cmd, want), "%s", x_cmd);
    ck_assert_msg(has(x_cmd, ",\"port\":1,\"slot\":2,\"cmd\":37,\"lba\":100,"
                             "\"count\":8}}"),
                  "%s", x_cmd);
    ck_assert_msg(has(x_blk, ",\"offset\":4096,\"bytes\":512,\"op\":\"read\","
                             "\"ctx\":\"q\\\"uote\\\\\"}}"),
                  "%s", x_blk);
    ck_assert_msg(has(x_cqe, ",\"res\":-5}}"), "%s", x_cqe);
    ck_assert_msg(has(x_irq, ",\"vector\":33,\"level\":1}}"), "%s", x_irq);

    /* The request's arrow: main, vcpu0, iothread0, main (ahci_done), irq. */
    ck_assert_str_eq(phases, "stttf");
    ck_assert_ptr_nonnull(flows);

    /* Slices on one track never overlap; a sleep lasts until the wake. */
    for (int i = 0; i < n; i++) {
        int next = i + 1;

        if (ev[i].flow) {
            continue;
        }
        while (next < n && (ev[next].flow || ev[next].tid != ev[i].tid)) {
            next++;
        }
        if (next == n) {
            continue;
        }
        int64_t end = ev[i].ts + us_field(ev[i].line, "dur");

        ck_assert_msg(end <= ev[next].ts, "overlap: %s", ev[i].line);
        if (has(ev[i].line, "\"name\":\"loop_sleep\"")) {
            ck_assert_int_eq(end, ev[next].ts);
        } else {
            ck_assert_int_le(us_field(ev[i].line, "dur"), 1000);
        }
    }
    free(doc);
    unlink(path);
}
END_TEST

/* ---- The spec --------------------------------------------------------------
 */

START_TEST(test_trace_bad_specs)
{
    char *path = temp_path();
    char spec[160], err[256];
    static const struct {
        const char *opts; /* after the temporary FILE */
        const char *mentions;
    } cases[] = {
        {",bogus=1", "bogus"},
        {",size", "'size' is not key=value"},
        {",events=nomatch*", "'nomatch*' matches no event"},
        {",events=ahci_*:nomatch", "'nomatch' matches no event"},
        {",events=", "empty pattern"},
        {",events=ahci_*::irq", "empty pattern"},
        {",events=irq,events=irq", "events= given twice"},
        {",size=1023", "'1023'"},
        {",size=-1", "'-1'"},
        {",size=4k", "'4k'"},
        {",size=16777217", "16777216"},
        {",size=2048,size=4096", "size= given twice"},
    };

    unlink(path); /* a spec refused before the FILE is opened creates none */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(spec, sizeof(spec), "%s%s", path, cases[i].opts);
        err[0] = '\0';
        ck_assert_int_eq(trace_start(spec, err, sizeof(err)), -EINVAL);
        ck_assert_msg(has(err, cases[i].mentions), "%s: '%s'", spec, err);
        ck_assert_msg(!strchr(err, '\n'), "%s: not one line", spec);
        ck_assert(!trace_active());
        ck_assert_int_eq(trace_event_mask, 0);
        ck_assert_int_ne(access(path, F_OK), 0);
    }
    ck_assert_int_eq(trace_start("", err, sizeof(err)), -EINVAL);
    ck_assert_msg(has(err, "no FILE"), "%s", err);
    ck_assert_int_eq(trace_start(",size=2048", err, sizeof(err)), -EINVAL);
    ck_assert_msg(has(err, "no FILE"), "%s", err);
    /* A path that cannot be created fails now, not at exit. */
    ck_assert_int_eq(trace_start("/nonexistent/dir/x.json", err, sizeof(err)),
                     -EINVAL);
    ck_assert_msg(has(err, "/nonexistent/dir/x.json") &&
                      has(err, "No such file or directory"),
                  "%s", err);
    ck_assert(!trace_active());
    ck_assert_int_eq(trace_event_mask, 0);

    /* Started once, a second start is refused and the first goes on. */
    ck_assert_int_eq(trace_start(path, err, sizeof(err)), 0);
    ck_assert_int_eq(trace_start(path, err, sizeof(err)), -EINVAL);
    ck_assert(trace_active());
    ck_assert_int_eq(trace_finish(), 0);
    unlink(path);
}
END_TEST

START_TEST(test_trace_event_globs)
{
    char *path = temp_path();
    char spec[160], err[256];
    const struct {
        const char *glob;
        uint64_t mask;
    } cases[] = {
        {"ahci_*", 1ULL << TRACE_AHCI_PXCI | 1ULL << TRACE_AHCI_CMD |
                       1ULL << TRACE_AHCI_DONE},
        {"irq:blk_*", 1ULL << TRACE_IRQ | 1ULL << TRACE_BLK_SUBMIT},
        {"loop_[sw]*", 1ULL << TRACE_LOOP_SLEEP | 1ULL << TRACE_LOOP_WAKE},
        {"*", (1ULL << TRACE_EVENT_COUNT) - 1},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(spec, sizeof(spec), "%s,events=%s", path, cases[i].glob);
        ck_assert_int_eq(trace_start(spec, err, sizeof(err)), 0);
        ck_assert_msg(trace_event_mask == cases[i].mask, "%s: %#" PRIx64,
                      cases[i].glob, trace_event_mask);
        ck_assert_int_eq(trace_finish(), 0);
    }
    /* No events=: all of them, and the file says which were asked for. */
    ck_assert_int_eq(trace_start(path, err, sizeof(err)), 0);
    ck_assert(trace_event_mask == (1ULL << TRACE_EVENT_COUNT) - 1);
    ck_assert_int_eq(trace_finish(), 0);
    snprintf(spec, sizeof(spec), "%s,events=ahci_*:irq", path);
    ck_assert_int_eq(trace_start(spec, err, sizeof(err)), 0);
    ck_assert_int_eq(trace_finish(), 0);
    char *doc = slurp(path);
    ck_assert_msg(has(doc, "\"events\":\"ahci_*:irq\"}"), "%s", doc);
    free(doc);
    unlink(path);
}
END_TEST

/* ---- What tracing costs while off, and the small parts ------------------- */

static int probes;

static uint64_t probe(void)
{
    probes++;
    return 7;
}

START_TEST(test_trace_off_evaluates_nothing)
{
    char *path = temp_path();
    char spec[160], err[256];
    char *doc;

    /* Off: the arguments are not even evaluated, so nothing is emitted. */
    TRACE(AHCI_CMD, probe(), .a = {probe()});
    ck_assert_int_eq(probes, 0);
    ck_assert_int_eq(trace_new_id(), 0);

    snprintf(spec, sizeof(spec), "%s,events=ahci_cmd", path);
    ck_assert_int_eq(trace_start(spec, err, sizeof(err)), 0);
    ck_assert_int_eq(trace_new_id(), 1); /* ids start at 1 */
    ck_assert_int_eq(trace_new_id(), 2);
    TRACE(IRQ, probe()); /* an event not asked for is off too */
    ck_assert_int_eq(probes, 0);
    TRACE(AHCI_CMD, probe(), .a = {1});
    ck_assert_int_eq(probes, 1);
    ck_assert_int_eq(trace_emitted(), 1);
    ck_assert_int_eq(trace_finish(), 0);
    ck_assert_int_eq(trace_emitted(), 0);

    TRACE(AHCI_CMD, probe());
    ck_assert_int_eq(probes, 1);
    ck_assert_int_eq(trace_new_id(), 0);
    doc = slurp(path);
    ck_assert(has(doc, "\"name\":\"ahci_cmd\""));
    ck_assert(has(doc, "\"req\":7,"));
    ck_assert(!has(doc, "\"name\":\"irq\""));
    free(doc);
    unlink(path);
}
END_TEST

static pid_t tid_unnamed;

static void *unnamed_thread(void *opaque)
{
    (void)opaque;
    tid_unnamed = gettid();
    TRACE(IRQ, 0, .a = {1, 1});
    return NULL;
}

static void *long_named_thread(void *opaque)
{
    (void)opaque;
    trace_set_thread_name("0123456789abcdefghij");
    TRACE(IRQ, 0, .a = {1, 1});
    return NULL;
}

START_TEST(test_trace_thread_names)
{
    char *path = temp_path();
    char want[64], err[256];
    char *doc;

    ck_assert_int_eq(trace_start(path, err, sizeof(err)), 0);
    run_thread(unnamed_thread);
    run_thread(long_named_thread);
    ck_assert_int_eq(trace_finish(), 0);
    doc = slurp(path);
    snprintf(want, sizeof(want), "{\"name\":\"thread-%d\"}", (int)tid_unnamed);
    ck_assert_msg(has(doc, want), "no %s in %s", want, doc);
    ck_assert_msg(has(doc, "{\"name\":\"0123456789abcde\"}"), "%s", doc);
    free(doc);
    unlink(path);
}
END_TEST

START_TEST(test_trace_intern)
{
    char name[] = "disk0";
    const char *a = trace_intern(name), *b;

    ck_assert_ptr_ne(a, name);
    ck_assert_str_eq(a, "disk0");
    name[0] = 'X'; /* the copy does not follow its source */
    ck_assert_str_eq(a, "disk0");
    b = trace_intern("disk0");
    ck_assert_ptr_eq(a, b);
    ck_assert_ptr_null(trace_intern(NULL));
    ck_assert_int_eq(trace_finish(), 0); /* frees them; not tracing: no file */
}
END_TEST

/* A file that cannot be written at exit: an error, and tracing still ends. */
START_TEST(test_trace_write_failure)
{
    char err[256];

    ck_assert_int_eq(trace_start("/dev/full", err, sizeof(err)), 0);
    TRACE(IRQ, 0, .a = {1, 1});
    ck_assert_int_eq(trace_finish(), -ENOSPC);
    ck_assert(!trace_active());
    ck_assert_int_eq(trace_event_mask, 0);
}
END_TEST

Suite *trace_suite(void)
{
    Suite *s = suite_create("trace");
    TCase *tc = tcase_create("trace");

    tcase_add_test(tc, test_trace_file);
    tcase_add_test(tc, test_trace_bad_specs);
    tcase_add_test(tc, test_trace_event_globs);
    tcase_add_test(tc, test_trace_off_evaluates_nothing);
    tcase_add_test(tc, test_trace_thread_names);
    tcase_add_test(tc, test_trace_intern);
    tcase_add_test(tc, test_trace_write_failure);
    suite_add_tcase(s, tc);
    return s;
}
