# Shared part of the fuzz targets that drive the OpenSSL provider the way
# applications do (uri_pem.cmake, store.cmake; only with -DPRIMUS_FUZZ=ON and
# clang, see fuzz.cmake).  They load an instrumented copy of primus.so
# (primus_fuzz_provider, below) into their own OSSL_LIB_CTX next to the
# default provider, against two throwaway SoftHSM2 tokens that fuzz_env.c
# makes in LLVMFuzzerInitialize.  Included by those fragments and by the
# glob in tests/CMakeLists.txt; the guard makes the second include a no-op.
include_guard(GLOBAL)
if(PRIMUS_FUZZ)
  if(NOT PRIMUS_FUZZ_FLAGS) # normally set by fuzz.cmake, included before this file
    set(PRIMUS_FUZZ_FLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
                          -fno-omit-frame-pointer -g)
  endif()

  # primus.so once more, with coverage instrumentation and the sanitizers,
  # so that libFuzzer sees (and ASan/UBSan check) the provider, p11core and
  # the URI parser behind OpenSSL.  The sources are taken from the real
  # targets, so files added there are fuzzed without touching this list.
  # It is a separate target because build/ and build-asan/ must stay plain;
  # the sanitizer runtimes come from the fuzz executable that loads it, so
  # it is linked without --no-undefined.
  set(PRIMUS_FUZZ_PROVIDER_SOURCES "")
  foreach(lib primus p11core p11uri)
    get_target_property(_srcs ${lib} SOURCES)
    get_target_property(_dir ${lib} SOURCE_DIR)
    foreach(src ${_srcs})
      if(IS_ABSOLUTE "${src}")
        list(APPEND PRIMUS_FUZZ_PROVIDER_SOURCES "${src}")
      else()
        list(APPEND PRIMUS_FUZZ_PROVIDER_SOURCES "${_dir}/${src}")
      endif()
    endforeach()
  endforeach()
  add_library(primus_fuzz_provider MODULE ${PRIMUS_FUZZ_PROVIDER_SOURCES})
  set_target_properties(primus_fuzz_provider PROPERTIES PREFIX "" OUTPUT_NAME primus
    C_VISIBILITY_PRESET hidden
    LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/fuzz-provider)
  target_include_directories(primus_fuzz_provider PRIVATE ${CMAKE_SOURCE_DIR}/provider
                             ${CMAKE_SOURCE_DIR}/p11core ${CMAKE_SOURCE_DIR}/uri ${P11KIT_INCLUDES})
  target_compile_options(primus_fuzz_provider PRIVATE
                         -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
                         -fno-omit-frame-pointer -g)
  target_link_options(primus_fuzz_provider PRIVATE -fsanitize=address,undefined)
  target_link_libraries(primus_fuzz_provider PRIVATE PkgConfig::LIBCRYPTO PkgConfig::JANSSON
                        Threads::Threads ${CMAKE_DL_LIBS})

  # primus_provider_fuzzer(NAME): tests/fuzz/NAME.c plus fuzz_env.c, loading
  # the module above; ctest replays its seed corpus (NAME_seeds) and its
  # regression inputs, if any (NAME_regress).
  set(PRIMUS_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR})
  function(primus_provider_fuzzer name)
    string(REGEX REPLACE "^fuzz_" "" short ${name})
    add_executable(${name} ${PRIMUS_FUZZ_DIR}/${name}.c ${PRIMUS_FUZZ_DIR}/fuzz_env.c)
    target_compile_options(${name} PRIVATE ${PRIMUS_FUZZ_FLAGS})
    target_link_options(${name} PRIVATE ${PRIMUS_FUZZ_FLAGS})
    target_link_libraries(${name} PRIVATE PkgConfig::LIBCRYPTO)
    target_compile_definitions(${name} PRIVATE
      PRIMUS_FUZZ_PROVIDER_SO="$<TARGET_FILE:primus_fuzz_provider>"
      PRIMUS_FUZZ_SOFTHSM="${PRIMUS_SOFTHSM_MODULE}")
    add_dependencies(${name} primus_fuzz_provider)
    add_test(NAME ${name}_seeds COMMAND ${name} -runs=0 ${PRIMUS_FUZZ_DIR}/corpus/${short})
    set_tests_properties(${name}_seeds PROPERTIES ENVIRONMENT "${PRIMUS_TEST_ENV}"
                         LABELS "fuzz;provider" TIMEOUT 300)
    file(GLOB regress ${PRIMUS_FUZZ_DIR}/regress/${short}/*)
    if(regress)
      # each file is run once (libFuzzer runs files given by name, not as a corpus)
      add_test(NAME ${name}_regress COMMAND ${name} ${regress})
      set_tests_properties(${name}_regress PROPERTIES ENVIRONMENT "${PRIMUS_TEST_ENV}"
                           LABELS "fuzz;provider" TIMEOUT 300)
    endif()
  endfunction()
endif()
