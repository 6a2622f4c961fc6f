/*
 * rng.h — a small deterministic random generator (splitmix64 seeding a
 * xoshiro256** state) with uniform and normal draws. Same seed, same stream,
 * on every machine.
 */
#ifndef DC_RNG_H
#define DC_RNG_H
#include <stdint.h>

typedef struct rng {
    uint64_t s[4];
} rng;

void rng_seed(rng *r, uint64_t seed);
uint64_t rng_u64(rng *r);
/* rng_uniform: in [0, 1). */
float rng_uniform(rng *r);
/* rng_normal: mean 0, std 1 (Box-Muller). */
float rng_normal(rng *r);
#endif
