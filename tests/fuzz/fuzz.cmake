# libFuzzer targets: only with -DPRIMUS_FUZZ=ON and clang.
#   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DPRIMUS_FUZZ=ON
#   cmake --build build-fuzz --target fuzz_uri
#   build-fuzz/tests/fuzz_uri -dict=tests/fuzz/uri.dict -runs=2000000 \
#       <scratch dir> tests/fuzz/corpus/uri
# ctest replays each seed corpus once (fuzz_*_seeds) so a regression shows
# up without a fuzzing run.
if(PRIMUS_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "PRIMUS_FUZZ needs clang (-DCMAKE_C_COMPILER=clang)")
  endif()
  set(PRIMUS_FUZZ_FLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
                        -fno-omit-frame-pointer -g)

  # The library source is compiled into the target so that it is
  # instrumented for coverage too.
  add_executable(fuzz_uri ${CMAKE_CURRENT_LIST_DIR}/fuzz_uri.c ${CMAKE_SOURCE_DIR}/uri/p11uri.c)
  target_include_directories(fuzz_uri PRIVATE ${CMAKE_SOURCE_DIR}/uri)
  target_compile_options(fuzz_uri PRIVATE ${PRIMUS_FUZZ_FLAGS})
  target_link_options(fuzz_uri PRIVATE ${PRIMUS_FUZZ_FLAGS})
  add_test(NAME fuzz_uri_seeds
           COMMAND fuzz_uri -runs=0 ${CMAKE_CURRENT_LIST_DIR}/corpus/uri)
  set_tests_properties(fuzz_uri_seeds PROPERTIES LABELS "fuzz;uri")
endif()
