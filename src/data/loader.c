#include "dpt/data/loader.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/core/timer.h"
#include "dpt/data/sampler.h"

typedef enum { JOB_NONE, JOB_TRAIN, JOB_EVAL } job_kind;

typedef struct slot {
    loader_batch b;
    int remaining; /* chunks still being filled */
    bool ready;
} slot;

typedef struct worker {
    struct dpt_loader *l;
    pthread_t thread;
    aug_worker *aw;
} worker;

struct dpt_loader {
    const dpt_dataset *ds;
    aug_params aug;
    loader_opts o;
    slot *slots;
    worker *workers;
    int64_t *perm;
    int64_t perm_epoch;
    int chunk, chunks_per_batch;

    pthread_mutex_t mu;
    pthread_cond_t cv_worker, cv_consumer;
    bool quit, cancel;
    /* current job */
    job_kind kind;
    int64_t epoch, first_step, nsteps, global_batch, eval_begin, eval_end;
    int rank, world;
    int64_t next_item; /* batch * chunks_per_batch + chunk */
    int64_t consumed;  /* batches handed out */
    bool holding;      /* the consumer holds batch consumed - 1 */
    int busy;          /* workers inside a chunk */
    double wait_s;
};

static int64_t job_batches(const dpt_loader *l) {
    if (l->kind == JOB_TRAIN) return l->nsteps;
    if (l->kind == JOB_EVAL) return (l->eval_end - l->eval_begin + l->o.batch - 1) / l->o.batch;
    return 0;
}

static bool work_available(const dpt_loader *l) {
    if (l->kind == JOB_NONE || l->cancel) return false;
    int64_t k = l->next_item / l->chunks_per_batch;
    return k < job_batches(l) && k < l->consumed + l->o.depth - 1;
}

/* Fills samples [i0, i1) of batch k (called without the lock). */
static void fill_chunk(dpt_loader *l, worker *w, slot *s, int64_t k, int i0, int i1) {
    const dpt_dataset *ds = l->ds;
    const aug_params *aug = &l->aug;
    const int64_t sample_floats = (int64_t)ds->c * aug->out_h * aug->out_w;
    loader_batch *b = &s->b;
    aug_params eval;
    const int64_t *idx = NULL;
    int64_t begin = 0;
    if (l->kind == JOB_TRAIN) {
        idx = l->perm + sampler_slice_begin(l->first_step + k, l->global_batch, l->rank, l->world);
    } else {
        eval = l->aug;
        eval.train = false;
        aug = &eval;
        begin = l->eval_begin + k * l->o.batch;
    }
    for (int i = i0; i < i1; i++) {
        float *out = b->x + i * sample_floats;
        if (i >= b->n) { /* evaluation padding: zeros, never counted */
            memset(out, 0, (size_t)sample_floats * sizeof(float));
            b->y[i] = 0;
            continue;
        }
        int64_t si = idx ? idx[i] : begin + i;
        dpt_status st = augment_load(w->aw, ds, si, idx ? l->epoch : 0, aug, out);
        if (st != DPT_OK) dpt_fatal("data", "augment_load", __FILE__, __LINE__, "%s", dpt_error_message());
        b->y[i] = ds->labels[si];
    }
}

static void *worker_main(void *arg) {
    worker *w = arg;
    dpt_loader *l = w->l;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->quit && !work_available(l)) pthread_cond_wait(&l->cv_worker, &l->mu);
        if (l->quit) break;
        int64_t item = l->next_item++;
        int64_t k = item / l->chunks_per_batch;
        int j = (int)(item % l->chunks_per_batch);
        slot *s = &l->slots[k % l->o.depth];
        if (j == 0) { /* first chunk of the batch claims the slot */
            s->ready = false;
            s->remaining = l->chunks_per_batch;
            s->b.step = l->kind == JOB_TRAIN ? l->first_step + k : k;
            s->b.n = l->kind == JOB_TRAIN ? l->o.batch
                                          : (int)DPT_MIN((int64_t)l->o.batch, l->eval_end - (l->eval_begin + k * l->o.batch));
        }
        l->busy++;
        pthread_mutex_unlock(&l->mu);
        int i0 = j * l->chunk, i1 = (int)DPT_MIN((int64_t)l->o.batch, (int64_t)(j + 1) * l->chunk);
        fill_chunk(l, w, s, k, i0, i1);
        pthread_mutex_lock(&l->mu);
        l->busy--;
        if (--s->remaining == 0) s->ready = true;
        pthread_cond_broadcast(&l->cv_consumer);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static void *default_alloc(size_t bytes) { return aligned_alloc(DPT_ALIGN, dpt_align_up(bytes, DPT_ALIGN)); }

dpt_loader *loader_create(const dpt_dataset *ds, const aug_params *aug, const loader_opts *o) {
    dpt_loader *l = dpt_xcalloc(1, sizeof *l);
    l->ds = ds;
    l->aug = *aug;
    l->o = *o;
    if (l->o.depth < 2) l->o.depth = 2;
    if (l->o.workers < 1) l->o.workers = 1;
    if (!l->o.alloc) {
        l->o.alloc = default_alloc;
        l->o.release = free;
    }
    if (l->o.max_h < aug->out_h) l->o.max_h = aug->out_h;
    if (l->o.max_w < aug->out_w) l->o.max_w = aug->out_w;
    /* Chunks: small enough that all workers share a batch, large enough to amortise the lock. */
    int per = (l->o.batch + 4 * l->o.workers - 1) / (4 * l->o.workers);
    l->chunk = per < 4 ? 4 : per;
    if (l->chunk > l->o.batch) l->chunk = l->o.batch;
    l->chunks_per_batch = (l->o.batch + l->chunk - 1) / l->chunk;
    l->slots = dpt_xcalloc((size_t)l->o.depth, sizeof(slot));
    const size_t floats = (size_t)l->o.batch * ds->c * l->o.max_h * l->o.max_w;
    for (int i = 0; i < l->o.depth; i++) {
        l->slots[i].b.x = l->o.alloc(floats * sizeof(float));
        DPT_CHECK_LIB("libc", l->slots[i].b.x != NULL, "alloc", "loader: no memory for %d batch buffers of %zu MB",
                      l->o.depth, (floats * sizeof(float)) >> 20);
        l->slots[i].b.y = dpt_xcalloc((size_t)l->o.batch, sizeof(int32_t));
    }
    l->perm = dpt_xmalloc((size_t)ds->n * sizeof(int64_t));
    l->perm_epoch = -1;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv_worker, NULL);
    pthread_cond_init(&l->cv_consumer, NULL);
    l->workers = dpt_xcalloc((size_t)l->o.workers, sizeof(worker));
    for (int i = 0; i < l->o.workers; i++) {
        l->workers[i].l = l;
        l->workers[i].aw = aug_worker_create();
        DPT_CHECK_LIB("pthread", pthread_create(&l->workers[i].thread, NULL, worker_main, &l->workers[i]) == 0,
                      "pthread_create", "cannot start loader thread %d", i);
    }
    return l;
}

void loader_stop(dpt_loader *l) {
    pthread_mutex_lock(&l->mu);
    l->cancel = true;
    while (l->busy > 0) pthread_cond_wait(&l->cv_consumer, &l->mu);
    l->kind = JOB_NONE;
    l->cancel = false;
    l->next_item = l->consumed = 0;
    l->holding = false;
    for (int i = 0; i < l->o.depth; i++) l->slots[i].ready = false;
    pthread_mutex_unlock(&l->mu);
}

void loader_destroy(dpt_loader *l) {
    if (!l) return;
    loader_stop(l);
    pthread_mutex_lock(&l->mu);
    l->quit = true;
    pthread_cond_broadcast(&l->cv_worker);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->o.workers; i++) {
        pthread_join(l->workers[i].thread, NULL);
        aug_worker_destroy(l->workers[i].aw);
    }
    for (int i = 0; i < l->o.depth; i++) {
        l->o.release(l->slots[i].b.x);
        free(l->slots[i].b.y);
    }
    free(l->workers);
    free(l->slots);
    free(l->perm);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv_worker);
    pthread_cond_destroy(&l->cv_consumer);
    free(l);
}

void loader_set_size(dpt_loader *l, int out_h, int out_w) {
    loader_stop(l);
    DPT_CHECK(out_h > 0 && out_w > 0 && (int64_t)out_h * out_w <= (int64_t)l->o.max_h * l->o.max_w);
    l->aug.out_h = out_h;
    l->aug.out_w = out_w;
}

int loader_workers(const dpt_loader *l) { return l->o.workers; }

void loader_start_train(dpt_loader *l, int64_t epoch, int64_t first_step, int64_t nsteps, int64_t global_batch,
                        int rank, int world) {
    loader_stop(l);
    if (l->perm_epoch != epoch) {
        sampler_permutation(l->aug.seed, epoch, l->ds->n, l->perm);
        l->perm_epoch = epoch;
    }
    pthread_mutex_lock(&l->mu);
    l->kind = JOB_TRAIN;
    l->epoch = epoch;
    l->first_step = first_step;
    l->nsteps = nsteps;
    l->global_batch = global_batch;
    l->rank = rank;
    l->world = world;
    pthread_cond_broadcast(&l->cv_worker);
    pthread_mutex_unlock(&l->mu);
}

void loader_start_eval(dpt_loader *l, int64_t begin, int64_t end) {
    loader_stop(l);
    pthread_mutex_lock(&l->mu);
    l->kind = JOB_EVAL;
    l->eval_begin = begin;
    l->eval_end = end;
    pthread_cond_broadcast(&l->cv_worker);
    pthread_mutex_unlock(&l->mu);
}

const loader_batch *loader_next(dpt_loader *l) {
    pthread_mutex_lock(&l->mu);
    if (l->holding) { /* release the batch handed out last time: its slot may be refilled */
        l->slots[(l->consumed - 1) % l->o.depth].ready = false;
        l->holding = false;
        pthread_cond_broadcast(&l->cv_worker);
    }
    if (l->kind == JOB_NONE || l->consumed >= job_batches(l)) {
        pthread_mutex_unlock(&l->mu);
        return NULL;
    }
    slot *s = &l->slots[l->consumed % l->o.depth];
    double t0 = timer_now();
    while (!s->ready) pthread_cond_wait(&l->cv_consumer, &l->mu);
    l->wait_s += timer_now() - t0;
    l->consumed++;
    l->holding = true;
    pthread_mutex_unlock(&l->mu);
    return &s->b;
}

double loader_take_wait_time(dpt_loader *l) {
    pthread_mutex_lock(&l->mu);
    double w = l->wait_s;
    l->wait_s = 0.0;
    pthread_mutex_unlock(&l->mu);
    return w;
}
