/* Small definitions every layer uses. */
#ifndef DPT_CORE_COMMON_H
#define DPT_CORE_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* Scalar math shared by the CPU and CUDA back ends is marked host-and-device,
 * so both run the same arithmetic. */
#if defined(__CUDACC__)
#define DPT_HD __host__ __device__
#else
#define DPT_HD
#endif

#define DPT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define DPT_MAX(a, b) ((a) > (b) ? (a) : (b))
#define DPT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define DPT_ALIGN 64

static inline size_t dpt_align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

#endif
