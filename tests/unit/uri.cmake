# RFC 7512 URI library: unit tests and the differential test against p11-kit.
primus_unit_test(test_uri
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_uri.c
  LIBS p11uri
  LABELS uri)
# Allocation failures are injected by wrapping the allocator (see test_uri.c).
target_link_options(test_uri PRIVATE -Wl,--wrap=malloc -Wl,--wrap=calloc)

# The only place p11-kit is linked: as the reference to compare against.
primus_unit_test(test_uri_diff
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_uri_diff.c
  LIBS p11uri PkgConfig::P11KIT
  LABELS uri)
target_compile_definitions(test_uri_diff PRIVATE
  URI_CORPUS_PATH="${CMAKE_CURRENT_LIST_DIR}/uri-corpus.txt")
