# libFuzzer target for the topology file loader (only with -DPRIMUS_FUZZ=ON
# and clang; see fuzz.cmake):
#   cmake --build build-fuzz --target fuzz_topology
#   build-fuzz/tests/fuzz_topology -max_total_time=180 <scratch dir> \
#       tests/fuzz/corpus/topology
if(PRIMUS_FUZZ)
  if(NOT PRIMUS_FUZZ_FLAGS) # normally set by fuzz.cmake, included before this file
    set(PRIMUS_FUZZ_FLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
                          -fno-omit-frame-pointer -g)
  endif()
  # The loader and the error room it reports through are compiled into the
  # target, so that they are instrumented for coverage; jansson is linked.
  add_executable(fuzz_topology ${CMAKE_CURRENT_LIST_DIR}/fuzz_topology.c
                 ${CMAKE_SOURCE_DIR}/p11core/topology.c ${CMAKE_SOURCE_DIR}/p11core/error.c
                 ${CMAKE_SOURCE_DIR}/p11core/rv.c ${CMAKE_SOURCE_DIR}/p11core/util.c)
  target_include_directories(fuzz_topology PRIVATE ${CMAKE_SOURCE_DIR}/p11core
                             ${CMAKE_SOURCE_DIR}/uri ${P11KIT_INCLUDES})
  target_link_libraries(fuzz_topology PRIVATE PkgConfig::JANSSON Threads::Threads)
  target_compile_options(fuzz_topology PRIVATE ${PRIMUS_FUZZ_FLAGS})
  target_link_options(fuzz_topology PRIVATE ${PRIMUS_FUZZ_FLAGS})
  add_test(NAME fuzz_topology_seeds
           COMMAND fuzz_topology -runs=0 ${CMAKE_CURRENT_LIST_DIR}/corpus/topology)
  set_tests_properties(fuzz_topology_seeds PROPERTIES LABELS "fuzz;topology")
endif()
