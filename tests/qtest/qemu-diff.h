/*
 * Differential tests: one sequence of guest steps drives QEMU 7.2 and
 * minivmm side by side (two qtest connections), and after every step the
 * same observations are compared value by value. Where minivmm differs on
 * purpose, tests/qtest/qemu-diff-allowlist.txt says so, with the spec
 * reference; docs/qemu-differences.md is the same list for people.
 *
 * A difference that no entry covers fails the test, and so does an entry
 * that covered nothing by the end of its test: the list must stay true.
 */
#ifndef MINIVMM_TESTS_QTEST_QEMU_DIFF_H
#define MINIVMM_TESTS_QTEST_QEMU_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tests/qtest/libqtest.h"

/* The two machines, in this order everywhere. */
enum { DIFF_QEMU, DIFF_MINIVMM, DIFF_SIDES };

typedef struct DiffEntry {
    char device[16];
    char step[32]; /* a shell pattern: "*" is any step */
    char field[32];
    uint64_t mask; /* the bits that may differ */
    bool timing;   /* may differ or not, run to run */
    unsigned line;
    bool used;
} DiffEntry;

typedef struct Diff {
    const char *device; /* "ahci", "virtio-blk" */
    const char *step;   /* the step whose results are being compared */
    DiffEntry *entries;
    unsigned n_entries;
    unsigned unexplained; /* differences no entry covers */
    char first[256];      /* the first of them, for the failure message */
} Diff;

/*
 * Load the entries for @device from the allowlist ($QEMU_DIFF_ALLOWLIST,
 * or tests/qtest/qemu-diff-allowlist.txt). False if it cannot be read or
 * a line is malformed (the line is printed).
 */
bool diff_init(Diff *d, const char *device);
void diff_free(Diff *d);

/*
 * Compare one observation: @field of the current step reads @v[DIFF_QEMU]
 * on QEMU and @v[DIFF_MINIVMM] on minivmm. Bits that differ must be in the
 * mask of an entry for this field whose step pattern matches this step.
 */
void diff_value(Diff *d, const char *field, const uint64_t v[DIFF_SIDES]);

/* The same for two byte areas, one field per byte ("@prefix+0xNN"). */
void diff_bytes(Diff *d, const char *prefix, const uint8_t *qemu,
                const uint8_t *minivmm, size_t len);

/* The same for two arrays of 16-bit words ("@prefix.wN"). */
void diff_words(Diff *d, const char *prefix, const uint16_t *qemu,
                const uint16_t *minivmm, size_t n);

/* A data buffer as one value to compare (FNV-1a). */
uint64_t diff_hash(const void *buf, size_t len);

/*
 * At the end of a test: entries that matched nothing are reported (they no
 * longer describe a difference). Returns the number of unexplained
 * differences plus stale entries; 0 means the machines agree as listed.
 */
unsigned diff_finish(Diff *d);

/* Start QEMU (with @qemu_args) and minivmm (with @minivmm_args) at once. */
bool diff_start(QTest *qt[DIFF_SIDES], unsigned ram_mb, const char *qemu_args,
                const char *minivmm_args);
void diff_stop(QTest *qt[DIFF_SIDES]);

#endif
