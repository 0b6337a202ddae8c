# libFuzzer target for the pkcs11: store loader (provider/store.c), driven
# through OSSL_STORE with primus.so loaded (only with -DPRIMUS_FUZZ=ON and
# clang; see fuzz.cmake and provider.cmake):
#   cmake --build build-fuzz --target fuzz_store
#   build-fuzz/tests/fuzz_store -dict=tests/fuzz/store.dict \
#       -max_total_time=600 <scratch dir> tests/fuzz/corpus/store
# scripts/fuzz.sh runs it (and every other target) on a copy of the corpus.
include(${CMAKE_CURRENT_LIST_DIR}/provider.cmake)
if(PRIMUS_FUZZ)
  primus_provider_fuzzer(fuzz_store)
endif()
