primus_script_test(primusctl_cli ${CMAKE_SOURCE_DIR}/tests/integration/primusctl.sh LABELS cli)
