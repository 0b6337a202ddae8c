/* Audit evidence: to be written (issue "Audit evidence"). */
#include "internal.h"
