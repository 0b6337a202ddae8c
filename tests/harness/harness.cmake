# The checkers CI relies on fail on a planted defect (tests/harness/selftest.sh):
# valgrind with scripts/valgrind.sh's flags and suppressions, the test
# wrapper that carries its findings into a test failure, and ASan + UBSan.
primus_script_test(harness_selftest ${CMAKE_SOURCE_DIR}/tests/harness/selftest.sh
                   LABELS harness TIMEOUT 300)
set_property(TEST harness_selftest APPEND PROPERTY ENVIRONMENT "PRIMUS_CC=${CMAKE_C_COMPILER}")
