/* Compares the float datasets of two weight files.
 *   h5compare A B [--rtol X] [--exact] [--group params]
 * Prints the worst tensor and the global relative error ||A - B|| / ||B|| over every tensor of
 * the group; exits 0 when the global error is <= rtol (or, with --exact, every bit is equal). */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct acc {
    hid_t other;
    const char *group;
    double num, den, worst;
    char worst_name[600];
    long long tensors, differing_bits;
    int missing;
} acc;

static herr_t visit(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)info;
    acc *a = data;
    H5O_info_t oi;
    if (H5Oget_info_by_name(g, name, &oi, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_DATASET) return 0;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", a->group, name);
    hid_t da = H5Dopen2(g, name, H5P_DEFAULT);
    hid_t db = H5Lexists(a->other, path, H5P_DEFAULT) > 0 ? H5Dopen2(a->other, path, H5P_DEFAULT) : -1;
    if (db < 0) {
        fprintf(stderr, "h5compare: %s missing in the second file\n", path);
        a->missing++;
        H5Dclose(da);
        return 0;
    }
    hid_t sa = H5Dget_space(da), sb = H5Dget_space(db);
    hssize_t na = H5Sget_simple_extent_npoints(sa), nb = H5Sget_simple_extent_npoints(sb);
    if (na != nb) {
        fprintf(stderr, "h5compare: %s has %lld vs %lld elements\n", path, (long long)na, (long long)nb);
        a->missing++;
    } else {
        float *x = malloc((size_t)na * sizeof(float)), *y = malloc((size_t)na * sizeof(float));
        H5Dread(da, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
        H5Dread(db, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, y);
        double num = 0, den = 0;
        for (hssize_t i = 0; i < na; i++) {
            double d = (double)x[i] - (double)y[i];
            num += d * d;
            den += (double)y[i] * y[i];
            a->differing_bits += memcmp(&x[i], &y[i], sizeof(float)) != 0;
        }
        double rel = sqrt(num) / (sqrt(den) > 1e-30 ? sqrt(den) : 1e-30);
        if (rel > a->worst || a->tensors == 0) {
            a->worst = rel;
            snprintf(a->worst_name, sizeof a->worst_name, "%s", path);
        }
        a->num += num;
        a->den += den;
        a->tensors++;
        free(x);
        free(y);
    }
    H5Sclose(sa);
    H5Sclose(sb);
    H5Dclose(da);
    H5Dclose(db);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: h5compare A B [--rtol X] [--exact] [--group params]\n");
        return 2;
    }
    double rtol = 1e-5;
    int exact = 0;
    const char *group = "params";
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--rtol") && i + 1 < argc) rtol = atof(argv[++i]);
        else if (!strcmp(argv[i], "--exact")) exact = 1;
        else if (!strcmp(argv[i], "--group") && i + 1 < argc) group = argv[++i];
        else {
            fprintf(stderr, "h5compare: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t fa = H5Fopen(argv[1], H5F_ACC_RDONLY, H5P_DEFAULT), fb = H5Fopen(argv[2], H5F_ACC_RDONLY, H5P_DEFAULT);
    if (fa < 0 || fb < 0) {
        fprintf(stderr, "h5compare: cannot open %s\n", fa < 0 ? argv[1] : argv[2]);
        return 2;
    }
    hid_t ga = H5Gopen2(fa, group, H5P_DEFAULT);
    if (ga < 0) {
        fprintf(stderr, "h5compare: %s has no group %s\n", argv[1], group);
        return 2;
    }
    acc a = {.other = fb, .group = group};
    H5Literate(ga, H5_INDEX_NAME, H5_ITER_INC, NULL, visit, &a);
    double global = sqrt(a.num) / (sqrt(a.den) > 1e-30 ? sqrt(a.den) : 1e-30);
    printf("h5compare %s vs %s: %lld tensors, global relative error %.3g, worst %.3g (%s), %lld elements differ "
           "in bits\n",
           argv[1], argv[2], a.tensors, global, a.worst, a.worst_name, a.differing_bits);
    H5Gclose(ga);
    H5Fclose(fa);
    H5Fclose(fb);
    if (a.tensors == 0 || a.missing) return 1;
    if (exact) return a.differing_bits == 0 ? 0 : 1;
    return global <= rtol ? 0 : 1;
}
