/* dptrain info: version and build features. Runs without MPI. */
#include <mpi.h>
#include <hdf5.h>
#include <omp.h>
#include <stdio.h>
#include <turbojpeg.h>
#include <string.h>

#include "cli.h"
#include "dpt/backend/backend.h"
#include "dpt/backend/cuda.h"
#include "dpt/core/config.h"

int cmd_info(int argc, char **argv) {
    if (argc >= 1 && !strcmp(argv[0], "--config-keys")) {
        config_print_schema(stdout);
        return 0;
    }
    char mpi[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(mpi, &len); /* allowed before MPI_Init */
    char *nl = strchr(mpi, '\n');
    if (nl) *nl = '\0';
    unsigned maj, min, rel;
    H5get_libversion(&maj, &min, &rel);
    printf("dptrain %s\n", DPT_VERSION);
    printf("  CPU back end  : %s\n", backend_cpu_describe());
    printf("  OpenMP        : %d, up to %d threads here\n", _OPENMP, omp_get_max_threads());
    printf("  MPI           : %s (MPI %d.%d)\n", mpi, MPI_VERSION, MPI_SUBVERSION);
    hbool_t ts = 0;
    H5is_library_threadsafe(&ts);
    int nscale = 0;
    tjGetScalingFactors(&nscale);
    printf("  HDF5          : %u.%u.%u (%s)\n", maj, min, rel, ts ? "thread-safe build" : "not thread-safe");
    printf("  JPEG          : libjpeg-turbo, TurboJPEG API (%d decode scaling factors)\n", nscale);
    cuda_print_info(stdout);
    printf("  models        : resnet9, resnet18 (CIFAR style), resnet50 (v1.5)\n");
    return 0;
}
