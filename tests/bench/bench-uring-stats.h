/*
 * bench-uring's configurations, their samples and the tables made of them.
 *
 * Each configuration runs several rounds and is summarised by medians,
 * because one run on a shared VM is mostly noise: adaptive polling either
 * catches the next event or pays a cross-CPU wake-up for it, which one is
 * decided early in a run and sticks.
 */
#ifndef MINIVMM_TESTS_BENCH_BENCH_URING_STATS_H
#define MINIVMM_TESTS_BENCH_BENCH_URING_STATS_H

#include <stdbool.h>

#define STATS_MAX_ROUNDS  32
#define STATS_MAX_WEIGHTS 16
#define MAX_CONFIGS       96
#define MAX_QD            64

/* io_uring setup flag sets, in the order they are added. */
typedef struct FlagSet {
    const char *name;
    unsigned flags;
} FlagSet;

extern const FlagSet flag_sets[];
#define NFLAGS        4
#define DEFAULT_FLAGS 2 /* "+coop": --iothread-uring-flags' default */

/*
 * How the disk's queue is served: an IOThread with polling off, grow/shrink
 * or weighted, or the main loop (which never polls).
 */
enum { POLL_OFF, POLL_GROW_SHRINK, POLL_WEIGHTED, POLL_MAIN_LOOP };
enum { TARGET_NULL, TARGET_FILE };
extern const char *const target_names[2];
extern const unsigned qds[2]; /* 1 and MAX_QD */

/* One configuration's results, one sample per round. */
typedef struct Samples {
    unsigned n;
    double iops[STATS_MAX_ROUNDS];
    double cpu_us_per_io[STATS_MAX_ROUNDS];
    double sys_us_per_io[STATS_MAX_ROUNDS];  /* of that, in the kernel */
    double poll_us_per_io[STATS_MAX_ROUNDS]; /* of that, busy-polling */
} Samples;

/* One measured configuration. */
typedef struct Config {
    int target; /* TARGET_* */
    unsigned qd;
    unsigned flags_idx; /* in flag_sets[] */
    int poll;           /* POLL_* */
    unsigned weight;    /* POLL_WEIGHTED only */
    unsigned got_flags; /* what the kernel accepted */
    Samples s;
} Config;

extern Config configs[MAX_CONFIGS];
extern unsigned nconfigs;

void samples_add(Samples *s, double iops, double cpu_us_per_io,
                 double sys_us_per_io, double poll_us_per_io);
double samples_median_iops(const Samples *s);
double samples_median_cpu(const Samples *s);
double samples_median_sys(const Samples *s);
double samples_median_poll(const Samples *s);
/* (max - min) / median of the IOPS, in percent: how far to trust a ratio. */
double samples_spread_pct(const Samples *s);

/* The configuration, or NULL; @weight counts only for POLL_WEIGHTED. */
Config *config_find(int target, unsigned qd, unsigned flags_idx, int poll,
                    unsigned weight);
/* Add a configuration to measure, unless it is there already. */
void config_want(int target, unsigned qd, unsigned flags_idx, int poll,
                 unsigned weight);

/* Every configuration: medians, spread, ratios to no flags, grow-shrink. */
void print_table(void);
/* The main loop with coop against without. */
void print_main_loop(void);
/* Weighted vs grow-shrink with the same flags, on the file, per weight. */
void print_sweep(const unsigned *weights, int nweights);
/* The closing lines, ending with the one "uring-flags:" line. */
void print_summary(unsigned weight);

/*
 * A positive number from the environment, or @def when @name is unset;
 * a value that does not parse or is out of (0, @max] is an error (-1).
 */
double env_number(const char *name, double def, double max);
/*
 * "1,2,3": up to STATS_MAX_WEIGHTS poll weights in 1..@max into @out.
 * Returns how many, or -1 on a malformed list.
 */
int parse_weights(const char *list, unsigned max, unsigned *out);

#endif
