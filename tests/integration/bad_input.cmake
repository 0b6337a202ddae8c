# Every row of tests/integration/bad_input.table (the README's "Bad input:
# what you see") run for real through primusctl and the openssl binary.
primus_script_test(bad_input ${CMAKE_SOURCE_DIR}/tests/integration/bad_input.sh
                   LABELS badinput TIMEOUT 600)
