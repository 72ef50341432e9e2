/* MPI back end: initialisation, topology and the blocking collectives. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comm_internal.h"
#include "dpt/core/log.h"

static comm_info info;
static bool initialised;

static void abort_all(int code) {
    if (initialised) MPI_Abort(MPI_COMM_WORLD, code);
}

void comm_init(int *argc, char ***argv) {
    /* Read before MPI_Init: a singleton's MPI_Init sets these in our own environment. */
    info.launched = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
    int provided;
    MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
    initialised = true;
    /* Errors come back as return codes, checked by MPI_CHECK, which names the call. */
    MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &info.rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &info.world));
    if (gethostname(info.host, sizeof info.host - 1) != 0) snprintf(info.host, sizeof info.host, "unknown");
    MPI_Comm node_comm;
    MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, info.rank, MPI_INFO_NULL, &node_comm));
    MPI_CHECK(MPI_Comm_rank(node_comm, &info.local_rank));
    MPI_CHECK(MPI_Comm_size(node_comm, &info.local_size));
    int leader = info.local_rank == 0, before = 0;
    MPI_CHECK(MPI_Exscan(&leader, &before, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
    if (info.rank == 0) before = 0; /* MPI_Exscan leaves rank 0's result undefined */
    info.node = before;
    MPI_CHECK(MPI_Bcast(&info.node, 1, MPI_INT, 0, node_comm));
    MPI_CHECK(MPI_Allreduce(&leader, &info.num_nodes, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
    MPI_CHECK(MPI_Comm_free(&node_comm));
    int len = 0;
    MPI_Get_library_version(info.mpi_version, &len);
    char *nl = strchr(info.mpi_version, '\n');
    if (nl) *nl = '\0';
    char *comma = strchr(info.mpi_version, ',');
    if (comma) *comma = '\0';
    dpt_error_set_identity(info.rank, info.host);
    dpt_error_set_abort_hook(abort_all);
    log_init(info.rank);
}

const comm_info *comm_get(void) { return &info; }

void comm_finalize(void) {
    if (!initialised) return;
    MPI_Finalize();
    initialised = false;
}

void comm_abort(int code) {
    fflush(stdout);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    _exit(code); /* not reached */
}

void comm_barrier(void) { MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD)); }

void comm_bcast(void *buf, size_t bytes, int root) {
    /* MPI counts are int: send large buffers in pieces. */
    const size_t piece = (size_t)1 << 30;
    for (size_t off = 0; off < bytes; off += piece) {
        size_t n = bytes - off < piece ? bytes - off : piece;
        MPI_CHECK(MPI_Bcast((char *)buf + off, (int)n, MPI_BYTE, root, MPI_COMM_WORLD));
    }
}

void comm_allreduce_sum_f64(double *buf, int n) {
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
}

void comm_allreduce_sum_f32(float *buf, int64_t n) {
    const int64_t piece = (int64_t)1 << 28;
    for (int64_t off = 0; off < n; off += piece) {
        int cnt = (int)(n - off < piece ? n - off : piece);
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf + off, cnt, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
    }
}

void comm_allreduce_sum_i64(int64_t *buf, int n) {
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD));
}

void comm_allreduce_max_f64(double *buf, int n) {
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
}

void comm_allgather_u64(uint64_t value, uint64_t *out) {
    MPI_CHECK(MPI_Allgather(&value, 1, MPI_UINT64_T, out, 1, MPI_UINT64_T, MPI_COMM_WORLD));
}

int comm_agree(dpt_status s) {
    int mine = s == DPT_OK ? INT_MAX : info.rank, lowest = INT_MAX;
    MPI_CHECK(MPI_Allreduce(&mine, &lowest, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    return lowest == INT_MAX ? -1 : lowest;
}

struct comm_group {
    MPI_Comm comm;
};

comm_group *comm_group_create(int size) {
    if (size <= 0 || size > info.world) size = info.world;
    DPT_CHECK_LIB("comm", info.world % size == 0, "comm_group_create", "a group of %d ranks does not divide %d ranks",
                  size, info.world);
    comm_group *g = dpt_xcalloc(1, sizeof *g);
    MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, info.rank / size, info.rank, &g->comm));
    MPI_CHECK(MPI_Comm_set_errhandler(g->comm, MPI_ERRORS_RETURN));
    return g;
}

void comm_group_destroy(comm_group *g) {
    if (!g) return;
    MPI_Comm_free(&g->comm);
    free(g);
}

void comm_group_allreduce_sum_f64(comm_group *g, double *buf, int n) {
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, g->comm));
}
