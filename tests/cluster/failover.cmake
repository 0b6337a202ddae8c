# Failover under load against real p11-kit node processes.
add_executable(signload ${CMAKE_SOURCE_DIR}/tests/cluster/signload.c)
target_link_libraries(signload PRIVATE p11core p11uri PkgConfig::LIBCRYPTO Threads::Threads)
primus_script_test(cluster_failover ${CMAKE_SOURCE_DIR}/tests/cluster/failover.sh LABELS cluster TIMEOUT 600)
