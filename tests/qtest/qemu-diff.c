/*
 * The allowlist and the comparisons of the differential tests. Each line
 * of the allowlist is
 *
 *     device step field mask | what | minivmm | QEMU 7.2 | reference
 *
 * and the four words before the first '|' are all the test reads; the rest
 * is for people (docs/qemu-differences.md shows the same rows). The step
 * is a shell pattern ("*", "ncq-*"); a mask written "~0xff" marks a
 * difference that depends on timing (which NCQ tag finished last), so it
 * may match nothing in a run without the entry going stale.
 */
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/qtest/qemu-diff.h"

#define DEFAULT_ALLOWLIST "tests/qtest/qemu-diff-allowlist.txt"

static bool parse_line(const char *line, DiffEntry *e)
{
    char mask[24];
    int used = 0;

    if (sscanf(line, "%15s %31s %31s %23s %n", e->device, e->step, e->field,
               mask, &used) != 4 ||
        line[used] != '|') {
        return false;
    }
    e->timing = mask[0] == '~';
    e->mask = strtoull(mask + e->timing, NULL, 0);
    return e->mask != 0;
}

bool diff_init(Diff *d, const char *device)
{
    const char *path = getenv("QEMU_DIFF_ALLOWLIST");
    char line[1024];
    unsigned lineno = 0;
    FILE *f;

    memset(d, 0, sizeof(*d));
    d->device = device;
    d->step = "start";
    f = fopen(path ? path : DEFAULT_ALLOWLIST, "r");
    if (!f) {
        perror(path ? path : DEFAULT_ALLOWLIST);
        return false;
    }
    while (fgets(line, sizeof(line), f)) {
        DiffEntry e = {.line = ++lineno};

        if (line[strspn(line, " \t\n")] == '\0' || line[0] == '#') {
            continue;
        }
        if (!parse_line(line, &e)) {
            fprintf(stderr, "allowlist line %u is malformed: %s", lineno, line);
            fclose(f);
            diff_free(d);
            return false;
        }
        if (strcmp(e.device, device) != 0) {
            continue;
        }
        d->entries = realloc(d->entries, (d->n_entries + 1) * sizeof(e));
        d->entries[d->n_entries++] = e;
    }
    fclose(f);
    return true;
}

void diff_free(Diff *d)
{
    free(d->entries);
    d->entries = NULL;
    d->n_entries = 0;
}

void diff_value(Diff *d, const char *field, const uint64_t v[DIFF_SIDES])
{
    uint64_t differ = v[DIFF_QEMU] ^ v[DIFF_MINIVMM], allowed = 0;

    if (!differ) {
        return;
    }
    for (unsigned i = 0; i < d->n_entries; i++) {
        DiffEntry *e = &d->entries[i];

        if (strcmp(e->field, field) != 0 || fnmatch(e->step, d->step, 0)) {
            continue;
        }
        if (differ & e->mask) {
            e->used = true;
        }
        allowed |= e->mask;
    }
    if (differ & ~allowed) {
        char msg[sizeof(d->first)];

        snprintf(msg, sizeof(msg),
                 "%s %s %s: QEMU 0x%" PRIx64 ", minivmm 0x%" PRIx64
                 " (bits 0x%" PRIx64 " not in the allowlist)",
                 d->device, d->step, field, v[DIFF_QEMU], v[DIFF_MINIVMM],
                 differ & ~allowed);
        fprintf(stderr, "differ: %s\n", msg);
        if (!d->unexplained++) {
            strcpy(d->first, msg);
        }
    }
}

void diff_bytes(Diff *d, const char *prefix, const uint8_t *qemu,
                const uint8_t *minivmm, size_t len)
{
    char field[48];

    for (size_t i = 0; i < len; i++) {
        uint64_t v[DIFF_SIDES] = {qemu[i], minivmm[i]};

        snprintf(field, sizeof(field), "%s+0x%02zx", prefix, i);
        diff_value(d, field, v);
    }
}

void diff_words(Diff *d, const char *prefix, const uint16_t *qemu,
                const uint16_t *minivmm, size_t n)
{
    char field[48];

    for (size_t i = 0; i < n; i++) {
        uint64_t v[DIFF_SIDES] = {qemu[i], minivmm[i]};

        snprintf(field, sizeof(field), "%s.w%zu", prefix, i);
        diff_value(d, field, v);
    }
}

uint64_t diff_hash(const void *buf, size_t len)
{
    const uint8_t *b = buf;
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < len; i++) {
        h = (h ^ b[i]) * 0x100000001b3ull;
    }
    return h;
}

unsigned diff_finish(Diff *d)
{
    unsigned stale = 0;

    for (unsigned i = 0; i < d->n_entries; i++) {
        const DiffEntry *e = &d->entries[i];

        if (!e->used && !e->timing) {
            fprintf(stderr,
                    "allowlist line %u (%s %s %s 0x%" PRIx64 ") matched no "
                    "difference: remove it or fix it\n",
                    e->line, e->device, e->step, e->field, e->mask);
            if (!d->unexplained && !stale) {
                snprintf(d->first, sizeof(d->first),
                         "stale allowlist line %u (%s %s)", e->line, e->step,
                         e->field);
            }
            stale++;
        }
    }
    return d->unexplained + stale;
}

bool diff_start(QTest *qt[DIFF_SIDES], unsigned ram_mb, const char *qemu_args,
                const char *minivmm_args)
{
    qt[DIFF_QEMU] = qtest_start(QTEST_QEMU, ram_mb, qemu_args);
    qt[DIFF_MINIVMM] = qtest_start(QTEST_MINIVMM, ram_mb, minivmm_args);
    return qt[DIFF_QEMU] && qt[DIFF_MINIVMM];
}

void diff_stop(QTest *qt[DIFF_SIDES])
{
    for (int i = 0; i < DIFF_SIDES; i++) {
        if (qt[i]) {
            qtest_quit(qt[i]);
            qt[i] = NULL;
        }
    }
}
