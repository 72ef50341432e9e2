/* bfloat16 conversions: exact values, round to nearest with ties to even, NaN and infinities. */
#include <math.h>

#include "dpt/core/bf16.h"
#include "testutil.h"

static void check(float f, uint16_t want) {
    uint16_t got = f32_to_bf16(f);
    TU_CHECK(got == want, "f32_to_bf16(%.10g) = 0x%04x, want 0x%04x", f, got, want);
}

int main(void) {
    check(1.0f, 0x3f80);
    check(-2.0f, 0xc000);
    check(0.0f, 0x0000);
    check(1.0f + 0x1p-8f, 0x3f80);        /* halfway, even below: down */
    check(1.0f + 3 * 0x1p-8f, 0x3f82);    /* halfway, odd below: up to even */
    check(1.0f + 0x1p-8f + 0x1p-16f, 0x3f81); /* above halfway: up */
    check(INFINITY, 0x7f80);
    check(-INFINITY, 0xff80);
    check(3.4028235e38f, 0x7f80); /* the largest float rounds to infinity */
    uint16_t nan = f32_to_bf16(NAN);
    TU_CHECK((nan & 0x7f80) == 0x7f80 && (nan & 0x7f) != 0, "NaN -> 0x%04x is not a NaN", nan);
    /* Every integer up to 256 is exact (bench allreduce's bf16 check relies on it). */
    for (int i = 0; i <= 256; i++)
        TU_CHECK(bf16_to_f32(f32_to_bf16((float)i)) == (float)i, "%d is not exact in bf16", i);
    TU_CHECK(bf16_to_f32(0x3f80) == 1.0f && bf16_to_f32(0xc040) == -3.0f, "bf16_to_f32");
    return tu_finish("test_bf16");
}
