# Failover under load against real p11-kit node processes.
add_executable(signload ${CMAKE_SOURCE_DIR}/tests/cluster/signload.c)
target_link_libraries(signload PRIVATE p11core p11uri PkgConfig::LIBCRYPTO Threads::Threads)
primus_script_test(cluster_failover ${CMAKE_SOURCE_DIR}/tests/cluster/failover.sh LABELS cluster TIMEOUT 600)
add_executable(provider_signload ${CMAKE_SOURCE_DIR}/tests/cluster/provider_signload.c)
target_link_libraries(provider_signload PRIVATE PkgConfig::LIBCRYPTO Threads::Threads)
primus_script_test(cluster_provider_failover ${CMAKE_SOURCE_DIR}/tests/cluster/provider_failover.sh LABELS cluster TIMEOUT 600)
primus_script_test(cluster_priority ${CMAKE_SOURCE_DIR}/tests/cluster/priority.sh LABELS cluster TIMEOUT 300)
# Deadlines and fail-fast bounds are measured: these tests get the machine
# to themselves rather than share two cores with other suites.
set_tests_properties(cluster_failover cluster_provider_failover cluster_priority
                     PROPERTIES RUN_SERIAL TRUE)
