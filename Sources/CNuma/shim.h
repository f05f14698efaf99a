// libnuma (Debian: libnuma-dev), for the hosted runtime's per-cluster partitions.
#include <numa.h>
