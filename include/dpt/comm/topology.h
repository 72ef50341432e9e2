/* Where ranks run: the node layout, computed from one key per rank (ranks with equal keys share a
 * node), and the accelerator a rank takes. Pure functions, so that layouts no test machine has
 * (several nodes, round-robin placement, one visible device per task) are unit-tested; comm_init
 * feeds them what MPI says. */
#ifndef DPT_COMM_TOPOLOGY_H
#define DPT_COMM_TOPOLOGY_H

#include <stddef.h>

typedef struct comm_place {
    int node;       /* nodes are numbered in the order of their lowest rank */
    int local_rank; /* position among the node's ranks, in world order */
    int local_size; /* ranks on the node */
} comm_place;

/* key[r] identifies rank r's node (any int; equal keys = same node). Fills out[0, world) and
 * returns the number of nodes. */
int comm_layout(const int *key, int world, comm_place *out);

/* The device a rank takes among the `visible` ones it can see (after CUDA_VISIBLE_DEVICES):
 *   - none visible: -1;
 *   - one visible: 0, whatever the local rank (Slurm's --gpu-bind / --gpus-per-task give each
 *     task its own CUDA_VISIBLE_DEVICES holding one device, and ranks that share one GPU);
 *   - at least as many as the node's ranks: the local rank;
 *   - fewer: local rank modulo the count (ranks share devices; `why` says so).
 * `why` (may be NULL) gets a short reason for the banner. */
int comm_pick_device(int local_rank, int local_size, int visible, char *why, size_t why_size);

/* "vm: ranks 0-3; gpu2: ranks 4-7" (host of each node, its ranks as ranges). hosts holds world
 * names of host_len bytes each. At most max_nodes nodes are listed, then "... (N more nodes)". */
void comm_describe_layout(const comm_place *p, const char *hosts, size_t host_len, int world, int max_nodes,
                          char *buf, size_t size);

/* Parses "k0,k1,...": exactly `world` non-negative ints into key. Returns 0, or -1 with a reason
 * in err. (The test hook DPT_TEST_NODE_OF_RANK: a made-up node per rank, on one host.) */
int comm_parse_node_keys(const char *text, int world, int *key, char *err, size_t err_size);

#endif
