/* Node layout and device choice under layouts no test machine has: several nodes, ranks placed
 * by node or round-robin, uneven nodes, and Slurm's one visible device per task. */
#include <string.h>

#include "dpt/comm/topology.h"
#include "testutil.h"

/* The layout of keys[0, world) must be node[r], local[r], size[r]; nodes in total. */
static void check_layout(const char *what, const int *keys, int world, const int *node, const int *local,
                         const int *size, int nodes) {
    comm_place p[16];
    int n = comm_layout(keys, world, p);
    TU_CHECK(n == nodes, "%s: %d nodes, want %d", what, n, nodes);
    for (int r = 0; r < world; r++)
        TU_CHECK(p[r].node == node[r] && p[r].local_rank == local[r] && p[r].local_size == size[r],
                 "%s: rank %d at node %d local %d of %d, want node %d local %d of %d", what, r, p[r].node,
                 p[r].local_rank, p[r].local_size, node[r], local[r], size[r]);
}

static void test_layouts(void) {
    /* mpirun --map-by slot on 2 nodes of 4 (keys: the lowest rank of each node, as comm_init uses). */
    check_layout("by slot", (int[]){0, 0, 0, 0, 4, 4, 4, 4}, 8, (int[]){0, 0, 0, 0, 1, 1, 1, 1},
                 (int[]){0, 1, 2, 3, 0, 1, 2, 3}, (int[]){4, 4, 4, 4, 4, 4, 4, 4}, 2);
    /* --map-by node: round-robin over 2 nodes. */
    check_layout("round-robin", (int[]){0, 1, 0, 1, 0, 1}, 6, (int[]){0, 1, 0, 1, 0, 1}, (int[]){0, 0, 1, 1, 2, 2},
                 (int[]){3, 3, 3, 3, 3, 3}, 2);
    /* Uneven nodes (3 + 1 + 2), keys that are not rank numbers. */
    check_layout("uneven", (int[]){7, 7, 7, 3, 9, 9}, 6, (int[]){0, 0, 0, 1, 2, 2}, (int[]){0, 1, 2, 0, 0, 1},
                 (int[]){3, 3, 3, 1, 2, 2}, 3);
    check_layout("one rank", (int[]){0}, 1, (int[]){0}, (int[]){0}, (int[]){1}, 1);
    /* One rank per node (Slurm --ntasks-per-node=1). */
    check_layout("a rank per node", (int[]){0, 1, 2, 3}, 4, (int[]){0, 1, 2, 3}, (int[]){0, 0, 0, 0},
                 (int[]){1, 1, 1, 1}, 4);
}

static void test_devices(void) {
    char why[128];
    /* 4 ranks on a node that shows them all 4 GPUs (mpirun): the local rank. */
    for (int l = 0; l < 4; l++) TU_CHECK(comm_pick_device(l, 4, 4, why, sizeof why) == l, "4 of 4: rank %d", l);
    /* Slurm --gpus-per-task=1: each task sees its own one device as device 0. */
    for (int l = 0; l < 4; l++) {
        TU_CHECK(comm_pick_device(l, 4, 1, why, sizeof why) == 0, "one visible: local rank %d", l);
        TU_CHECK(tu_contains(why, "one visible device"), "why: %s", why);
    }
    /* More devices than ranks: still the local rank. */
    TU_CHECK(comm_pick_device(1, 2, 8, why, sizeof why) == 1, "2 ranks, 8 devices");
    /* Fewer devices than ranks: shared round-robin, and the reason says so. */
    TU_CHECK(comm_pick_device(3, 4, 2, why, sizeof why) == 1 && tu_contains(why, "share"), "4 ranks on 2: %s", why);
    TU_CHECK(comm_pick_device(0, 1, 0, why, sizeof why) == -1 && tu_contains(why, "no device"), "none: %s", why);
    TU_CHECK(comm_pick_device(0, 1, 1, NULL, 0) == 0, "no reason buffer");
}

static void test_describe(void) {
    char hosts[6][64];
    const char *names[6] = {"gpu-a", "gpu-b", "gpu-a", "gpu-b", "gpu-a", "gpu-c"};
    for (int r = 0; r < 6; r++) snprintf(hosts[r], sizeof hosts[r], "%s", names[r]);
    comm_place p[6];
    comm_layout((int[]){0, 1, 0, 1, 0, 5}, 6, p);
    char text[256];
    comm_describe_layout(p, hosts[0], 64, 6, 8, text, sizeof text);
    TU_CHECK(!strcmp(text, "gpu-a: ranks 0,2,4; gpu-b: ranks 1,3; gpu-c: rank 5"), "got '%s'", text);
    comm_layout((int[]){0, 0, 0, 3, 3, 3}, 6, p);
    comm_describe_layout(p, hosts[0], 64, 6, 8, text, sizeof text);
    TU_CHECK(!strcmp(text, "gpu-a: ranks 0-2; gpu-b: ranks 3-5"), "got '%s'", text);
    comm_describe_layout(p, hosts[0], 64, 6, 1, text, sizeof text);
    TU_CHECK(!strcmp(text, "gpu-a: ranks 0-2; ... (1 more nodes)"), "got '%s'", text);
    /* A small buffer is cut, not overrun. */
    char small[12];
    memset(small, 'x', sizeof small);
    comm_describe_layout(p, hosts[0], 64, 6, 8, small, sizeof small);
    TU_CHECK(strlen(small) < sizeof small, "cut to %zu", strlen(small));
}

static void test_parse(void) {
    int key[4];
    char err[128];
    TU_CHECK(comm_parse_node_keys("0,0,1,1", 4, key, err, sizeof err) == 0 && key[2] == 1, "parse: %s", err);
    TU_CHECK(comm_parse_node_keys("0,0,1", 4, key, err, sizeof err) == -1 && tu_contains(err, "3 entries"),
             "too few: %s", err);
    TU_CHECK(comm_parse_node_keys("0,0,1,1,2", 4, key, err, sizeof err) == -1 && tu_contains(err, "more entries"),
             "too many: %s", err);
    TU_CHECK(comm_parse_node_keys("0,a,1,1", 4, key, err, sizeof err) == -1 && tu_contains(err, "entry 1"),
             "not a number: %s", err);
}

int main(void) {
    test_layouts();
    test_devices();
    test_describe();
    test_parse();
    return tu_finish("test_topology");
}
