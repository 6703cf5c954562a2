/*
 * The MSI route table's policy (vmm/msi-routes.h): a message keeps its
 * slot, new messages fill free slots, and a full table recycles the least
 * recently used one.
 */
#include <check.h>

#include "tests/unit/suites.h"
#include "vmm/msi-routes.h"

#define MSI_ADDR(cpu) (0xfee00000ull | (uint64_t)(cpu) << 12)

static unsigned get(MsiRouteTable *t, uint32_t data, MsiRouteHow expect,
                    MsiRouteSlot *old)
{
    MsiRouteSlot dummy;
    MsiRouteHow how;
    unsigned slot =
        msi_routes_get(t, MSI_ADDR(0), data, &how, old ? old : &dummy);

    ck_assert_int_eq(how, expect);
    return slot;
}

START_TEST(test_msi_routes_find_and_add)
{
    MsiRouteTable t;
    MsiRouteHow how;
    MsiRouteSlot old;

    msi_routes_init(&t, 4);
    ck_assert_uint_eq(get(&t, 0x41, MSI_ROUTE_ADDED, NULL), 0);
    ck_assert_uint_eq(get(&t, 0x42, MSI_ROUTE_ADDED, NULL), 1);
    ck_assert_uint_eq(get(&t, 0x41, MSI_ROUTE_FOUND, NULL), 0);
    /* Same data for another CPU is another message. */
    ck_assert_uint_eq(msi_routes_get(&t, MSI_ADDR(1), 0x41, &how, &old), 2);
    ck_assert_int_eq(how, MSI_ROUTE_ADDED);
    ck_assert_uint_eq(t.n, 3);
}
END_TEST

START_TEST(test_msi_routes_full_table_recycles_lru)
{
    MsiRouteTable t;
    MsiRouteSlot old;

    msi_routes_init(&t, 3);
    for (uint32_t d = 0; d < 3; d++) {
        ck_assert_uint_eq(get(&t, 0x40 + d, MSI_ROUTE_ADDED, NULL), d);
    }
    /* 0x40 and 0x42 are used again: 0x41 is the least recently used. */
    get(&t, 0x40, MSI_ROUTE_FOUND, NULL);
    get(&t, 0x42, MSI_ROUTE_FOUND, NULL);
    ck_assert_uint_eq(get(&t, 0x50, MSI_ROUTE_REPLACED, &old), 1);
    ck_assert_uint_eq(old.data, 0x41);
    ck_assert_uint_eq(t.n, 3);
    /* The new message keeps its slot; the evicted one needs a new one. */
    ck_assert_uint_eq(get(&t, 0x50, MSI_ROUTE_FOUND, NULL), 1);
    ck_assert_uint_eq(get(&t, 0x41, MSI_ROUTE_REPLACED, &old), 0);
    ck_assert_uint_eq(old.data, 0x40);
}
END_TEST

START_TEST(test_msi_routes_undo)
{
    MsiRouteTable t;
    MsiRouteSlot old;
    unsigned slot;

    msi_routes_init(&t, 2);
    slot = get(&t, 0x40, MSI_ROUTE_ADDED, NULL);
    msi_routes_undo(&t, slot, MSI_ROUTE_ADDED, NULL);
    ck_assert_uint_eq(t.n, 0);

    get(&t, 0x40, MSI_ROUTE_ADDED, NULL);
    get(&t, 0x41, MSI_ROUTE_ADDED, NULL);
    slot = get(&t, 0x42, MSI_ROUTE_REPLACED, &old);
    msi_routes_undo(&t, slot, MSI_ROUTE_REPLACED, &old);
    /* The evicted message is back in its slot, and 0x42 has none. */
    ck_assert_uint_eq(get(&t, 0x40, MSI_ROUTE_FOUND, NULL), slot);
    get(&t, 0x42, MSI_ROUTE_REPLACED, NULL);
}
END_TEST

/* A guest that moves its vectors between CPUs forever still gets routes. */
START_TEST(test_msi_routes_never_run_out)
{
    MsiRouteTable t;

    msi_routes_init(&t, MSI_ROUTES_MAX);
    for (uint32_t d = 0; d < 10 * MSI_ROUTES_MAX; d++) {
        MsiRouteSlot old;
        MsiRouteHow how;
        unsigned slot = msi_routes_get(&t, MSI_ADDR(d % 64), d, &how, &old);

        ck_assert_uint_lt(slot, MSI_ROUTES_MAX);
        ck_assert_int_eq(how, d < MSI_ROUTES_MAX ? MSI_ROUTE_ADDED
                                                 : MSI_ROUTE_REPLACED);
        if (how == MSI_ROUTE_REPLACED) {
            ck_assert_uint_eq(old.data, d - MSI_ROUTES_MAX); /* oldest */
        }
    }
}
END_TEST

Suite *msi_routes_suite(void)
{
    Suite *s = suite_create("msi-routes");
    TCase *tc = tcase_create("policy");

    tcase_add_test(tc, test_msi_routes_find_and_add);
    tcase_add_test(tc, test_msi_routes_full_table_recycles_lru);
    tcase_add_test(tc, test_msi_routes_undo);
    tcase_add_test(tc, test_msi_routes_never_run_out);
    suite_add_tcase(s, tc);
    return s;
}
