/* What the trace points cost: the parts bench-aio and bench-block share. */
#include "tests/bench/trace-cost.h"

#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/bench/sort.h"
#include "util/trace.h"

static char trace_path[128];

void trace_cost_pin(void)
{
    int cpu = sched_getcpu();
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(cpu < 0 ? 0 : cpu, &set);
    sched_setaffinity(0, sizeof(set), &set);
}

const char *trace_cost_self(void)
{
    static char path[4096];
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);

    if (n <= 0) {
        return NULL;
    }
    path[n] = '\0';
    return path;
}

int trace_cost_child(const char *bin, const char *args, double *value)
{
    char cmd[8192], line[512];
    size_t tag_len = strlen(TRACE_COST_CHILD_TAG);
    bool found = false;
    FILE *p;

    snprintf(cmd, sizeof(cmd), "%s %s", bin, args);
    fflush(stdout);
    p = popen(cmd, "r");
    if (!p) {
        fprintf(stderr, "trace-cost: cannot run %s\n", cmd);
        return -1;
    }
    while (fgets(line, sizeof(line), p)) {
        if (!strncmp(line, TRACE_COST_CHILD_TAG, tag_len)) {
            found = sscanf(line + tag_len, "%lf", value) == 1;
        }
    }
    if (pclose(p) != 0 || !found) {
        fprintf(stderr, "trace-cost: %s failed or printed no figure\n", cmd);
        return -1;
    }
    return 0;
}

int trace_cost_off_rounds(const char *in_bin, const char *out_bin,
                          const char *args, int rounds, double *in, double *out)
{
    for (int k = 0; k < rounds; k++) {
        bool in_first = trace_cost_in_first(k);

        if (trace_cost_child(in_first ? in_bin : out_bin, args,
                             in_first ? &in[k] : &out[k]) < 0 ||
            trace_cost_child(in_first ? out_bin : in_bin, args,
                             in_first ? &out[k] : &in[k]) < 0) {
            return -1;
        }
    }
    return 0;
}

int trace_cost_start(void)
{
    char spec[160], err[256];

    snprintf(trace_path, sizeof(trace_path),
             "/var/tmp/minivmm-bench-trace-%d.json", (int)getpid());
    snprintf(spec, sizeof(spec), "%s,events=*", trace_path);
    if (trace_start(spec, err, sizeof(err)) < 0) {
        fprintf(stderr, "trace-cost: %s\n", err);
        return -1;
    }
    return 0;
}

uint64_t trace_cost_stop(void)
{
    uint64_t emitted = trace_emitted();

    trace_finish();
    /* To look at what the runs recorded: scripts/trace-report FILE. */
    if (!getenv("BENCH_TRACE_KEEP")) {
        unlink(trace_path);
    }
    return emitted;
}

void cost_print(const char *tag, const char *how, const char *what,
                const char *name, const double *ratio, const char *dname,
                const double *delta, int n)
{
    TraceCostStats r = trace_cost_stats(ratio, n);
    TraceCostStats d = trace_cost_stats(delta, n);

    printf("%s: %s %s=%.3f %s=%+.1f (%s, median of %d, 95%% CI %.3f..%.3f, "
           "spread %.3f..%.3f)\n",
           tag, what, name, r.median, dname, d.median, how, n, r.ci_lo, r.ci_hi,
           r.lo, r.hi);
    fflush(stdout);
}

void trace_cost_print(bool on, const char *what, const char *name,
                      const double *ratio, const char *dname,
                      const double *delta, int n)
{
    cost_print(on ? "trace-on-cost" : "trace-off-cost",
               on ? "traced (events=*) / not, interleaved in one process"
                  : "compiled-in-off / compiled-out, alternating whole runs "
                    "of two binaries",
               what, name, ratio, dname, delta, n);
}

TraceCostStats trace_cost_stats(const double *v, int n)
{
    /* Ranks n/2 -+ 1.96 sqrt(n)/2 (1-based), the normal approximation. */
    double half = 0.98 * sqrt(n);
    int j = (int)floor(n / 2.0 - half), k = (int)ceil(n / 2.0 + half + 1);
    double *sorted = n > 0 ? malloc((size_t)n * sizeof(*v)) : NULL;
    TraceCostStats st = {0};

    if (!sorted) {
        return st;
    }
    memcpy(sorted, v, (size_t)n * sizeof(*v));
    qsort(sorted, n, sizeof(*sorted), cmp_double);
    st = (TraceCostStats){
        .median =
            n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
        .lo = sorted[0],
        .hi = sorted[n - 1],
        .ci_lo = sorted[j < 1 ? 0 : j - 1],
        .ci_hi = sorted[k > n ? n - 1 : k - 1],
    };
    free(sorted);
    return st;
}
