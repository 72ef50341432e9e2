#include "dpt/data/loader.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/core/timer.h"
#include "dpt/data/sampler.h"

typedef enum { JOB_NONE, JOB_TRAIN, JOB_EVAL } job_kind;

typedef struct slot {
    loader_batch b;
    bool ready;
} slot;

struct dpt_loader {
    const dpt_dataset *ds;
    int batch;
    aug_params aug;
    int depth;
    slot *slots;
    int64_t *perm;
    int64_t perm_epoch;

    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv_worker, cv_consumer;
    bool quit, cancel;
    /* current job */
    job_kind kind;
    uint64_t job_id;
    int64_t epoch, first_step, nsteps, global_batch, eval_begin, eval_end;
    int rank, world;
    int64_t produced, consumed; /* batches */
    bool holding;               /* consumer holds slot consumed-1 */
    bool worker_busy;
    double wait_s;
};

static int64_t job_batches(const dpt_loader *l) {
    if (l->kind == JOB_TRAIN) return l->nsteps;
    if (l->kind == JOB_EVAL) return (l->eval_end - l->eval_begin + l->batch - 1) / l->batch;
    return 0;
}

static void fill(dpt_loader *l, slot *s, int64_t k) {
    const dpt_dataset *ds = l->ds;
    const int64_t sample_floats = (int64_t)ds->c * ds->h * ds->w;
    const int64_t sample_bytes = sample_floats;
    loader_batch *b = &s->b;
    if (l->kind == JOB_TRAIN) {
        int64_t step = l->first_step + k;
        const int64_t *idx = l->perm + sampler_slice_begin(step, l->global_batch, l->rank, l->world);
        for (int i = 0; i < l->batch; i++) {
            int64_t si = idx[i];
            augment_sample(b->x + i * sample_floats, ds->images + si * sample_bytes, si, l->epoch, &l->aug);
            b->y[i] = ds->labels[si];
        }
        b->n = l->batch;
        b->step = step;
    } else {
        aug_params eval = l->aug;
        eval.train = false;
        int64_t begin = l->eval_begin + k * l->batch;
        int n = (int)DPT_MIN((int64_t)l->batch, l->eval_end - begin);
        for (int i = 0; i < n; i++) {
            int64_t si = begin + i;
            augment_sample(b->x + i * sample_floats, ds->images + si * sample_bytes, si, 0, &eval);
            b->y[i] = ds->labels[si];
        }
        /* Padding: zeros, never counted (the caller uses only the first n). */
        memset(b->x + n * sample_floats, 0, (size_t)(l->batch - n) * (size_t)sample_floats * sizeof(float));
        for (int i = n; i < l->batch; i++) b->y[i] = 0;
        b->n = n;
        b->step = k;
    }
}

static void *worker(void *arg) {
    dpt_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->quit && (l->kind == JOB_NONE || l->cancel || l->produced >= job_batches(l) ||
                            l->produced - l->consumed >= l->depth - 1)) {
            l->worker_busy = false;
            pthread_cond_broadcast(&l->cv_consumer);
            pthread_cond_wait(&l->cv_worker, &l->mu);
        }
        if (l->quit) break;
        l->worker_busy = true;
        int64_t k = l->produced;
        slot *s = &l->slots[k % l->depth];
        pthread_mutex_unlock(&l->mu);
        fill(l, s, k);
        pthread_mutex_lock(&l->mu);
        s->ready = true;
        l->produced++;
        pthread_cond_broadcast(&l->cv_consumer);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

dpt_loader *loader_create(const dpt_dataset *ds, int batch, const aug_params *aug, int depth) {
    dpt_loader *l = dpt_xcalloc(1, sizeof *l);
    l->ds = ds;
    l->batch = batch;
    l->aug = *aug;
    l->depth = depth < 2 ? 2 : depth;
    l->slots = dpt_xcalloc((size_t)l->depth, sizeof(slot));
    const size_t floats = (size_t)batch * ds->c * ds->h * ds->w;
    for (int i = 0; i < l->depth; i++) {
        l->slots[i].b.x = aligned_alloc(DPT_ALIGN, dpt_align_up(floats * sizeof(float), DPT_ALIGN));
        DPT_CHECK_LIB("libc", l->slots[i].b.x != NULL, "aligned_alloc", "loader: no memory for batch buffers");
        l->slots[i].b.y = dpt_xcalloc((size_t)batch, sizeof(int32_t));
    }
    l->perm = dpt_xmalloc((size_t)ds->n * sizeof(int64_t));
    l->perm_epoch = -1;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv_worker, NULL);
    pthread_cond_init(&l->cv_consumer, NULL);
    DPT_CHECK_LIB("pthread", pthread_create(&l->thread, NULL, worker, l) == 0, "pthread_create",
                  "cannot start the loader thread");
    return l;
}

void loader_stop(dpt_loader *l) {
    pthread_mutex_lock(&l->mu);
    l->cancel = true;
    pthread_cond_broadcast(&l->cv_worker);
    while (l->worker_busy) pthread_cond_wait(&l->cv_consumer, &l->mu);
    l->kind = JOB_NONE;
    l->cancel = false;
    l->produced = l->consumed = 0;
    l->holding = false;
    for (int i = 0; i < l->depth; i++) l->slots[i].ready = false;
    pthread_mutex_unlock(&l->mu);
}

void loader_destroy(dpt_loader *l) {
    if (!l) return;
    loader_stop(l);
    pthread_mutex_lock(&l->mu);
    l->quit = true;
    pthread_cond_broadcast(&l->cv_worker);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    for (int i = 0; i < l->depth; i++) {
        free(l->slots[i].b.x);
        free(l->slots[i].b.y);
    }
    free(l->slots);
    free(l->perm);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv_worker);
    pthread_cond_destroy(&l->cv_consumer);
    free(l);
}

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
    if (l->holding) { /* release the batch handed out last time */
        l->slots[(l->consumed - 1) % l->depth].ready = false;
        l->holding = false;
        pthread_cond_broadcast(&l->cv_worker);
    }
    if (l->kind == JOB_NONE || l->consumed >= job_batches(l)) {
        pthread_mutex_unlock(&l->mu);
        return NULL;
    }
    slot *s = &l->slots[l->consumed % l->depth];
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
