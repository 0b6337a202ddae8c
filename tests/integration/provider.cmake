# The OpenSSL provider (provider/) through the real openssl binary against
# SoftHSM tokens.  Each script makes its own token under a mktemp directory.
primus_script_test(provider_openssl ${CMAKE_SOURCE_DIR}/tests/integration/provider_openssl.sh
                   LABELS provider TIMEOUT 600)
primus_script_test(provider_tls ${CMAKE_SOURCE_DIR}/tests/integration/provider_tls.sh
                   LABELS provider tls TIMEOUT 600)
primus_script_test(provider_errors ${CMAKE_SOURCE_DIR}/tests/integration/provider_errors.sh
                   LABELS provider)
primus_script_test(provider_interop ${CMAKE_SOURCE_DIR}/tests/integration/provider_interop.sh
                   LABELS provider interop TIMEOUT 600)
primus_script_test(provider_fork ${CMAKE_SOURCE_DIR}/tests/integration/provider_fork.sh LABELS provider)
add_executable(decoder_chains ${CMAKE_SOURCE_DIR}/tests/integration/decoder_chains.c)
target_link_libraries(decoder_chains PRIVATE PkgConfig::LIBCRYPTO)
add_executable(key_sizes ${CMAKE_SOURCE_DIR}/tests/integration/key_sizes.c)
target_link_libraries(key_sizes PRIVATE PkgConfig::LIBCRYPTO)
