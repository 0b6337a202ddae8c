# The simulated HSM cluster (tests/lib/cluster.sh): real p11-kit server nodes over SoftHSM2.
primus_script_test(cluster_harness ${CMAKE_SOURCE_DIR}/tests/cluster/harness.sh LABELS cluster TIMEOUT 300)
# primusctl check on every member of a cluster, with audit evidence.
primus_script_test(cluster_check ${CMAKE_SOURCE_DIR}/tests/cluster/check.sh LABELS "cluster;audit" TIMEOUT 300)
