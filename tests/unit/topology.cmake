# The cluster topology file loader (p11core/topology.c).
primus_unit_test(test_topology SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_topology.c LIBS p11core)
# Allocation failures are injected by wrapping the allocator (see test_topology.c).
target_link_options(test_topology PRIVATE -Wl,--wrap=malloc -Wl,--wrap=calloc)
