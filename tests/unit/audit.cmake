# The audit chain primitives shared by the writer and `primusctl audit
# verify` (p11core/audit_chain.c): hash, MAC, mac member, key file.
primus_unit_test(test_audit_chain SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_audit_chain.c
                 LIBS p11core LABELS audit)
