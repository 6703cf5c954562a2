/* Suites of the qtest-driven tests (tests/qtest/main.c runs them). */
#ifndef MINIVMM_TESTS_QTEST_SUITES_H
#define MINIVMM_TESTS_QTEST_SUITES_H

#include <check.h>

Suite *protocol_suite(void);
Suite *cli_suite(void);
Suite *console_suite(void);
Suite *devices_suite(void);
Suite *trace_qtest_suite(void);
Suite *sandbox_qtest_suite(void);
Suite *diff_ahci_suite(void);
Suite *diff_virtio_suite(void);

#endif
