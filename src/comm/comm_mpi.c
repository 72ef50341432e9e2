/* MPI back end: initialisation, topology and the collectives. Each collective is issued in its
 * non-blocking form and completed by comm_wait (watchdog.c), which enforces comm.timeout_s. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comm_internal.h"
#include "dpt/core/bf16.h"
#include "dpt/core/log.h"

static comm_info info;
static bool initialised;
static comm_place *places; /* every rank's, indexed by rank */
static char *hosts;        /* every rank's host name, COMM_HOST_LEN bytes each */
static MPI_Op bf16_sum_op = MPI_OP_NULL; /* created on first use */

static void abort_all(int code) {
    if (initialised) comm_abort_bounded(code);
}

/* Who started us, read before MPI_Init (a singleton's MPI_Init sets Open MPI's variables). */
static void detect_launcher(void) {
    const char *job = getenv("SLURM_JOB_ID"), *step = getenv("SLURM_STEP_ID");
    bool pmi = getenv("PMIX_RANK") || getenv("PMI_RANK");
    if (getenv("OMPI_COMM_WORLD_SIZE"))
        snprintf(info.launcher, sizeof info.launcher, "mpirun%s%s", job ? " in Slurm job " : "", job ? job : "");
    else if (step && pmi)
        snprintf(info.launcher, sizeof info.launcher, "srun (Slurm job %s, step %s)", job ? job : "?", step);
    else if (pmi)
        snprintf(info.launcher, sizeof info.launcher, "a PMI launcher");
    else
        snprintf(info.launcher, sizeof info.launcher, "none (singleton)");
    info.launched = getenv("OMPI_COMM_WORLD_SIZE") || pmi;
}

/* Node layout: ranks that share memory (MPI_Comm_split_type(SHARED)) are a node, keyed by the
 * lowest world rank among them, whatever the launcher. The test hook DPT_TEST_NODE_OF_RANK
 * ("0,0,1,1") replaces the keys with made-up nodes, so multi-node layouts run on one host. */
static void find_layout(void) {
    MPI_Comm node_comm;
    MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, info.rank, MPI_INFO_NULL, &node_comm));
    int key = info.rank;
    MPI_CHECK(MPI_Allreduce(&info.rank, &key, 1, MPI_INT, MPI_MIN, node_comm));
    MPI_CHECK(MPI_Comm_free(&node_comm));
    int *keys = dpt_xcalloc((size_t)info.world, sizeof *keys);
    MPI_CHECK(MPI_Allgather(&key, 1, MPI_INT, keys, 1, MPI_INT, MPI_COMM_WORLD));
    const char *fake = getenv("DPT_TEST_NODE_OF_RANK");
    if (fake && *fake) {
        char err[128];
        DPT_CHECK_LIB("comm", comm_parse_node_keys(fake, info.world, keys, err, sizeof err) == 0,
                      "DPT_TEST_NODE_OF_RANK", "'%s': %s", fake, err);
    }
    places = dpt_xcalloc((size_t)info.world, sizeof *places);
    info.num_nodes = comm_layout(keys, info.world, places);
    free(keys);
    info.node = places[info.rank].node;
    info.local_rank = places[info.rank].local_rank;
    info.local_size = places[info.rank].local_size;
    hosts = dpt_xcalloc((size_t)info.world, COMM_HOST_LEN);
    char host[COMM_HOST_LEN] = "";
    memcpy(host, info.host, DPT_MIN(strlen(info.host), sizeof host - 1)); /* cut: the start tells hosts apart */
    MPI_CHECK(MPI_Allgather(host, COMM_HOST_LEN, MPI_CHAR, hosts, COMM_HOST_LEN, MPI_CHAR, MPI_COMM_WORLD));
}

void comm_init(int *argc, char ***argv) {
    detect_launcher();
    int provided;
    MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
    initialised = true;
    /* Errors come back as return codes, checked by MPI_CHECK, which names the call. */
    MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &info.rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &info.world));
    if (gethostname(info.host, sizeof info.host - 1) != 0) snprintf(info.host, sizeof info.host, "unknown");
    dpt_error_set_identity(info.rank, info.host);
    dpt_error_set_abort_hook(abort_all);
    find_layout();
    int len = 0;
    MPI_Get_library_version(info.mpi_version, &len);
    char *nl = strchr(info.mpi_version, '\n');
    if (nl) *nl = '\0';
    char *comma = strchr(info.mpi_version, ',');
    if (comma) *comma = '\0';
    comm_watchdog_init(&info);
    log_init(info.rank);
}

const comm_place *comm_places(void) { return places; }

const char *comm_host_of(int rank) { return hosts + (size_t)rank * COMM_HOST_LEN; }

const comm_info *comm_get(void) { return &info; }

void comm_finalize(void) {
    if (!initialised) return;
    comm_watchdog_finalize();
    free(places);
    free(hosts);
    places = NULL;
    hosts = NULL;
    if (bf16_sum_op != MPI_OP_NULL) MPI_Op_free(&bf16_sum_op);
    MPI_Finalize();
    initialised = false;
}

void comm_abort(int code) { comm_abort_bounded(code); }

/* One request, issued as collective number seq: wait for it. */
static void wait1(MPI_Request req, uint64_t seq, const char *what) { comm_wait(&req, 1, seq, what); }

static void allreduce(void *buf, int n, MPI_Datatype type, MPI_Op op, MPI_Comm c, const char *what) {
    uint64_t seq = comm_next_seq();
    MPI_Request req;
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buf, n, type, op, c, &req));
    wait1(req, seq, what);
}

void comm_barrier(void) {
    uint64_t seq = comm_next_seq();
    MPI_Request req;
    MPI_CHECK(MPI_Ibarrier(MPI_COMM_WORLD, &req));
    wait1(req, seq, "barrier");
}

void comm_bcast(void *buf, size_t bytes, int root) {
    /* MPI counts are int: large buffers go in pieces, one collective number for all of them. */
    uint64_t seq = comm_next_seq();
    const size_t piece = (size_t)DPT_COMM_PIECE_BYTES;
    for (size_t off = 0; off < bytes; off += piece) {
        size_t n = bytes - off < piece ? bytes - off : piece;
        MPI_Request req;
        MPI_CHECK(MPI_Ibcast((char *)buf + off, (int)n, MPI_BYTE, root, MPI_COMM_WORLD, &req));
        wait1(req, seq, "broadcast");
    }
}

void comm_allreduce_sum_f64(double *buf, int n) { allreduce(buf, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, "allreduce"); }

/* An in-place allreduce of n elements of `elem` bytes in pieces of DPT_COMM_PIECE_BYTES (MPI
 * counts are int), one collective number for all of them. */
static void allreduce_pieces(void *buf, int64_t n, size_t elem, MPI_Datatype type, MPI_Op op) {
    uint64_t seq = comm_next_seq();
    const int64_t piece = DPT_COMM_PIECE_BYTES / (int64_t)elem;
    for (int64_t off = 0; off < n; off += piece) {
        int cnt = (int)(n - off < piece ? n - off : piece);
        MPI_Request req;
        MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, (char *)buf + off * (int64_t)elem, cnt, type, op, MPI_COMM_WORLD, &req));
        wait1(req, seq, "allreduce");
    }
}

void comm_allreduce_sum_f32(float *buf, int64_t n) { allreduce_pieces(buf, n, sizeof(float), MPI_FLOAT, MPI_SUM); }

/* bf16 sum for MPI (which has no bf16 type): each pair added in float32 and rounded back. */
static void bf16_sum(void *in, void *inout, int *len, MPI_Datatype *type) {
    (void)type;
    const uint16_t *a = in;
    uint16_t *b = inout;
    for (int i = 0; i < *len; i++) b[i] = f32_to_bf16(bf16_to_f32(a[i]) + bf16_to_f32(b[i]));
}

MPI_Op comm_bf16_sum_op(void) {
    if (bf16_sum_op == MPI_OP_NULL) MPI_CHECK(MPI_Op_create(bf16_sum, 1, &bf16_sum_op));
    return bf16_sum_op;
}

void comm_allreduce_sum_bf16(uint16_t *buf, int64_t n) {
    allreduce_pieces(buf, n, sizeof(uint16_t), MPI_UINT16_T, comm_bf16_sum_op());
}

void comm_allreduce_sum_i64(int64_t *buf, int n) {
    allreduce(buf, n, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD, "allreduce");
}

void comm_allreduce_max_f64(double *buf, int n) { allreduce(buf, n, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD, "allreduce"); }

void comm_allreduce_min_i64(int64_t *buf, int n) {
    allreduce(buf, n, MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD, "allreduce");
}

void comm_allgather_u64(uint64_t value, uint64_t *out) {
    uint64_t seq = comm_next_seq();
    MPI_Request req;
    MPI_CHECK(MPI_Iallgather(&value, 1, MPI_UINT64_T, out, 1, MPI_UINT64_T, MPI_COMM_WORLD, &req));
    wait1(req, seq, "allgather");
}

/* Piece [off, off + cnt) of every rank's n floats, as one element whose extent is n floats: rank
 * r's piece then lands at r * n + off, so pieces need no copies. */
static MPI_Datatype strided_piece(int cnt, int64_t n) {
    MPI_Datatype piece, strided;
    MPI_CHECK(MPI_Type_contiguous(cnt, MPI_FLOAT, &piece));
    MPI_CHECK(MPI_Type_create_resized(piece, 0, (MPI_Aint)n * (MPI_Aint)sizeof(float), &strided));
    MPI_CHECK(MPI_Type_commit(&strided));
    MPI_CHECK(MPI_Type_free(&piece));
    return strided;
}

/* Gather (root receives every rank's n floats in rank order) or its inverse, scatter, in pieces
 * of DPT_COMM_PIECE_BYTES; on the root a piece's rank blocks lie n floats apart (strided_piece). */
static void gather_scatter(bool gather, const float *send, float *recv, int64_t n, int root) {
    const char *what = gather ? "gather" : "scatter";
    DPT_CHECK_LIB("comm", root >= 0 && root < info.world && n >= 0, what, "root %d, n %lld", root, (long long)n);
    uint64_t seq = comm_next_seq();
    const int64_t piece = DPT_COMM_PIECE_BYTES / (int64_t)sizeof(float);
    bool is_root = info.rank == root;
    for (int64_t off = 0; off < n; off += piece) {
        int cnt = (int)(n - off < piece ? n - off : piece);
        /* One piece needs no derived type; the root's side is the only one that is strided. */
        MPI_Datatype rooted = n <= piece || !is_root ? MPI_FLOAT : strided_piece(cnt, n);
        int rcount = rooted == MPI_FLOAT ? cnt : 1;
        MPI_Request req;
        if (gather)
            MPI_CHECK(MPI_Igather(send + off, cnt, MPI_FLOAT, is_root ? recv + off : NULL, rcount, rooted, root,
                                  MPI_COMM_WORLD, &req));
        else
            MPI_CHECK(MPI_Iscatter(is_root ? send + off : NULL, rcount, rooted, recv + off, cnt, MPI_FLOAT, root,
                                   MPI_COMM_WORLD, &req));
        wait1(req, seq, what);
        if (rooted != MPI_FLOAT) MPI_CHECK(MPI_Type_free(&rooted));
    }
}

void comm_gather_bytes(const void *send, int n, void *recv, int root) {
    uint64_t seq = comm_next_seq();
    MPI_Request req;
    MPI_CHECK(MPI_Igather(send, n, MPI_BYTE, info.rank == root ? recv : NULL, n, MPI_BYTE, root, MPI_COMM_WORLD,
                          &req));
    wait1(req, seq, "gather");
}

void comm_gather_f32(const float *send, int64_t n, float *recv, int root) { gather_scatter(true, send, recv, n, root); }

void comm_scatter_f32(const float *send, float *recv, int64_t n, int root) {
    gather_scatter(false, send, recv, n, root);
}

int comm_agree(dpt_status s) {
    int mine = s == DPT_OK ? INT_MAX : info.rank, lowest = INT_MAX;
    uint64_t seq = comm_next_seq();
    MPI_Request req;
    MPI_CHECK(MPI_Iallreduce(&mine, &lowest, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD, &req));
    wait1(req, seq, "agreement");
    return lowest == INT_MAX ? -1 : lowest;
}

struct comm_group {
    MPI_Comm comm;
    char what[48]; /* the label of its collectives in stall reports */
};

comm_group *comm_group_create(int size) {
    if (size <= 0 || size > info.world) size = info.world;
    DPT_CHECK_LIB("comm", info.world % size == 0, "comm_group_create", "a group of %d ranks does not divide %d ranks",
                  size, info.world);
    comm_group *g = dpt_xcalloc(1, sizeof *g);
    MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, info.rank / size, info.rank, &g->comm));
    MPI_CHECK(MPI_Comm_set_errhandler(g->comm, MPI_ERRORS_RETURN));
    int first = info.rank / size * size;
    snprintf(g->what, sizeof g->what, "group allreduce (ranks %d-%d)", first, first + size - 1);
    return g;
}

void comm_group_destroy(comm_group *g) {
    if (!g) return;
    MPI_Comm_free(&g->comm);
    free(g);
}

void comm_group_allreduce_sum_f64(comm_group *g, double *buf, int n) {
    allreduce(buf, n, MPI_DOUBLE, MPI_SUM, g->comm, g->what);
}
