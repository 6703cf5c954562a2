/*
 * The qtest-driven tests: each test starts a machine (minivmm by default,
 * QEMU with QTEST_TARGET=qemu) and drives it over the qtest socket.
 */
#include <stdio.h>
#include <stdlib.h>

#include "tests/qtest/libqtest.h"
#include "tests/qtest/suites.h"

int main(void)
{
    SRunner *sr;
    int failed;

    printf("qtest target: %s\n", qtest_target_name(qtest_target_from_env()));
    sr = srunner_create(protocol_suite());
    srunner_add_suite(sr, devices_suite());
    if (qtest_target_from_env() == QTEST_MINIVMM) {
        srunner_add_suite(sr, cli_suite());
        srunner_add_suite(sr, console_suite());
        srunner_add_suite(sr, trace_qtest_suite());
        srunner_add_suite(sr, sandbox_qtest_suite());
    } else {
        /* QEMU and minivmm side by side: the check-qemu run only. */
        srunner_add_suite(sr, diff_ahci_suite());
        srunner_add_suite(sr, diff_virtio_suite());
    }
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
