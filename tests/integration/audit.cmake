# The audit log (docs/AUDIT.md): primusctl audit verify against logs
# written by an independent Python implementation of the format, tampered
# with in every way the format promises to catch; then real logs written by
# the provider from several processes at once.
primus_script_test(audit_verify ${CMAKE_SOURCE_DIR}/tests/integration/audit_verify.sh
                   LABELS audit)
primus_script_test(audit_provider ${CMAKE_SOURCE_DIR}/tests/integration/audit_provider.sh
                   LABELS audit provider TIMEOUT 600)
