/* Runs the resampler on raw interleaved uint8 pixels from stdin, for the PIL comparison:
 *   resample_tool W H C X0 Y0 BW BH OUT_W OUT_H  < pixels > resampled */
#include <stdio.h>
#include <stdlib.h>

#include "dpt/data/image.h"

int main(int argc, char **argv) {
    if (argc != 10) {
        fprintf(stderr, "usage: resample_tool W H C X0 Y0 BW BH OUT_W OUT_H < in > out\n");
        return 2;
    }
    int w = atoi(argv[1]), h = atoi(argv[2]), c = atoi(argv[3]), ow = atoi(argv[8]), oh = atoi(argv[9]);
    size_t n = (size_t)w * h * c, m = (size_t)ow * oh * c;
    uint8_t *in = malloc(n), *out = malloc(m);
    if (fread(in, 1, n, stdin) != n) {
        fprintf(stderr, "resample_tool: short input\n");
        return 1;
    }
    img_view v = img_view_hwc(in, w, h, c);
    img_scratch s = {0};
    img_resample_u8(&v, atof(argv[4]), atof(argv[5]), atof(argv[6]), atof(argv[7]), out, ow, oh, &s);
    fwrite(out, 1, m, stdout);
    img_scratch_free(&s);
    free(in);
    free(out);
    return 0;
}
