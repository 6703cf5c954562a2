/* bench-uring's configurations, medians and tables (bench-uring-stats.h). */
#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aio/aio.h"
#include "tests/bench/bench-uring-stats.h"
#include "tests/bench/sort.h"

/*
 * The workload whose weighted vs grow-shrink ratios end the output: a real
 * wait for the disk, with the flags an IOThread gets by default (the same
 * ratios without flags are printed above it).
 */
#define WEIGHTED_TARGET TARGET_FILE
#define WEIGHTED_QD     1
#define WEIGHTED_FLAGS  DEFAULT_FLAGS

const FlagSet flag_sets[NFLAGS] = {
    {"none", 0},
    {"single-issuer", IORING_SETUP_SINGLE_ISSUER},
    {"+coop", IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN |
                  IORING_SETUP_TASKRUN_FLAG},
    {"+defer", IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN |
                   IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_DEFER_TASKRUN},
};
const char *const target_names[2] = {"null", "file"};
const unsigned qds[2] = {1, MAX_QD};
static const char *const poll_names[] = {"off", "grow-shrink", "weighted",
                                         "main-loop"};

Config configs[MAX_CONFIGS];
unsigned nconfigs;

/* ---- Samples ------------------------------------------------------------ */

void samples_add(Samples *s, double iops, double cpu_us_per_io,
                 double sys_us_per_io, double poll_us_per_io)
{
    if (s->n < STATS_MAX_ROUNDS) {
        s->iops[s->n] = iops;
        s->cpu_us_per_io[s->n] = cpu_us_per_io;
        s->sys_us_per_io[s->n] = sys_us_per_io;
        s->poll_us_per_io[s->n] = poll_us_per_io;
        s->n++;
    }
}

/* Sorts a copy: the samples stay in round order. */
static void sorted(const double *v, unsigned n, double *out)
{
    memcpy(out, v, n * sizeof(*v));
    qsort(out, n, sizeof(*out), cmp_double);
}

static double median(const double *v, unsigned n)
{
    double s[STATS_MAX_ROUNDS];

    if (!n) {
        return 0;
    }
    sorted(v, n, s);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

double samples_median_iops(const Samples *s)
{
    return median(s->iops, s->n);
}

double samples_median_cpu(const Samples *s)
{
    return median(s->cpu_us_per_io, s->n);
}

double samples_median_sys(const Samples *s)
{
    return median(s->sys_us_per_io, s->n);
}

double samples_median_poll(const Samples *s)
{
    return median(s->poll_us_per_io, s->n);
}

double samples_spread_pct(const Samples *s)
{
    double v[STATS_MAX_ROUNDS], med = samples_median_iops(s);

    if (!s->n || med <= 0) {
        return 0;
    }
    sorted(s->iops, s->n, v);
    return (v[s->n - 1] - v[0]) / med * 100;
}

/* ---- Configurations ----------------------------------------------------- */

Config *config_find(int target, unsigned qd, unsigned flags_idx, int poll,
                    unsigned weight)
{
    for (unsigned i = 0; i < nconfigs; i++) {
        Config *c = &configs[i];

        if (c->target == target && c->qd == qd && c->flags_idx == flags_idx &&
            c->poll == poll && (poll != POLL_WEIGHTED || c->weight == weight)) {
            return c;
        }
    }
    return NULL;
}

void config_want(int target, unsigned qd, unsigned flags_idx, int poll,
                 unsigned weight)
{
    if (config_find(target, qd, flags_idx, poll, weight)) {
        return;
    }
    if (nconfigs == MAX_CONFIGS) {
        fprintf(stderr, "bench-uring: more than %d configurations\n",
                MAX_CONFIGS);
        exit(1);
    }
    configs[nconfigs++] = (Config){.target = target,
                                   .qd = qd,
                                   .flags_idx = flags_idx,
                                   .poll = poll,
                                   .weight = weight};
}

/* Ratio of two configurations' medians: IOPS, or with @cpu CPU per I/O. */
static double ratio(const Config *c, const Config *base, bool cpu)
{
    double b;

    if (!c || !base) {
        return 0;
    }
    b = cpu ? samples_median_cpu(&base->s) : samples_median_iops(&base->s);
    if (b <= 0) {
        return 0;
    }
    return (cpu ? samples_median_cpu(&c->s) : samples_median_iops(&c->s)) / b;
}

/* What a row is compared with: grow-shrink, or the main loop without flags. */
static const Config *baseline(const Config *c, unsigned flags_idx)
{
    return config_find(
        c->target, c->qd, flags_idx,
        c->poll == POLL_MAIN_LOOP ? POLL_MAIN_LOOP : POLL_GROW_SHRINK, 0);
}

/* ---- Tables ------------------------------------------------------------- */

void print_table(void)
{
    printf("\n%-6s %-4s %-14s %-12s %9s %7s %7s %9s %7s %7s %7s\n", "target",
           "QD", "flags", "polling", "IOPS", "spread", "ratio", "cpu us/io",
           "ratio", "sys us", "poll us");
    for (unsigned i = 0; i < nconfigs; i++) {
        const Config *c = &configs[i];
        const Config *base = baseline(c, 0);
        unsigned want = flag_sets[c->flags_idx].flags;
        char poll[16];

        if (c->poll == POLL_MAIN_LOOP) {
            want &= ~AIO_URING_SINGLE_THREAD_FLAGS; /* never on a shared ring */
        }
        snprintf(poll, sizeof(poll), "%s", poll_names[c->poll]);
        if (c->poll == POLL_WEIGHTED) {
            snprintf(poll, sizeof(poll), "weighted/%u", c->weight);
        }
        printf(
            "%-6s %-4u %-14s %-12s %9.0f %6.0f%% %7.3f %9.2f %7.3f %7.2f %7.2f%s\n",
            target_names[c->target], c->qd, flag_sets[c->flags_idx].name, poll,
            samples_median_iops(&c->s), samples_spread_pct(&c->s),
            ratio(c, base, false), samples_median_cpu(&c->s),
            ratio(c, base, true), samples_median_sys(&c->s),
            samples_median_poll(&c->s),
            c->got_flags == want ? "" : " (flags refused)");
    }
}

void print_main_loop(void)
{
    printf("\nmain loop (no IOThread; the guest thread takes the big lock, "
           "as a vCPU):\n+coop / none, as IOPS and main-thread CPU/IO ratios "
           "of medians\n");
    for (int t = 0; t < 2; t++) {
        for (int qi = 0; qi < 2; qi++) {
            const Config *c =
                config_find(t, qds[qi], DEFAULT_FLAGS, POLL_MAIN_LOOP, 0);
            const Config *base = config_find(t, qds[qi], 0, POLL_MAIN_LOOP, 0);

            if (c && base) {
                printf("  %-4s QD%-2u  iops %.3f  cpu %.3f\n", target_names[t],
                       qds[qi], ratio(c, base, false), ratio(c, base, true));
            }
        }
    }
}

/* The goal of issue 6: >= 20% less CPU per I/O at <= 2% IOPS loss. */
void print_sweep(const unsigned *weights, int nweights)
{
    static const unsigned sweep_flags[2] = {0, DEFAULT_FLAGS};

    printf("\nweight sweep, file: weighted / grow-shrink with the same flags, "
           "as IOPS and\nCPU/IO ratios of medians (* = meets the goal: "
           "cpu <= 0.80 at iops >= 0.98)\n%-6s",
           "weight");
    for (int qi = 0; qi < 2; qi++) {
        for (int f = 0; f < 2; f++) {
            printf("  QD%-2u %-6s      ", qds[qi],
                   flag_sets[sweep_flags[f]].name);
        }
    }
    printf("\n%-6s", "");
    for (int k = 0; k < 4; k++) {
        printf("  %5s %5s      ", "iops", "cpu");
    }
    printf("\n");
    for (int w = 0; w < nweights; w++) {
        printf("%-6u", weights[w]);
        for (int qi = 0; qi < 2; qi++) {
            for (int f = 0; f < 2; f++) {
                const Config *c =
                    config_find(TARGET_FILE, qds[qi], sweep_flags[f],
                                POLL_WEIGHTED, weights[w]);
                const Config *base = c ? baseline(c, sweep_flags[f]) : NULL;
                double ri = ratio(c, base, false), rc = ratio(c, base, true);

                printf("  %5.3f %5.3f %s    ", ri, rc,
                       rc > 0 && rc <= 0.80 && ri >= 0.98 ? "*" : " ");
            }
        }
        printf("\n");
    }
}

void print_summary(unsigned weight)
{
    double best[2] = {1, 1};
    const char *best_name[2] = {"none", "none"};
    const Config *wt, *gs;

    /* Flags compared at the default polling (grow-shrink), null driver. */
    for (int qi = 0; qi < 2; qi++) {
        const Config *base =
            config_find(TARGET_NULL, qds[qi], 0, POLL_GROW_SHRINK, 0);

        for (unsigned f = 1; f < NFLAGS; f++) {
            const Config *c =
                config_find(TARGET_NULL, qds[qi], f, POLL_GROW_SHRINK, 0);
            double r = ratio(c, base, false);

            if (r > best[qi]) {
                best[qi] = r;
                best_name[qi] = flag_sets[f].name;
            }
        }
    }
    printf("\nbest flags at QD1 (null, grow-shrink): %s; at QD64: %s\n",
           best_name[0], best_name[1]);
    for (int k = 0; k < 2; k++) {
        unsigned f = k ? WEIGHTED_FLAGS : 0;

        wt =
            config_find(WEIGHTED_TARGET, WEIGHTED_QD, f, POLL_WEIGHTED, weight);
        gs = config_find(WEIGHTED_TARGET, WEIGHTED_QD, f, POLL_GROW_SHRINK, 0);
        printf("weighted/%u vs grow-shrink, %s driver, QD%d, flags %s: "
               "cpu %.3f, iops %.3f\n",
               weight, target_names[WEIGHTED_TARGET], WEIGHTED_QD,
               flag_sets[f].name, ratio(wt, gs, true), ratio(wt, gs, false));
    }
    printf("uring-flags: qd1_best_ratio=%.3f qd64_best_ratio=%.3f "
           "weighted_cpu_ratio=%.3f weighted_iops_ratio=%.3f\n",
           best[0], best[1], ratio(wt, gs, true), ratio(wt, gs, false));
}

/* ---- Settings ----------------------------------------------------------- */

double env_number(const char *name, double def, double max)
{
    const char *s = getenv(name);
    char *end;
    double v;

    if (!s || !*s) {
        return def;
    }
    errno = 0;
    v = strtod(s, &end);
    if (errno || *end || !(v > 0) || v > max) {
        return -1;
    }
    return v;
}

int parse_weights(const char *list, unsigned max, unsigned *out)
{
    const char *p = list;
    int n = 0;

    while (*p) {
        char *end;
        unsigned long w;

        errno = 0;
        w = strtoul(p, &end, 10);
        if (errno || end == p || w < 1 || w > max || n == STATS_MAX_WEIGHTS ||
            (*end && *end != ',')) {
            return -1;
        }
        out[n++] = (unsigned)w;
        p = *end ? end + 1 : end;
    }
    return n ? n : -1;
}
