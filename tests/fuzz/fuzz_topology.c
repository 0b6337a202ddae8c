/*
 * libFuzzer target for the topology file loader (p11core/topology.c):
 * any input is parsed and the result freed.  Crashes, sanitizer reports
 * and leaks are the findings.
 */
#include <stdint.h>
#include <stddef.h>

#include "topology.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    p11_topology *topo = NULL;

    p11_topology_parse((const char *)data, size, "fuzz.json", 1000, &topo);
    p11_topology_free(topo);
    return 0;
}
