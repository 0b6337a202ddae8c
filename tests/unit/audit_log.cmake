# The audit writer against a real SoftHSM token, through the shim
# (tests/unit/core.cmake builds it).
primus_unit_test(test_audit_log SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_audit_log.c
                 LIBS p11core LABELS audit)
target_compile_definitions(test_audit_log PRIVATE
  PRIMUS_SHIM_PATH="$<TARGET_FILE:p11shim>"
  PRIMUS_TOKEN_SH="${CMAKE_SOURCE_DIR}/tests/lib/token.sh")
add_dependencies(test_audit_log p11shim)
