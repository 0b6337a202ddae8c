# libFuzzer target for the URI PEM key file decoder (provider/decoder.c),
# driven through OSSL_DECODER with primus.so loaded (only with
# -DPRIMUS_FUZZ=ON and clang; see fuzz.cmake and provider.cmake):
#   cmake --build build-fuzz --target fuzz_uri_pem
#   build-fuzz/tests/fuzz_uri_pem -dict=tests/fuzz/uri_pem.dict \
#       -max_total_time=600 <scratch dir> tests/fuzz/corpus/uri_pem
# scripts/fuzz.sh runs it (and every other target) on a copy of the corpus.
include(${CMAKE_CURRENT_LIST_DIR}/provider.cmake)
if(PRIMUS_FUZZ)
  primus_provider_fuzzer(fuzz_uri_pem)
endif()
