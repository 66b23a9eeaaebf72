// Property tests of reductions (random trees vs. left folds, per strategy) and the
// combiner's spill path (tiny budget vs. in-memory, byte for byte).
#include <doctest/doctest.h>
