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
/* rng_to_hex: the state as 64 hex digits (+ NUL) into out, for checkpoints.
 * rng_from_hex: the reverse; 0 on success, -1 (r unchanged) when hex is not
 * exactly 64 hex digits. */
void rng_to_hex(const rng *r, char out[65]);
int rng_from_hex(rng *r, const char *hex);
#endif
