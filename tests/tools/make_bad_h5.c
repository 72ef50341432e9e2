/* Writes deliberately broken dataset files for the bad-input tests.
 *   make_bad_h5 KIND OUT.h5     KIND: noimages | badlabel | floatimages | shortlabels */
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static void write_ds(hid_t f, const char *name, hid_t type, hid_t mem, int nd, const hsize_t *dims, const void *d) {
    hid_t sp = H5Screate_simple(nd, dims, NULL);
    hid_t ds = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, d);
    H5Dclose(ds);
    H5Sclose(sp);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: make_bad_h5 noimages|badlabel|floatimages|shortlabels OUT.h5\n");
        return 2;
    }
    const char *kind = argv[1];
    enum { N = 64 };
    static uint8_t img[N * 28 * 28];
    static float fimg[N * 28 * 28];
    int64_t lab[N];
    for (int i = 0; i < N; i++) lab[i] = i % 10;
    hid_t f = H5Fcreate(argv[2], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return 1;
    hsize_t idims[4] = {N, 1, 28, 28}, ldims[1] = {N};
    if (!strcmp(kind, "noimages")) {
        write_ds(f, "pixels", H5T_STD_U8LE, H5T_NATIVE_UINT8, 4, idims, img);
        write_ds(f, "labels", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, ldims, lab);
    } else if (!strcmp(kind, "badlabel")) {
        lab[37] = 10; /* num_classes is 10 */
        write_ds(f, "images", H5T_STD_U8LE, H5T_NATIVE_UINT8, 4, idims, img);
        write_ds(f, "labels", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, ldims, lab);
    } else if (!strcmp(kind, "floatimages")) {
        write_ds(f, "images", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 4, idims, fimg);
        write_ds(f, "labels", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, ldims, lab);
    } else if (!strcmp(kind, "shortlabels")) {
        hsize_t short_dims[1] = {N - 1};
        write_ds(f, "images", H5T_STD_U8LE, H5T_NATIVE_UINT8, 4, idims, img);
        write_ds(f, "labels", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, short_dims, lab);
    } else {
        fprintf(stderr, "make_bad_h5: unknown kind %s\n", kind);
        return 2;
    }
    int64_t nc = 10;
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "num_classes", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, &nc);
    H5Aclose(a);
    H5Sclose(sp);
    H5Fclose(f);
    return 0;
}
