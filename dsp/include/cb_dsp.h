/*
 * cb_dsp.h - conventions shared by the media kernels (not part of the cdef).
 *
 * A kernel is a bank of n channels in arrays. Per 1 ms tick it is called once
 * for the whole bank with 8 samples per channel laid out sample-major:
 * sample s of channel c is amp[s * n + c], so the inner loop runs across
 * channels and vectorises. Detectors read int16 linear samples; generators add
 * into an int32 accumulator of the same layout (the chain saturates when it
 * encodes). Events go to the event ring with the tick being processed.
 */
#ifndef CB_DSP_H
#define CB_DSP_H

#include "cb_records.h"
#include "cb_ring.h"

/* Hot per-tick loops are compiled for the baseline x86-64 and for x86-64-v3
 * (AVX2, FMA); the loader picks one at run time (cb_media_isa() reports which). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CB_MULTIVERSION __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CB_MULTIVERSION
#endif

#define CB_SAMPLE_RATE 8000   /* Hz */

/* Peak amplitude of a sine at `dbm0` dBm0 (16-bit linear, the A-law reference:
 * a full-scale sine is +3.14 dBm0). */
#define CB_DBM0_PEAK(dbm0) (32768.0f * powf(10.0f, ((dbm0) - 3.14f) / 20.0f))

static inline int16_t cb_sat16(int32_t v)
{
    return (int16_t) (v > 32767 ? 32767 : (v < -32768 ? -32768 : v));
}

#endif
