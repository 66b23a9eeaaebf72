// Tests of src/doc: the total order, packed keys, pointers on values, UUIDs, parse limits.
#include <doctest/doctest.h>
