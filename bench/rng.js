// The benchmark generators' random numbers: sfc32, seeded through splitmix32. Small, fast
// and deterministic across platforms, so a generator's output depends only on its seed.
//
//   const next = require('../rng.js')(seed);   next() is uniform in [0, 2^32)
'use strict';

function splitmix32(a) {
  return () => {
    a = (a + 0x9e3779b9) | 0;
    let t = a ^ (a >>> 16);
    t = Math.imul(t, 0x21f0aaad);
    t ^= t >>> 15;
    t = Math.imul(t, 0x735a2d97);
    return (t ^ (t >>> 15)) >>> 0;
  };
}

module.exports = function rng(seed) {
  const sm = splitmix32(seed | 0);
  let a = sm(), b = sm(), c = sm(), d = sm();
  return function next() {
    a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return t >>> 0;
  };
};
