# p11core against a real SoftHSM token, through the counting/fault shim.
add_library(p11shim MODULE ${CMAKE_SOURCE_DIR}/tests/shim/p11shim.c)
set_target_properties(p11shim PROPERTIES PREFIX "" C_VISIBILITY_PRESET hidden)
target_include_directories(p11shim PRIVATE ${P11KIT_INCLUDES})
target_link_libraries(p11shim PRIVATE ${CMAKE_DL_LIBS} Threads::Threads)

primus_unit_test(test_core SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_core.c LIBS p11core)
target_compile_definitions(test_core PRIVATE
  PRIMUS_SHIM_PATH="$<TARGET_FILE:p11shim>"
  PRIMUS_SOFTHSM_PATH="${PRIMUS_SOFTHSM_MODULE}"
  PRIMUS_TOKEN_SH="${CMAKE_SOURCE_DIR}/tests/lib/token.sh")
add_dependencies(test_core p11shim)
