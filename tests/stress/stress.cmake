# Threads through the provider (tests/stress/stress_threads.c): 8 threads
# signing with shared and with per-thread keys (RSA-2048, P-256) on a real
# SoftHSM token.  A few seconds in the ordinary runs; scripts/tsan.sh runs
# it under ThreadSanitizer (label "stress").
add_executable(stress_threads ${CMAKE_SOURCE_DIR}/tests/stress/stress_threads.c)
target_link_libraries(stress_threads PRIVATE PkgConfig::LIBCRYPTO Threads::Threads)
primus_script_test(stress_threads ${CMAKE_SOURCE_DIR}/tests/stress/stress_threads.sh
                   LABELS stress TIMEOUT 300)
