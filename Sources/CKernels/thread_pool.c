/* The persistent workers behind Runtime's ThreadPool (thread_pool.h). Linux: the threads
 * sleep on futexes. */
#define _GNU_SOURCE
#include "thread_pool.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* How long a thread waits awake for the next job (a worker) or for the other threads'
 * chunks (the caller) before it sleeps. Consecutive calls of one model run are a few µs
 * apart, so they find the workers awake; a process that stops calling burns at most this
 * much CPU per worker. */
#define SPIN_NANOSECONDS 50000
#define YIELD_AFTER_NANOSECONDS 5000

struct restore_pool {
    int threads;
    /* Bumped by every job and by restore_pool_destroy; the workers sleep on it. */
    _Atomic uint32_t generation;
    /* The current job's generation in the high 32 bits, its next unclaimed chunk in the
     * low 32: a thread claims a chunk by compare-and-swap, so a late thread cannot claim
     * a chunk of a later job believing it belongs to the one it woke for. */
    _Atomic uint64_t claim;
    _Atomic long chunks;
    /* Written before `claim` is published and read only by a thread that has claimed a
     * chunk, so never while they change: the job cannot end before that chunk does. */
    restore_pool_body body;
    void *context;
    /* Chunks not yet finished; the thread finishing the last sets `done`, on which the
     * caller sleeps. */
    _Atomic long unfinished;
    _Atomic uint32_t done;
    _Atomic int caller_sleeping;
    _Atomic int sleeping_workers;
    _Atomic int stopping;
    /* Set while a job runs: another thread calling meanwhile runs its chunks itself. */
    _Atomic int busy;
    /* Workers are started by the first parallel job, under `busy`. */
    int started;
    int start_attempted;
    uint32_t start_generation;
    pthread_t *workers;
};

/* Non-zero on the pool's workers and on a caller while it runs chunks: a nested
 * restore_pool_run then runs inline instead of waiting for threads the outer job holds. */
static _Thread_local int inside_job;

static void futex_wait(_Atomic uint32_t *word, uint32_t expected) {
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word, int count) {
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
}

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static uint64_t now_nanoseconds(void) {
    struct timespec time;
    clock_gettime(CLOCK_MONOTONIC, &time);
    return (uint64_t)time.tv_sec * 1000000000u + (uint64_t)time.tv_nsec;
}

/* Spins until *word differs from `value` or SPIN_NANOSECONDS pass; returns whether it did.
 * Past the first YIELD_AFTER_NANOSECONDS it also yields the core between checks: on a
 * machine with more runnable threads than cores, the thread it waits for may be the one
 * waiting for that core. */
static int spin_while_equal(_Atomic uint32_t *word, uint32_t value) {
    uint64_t start = 0;
    for (unsigned round = 0;; round++) {
        for (int i = 0; i < 16; i++) {
            if (atomic_load_explicit(word, memory_order_acquire) != value) return 1;
            cpu_relax();
        }
        uint64_t now = now_nanoseconds();
        if (round == 0) start = now;
        else if (now - start >= SPIN_NANOSECONDS) return 0;
        else if (now - start >= YIELD_AFTER_NANOSECONDS) sched_yield();
    }
}

static void finish_job(restore_pool *pool) {
    atomic_store(&pool->done, 1);
    if (atomic_load(&pool->caller_sleeping)) futex_wake(&pool->done, 1);
}

/* Claims and runs chunks of job `generation` until none are left. */
static void run_chunks(restore_pool *pool, uint32_t generation) {
    uint64_t claim = atomic_load_explicit(&pool->claim, memory_order_acquire);
    for (;;) {
        if ((uint32_t)(claim >> 32) != generation) return;
        long chunk = (long)(uint32_t)claim;
        if (chunk >= atomic_load_explicit(&pool->chunks, memory_order_relaxed)) return;
        if (atomic_compare_exchange_weak_explicit(&pool->claim, &claim, claim + 1,
                                                  memory_order_acq_rel, memory_order_acquire)) {
            pool->body(pool->context, chunk);
            if (atomic_fetch_sub_explicit(&pool->unfinished, 1, memory_order_acq_rel) == 1) finish_job(pool);
            claim = atomic_load_explicit(&pool->claim, memory_order_acquire);
        }
    }
}

static void *worker_main(void *argument) {
    restore_pool *pool = argument;
    inside_job = 1;
    uint32_t seen = pool->start_generation;
    for (;;) {
        if (!spin_while_equal(&pool->generation, seen)) {
            atomic_fetch_add(&pool->sleeping_workers, 1);
            while (atomic_load(&pool->generation) == seen) futex_wait(&pool->generation, seen);
            atomic_fetch_sub(&pool->sleeping_workers, 1);
        }
        /* The generation before `stopping`: restore_pool_destroy sets `stopping` and then
         * bumps the generation, so a worker that sees the bump sees `stopping` too. In the
         * other order a worker could check `stopping` just before destroy, adopt destroy's
         * generation as the one it has seen, and sleep on it for ever (the pool test of 1000
         * short-lived pools hung so in a CI run). */
        seen = atomic_load(&pool->generation);
        if (atomic_load(&pool->stopping)) return NULL;
        run_chunks(pool, seen);
    }
}

restore_pool *restore_pool_create(int threads) {
    restore_pool *pool = calloc(1, sizeof *pool);
    if (pool == NULL) return NULL;
    pool->threads = threads < 1 ? 1 : threads;
    return pool;
}

/* Starts the workers once; returns how many run. */
static int start_workers(restore_pool *pool) {
    if (pool->start_attempted) return pool->started;
    pool->start_attempted = 1;
    pool->workers = calloc((size_t)(pool->threads - 1), sizeof *pool->workers);
    if (pool->workers == NULL) return 0;
    pool->start_generation = atomic_load(&pool->generation);
    while (pool->started < pool->threads - 1 &&
           pthread_create(&pool->workers[pool->started], NULL, worker_main, pool) == 0) {
        pool->started++;
    }
    return pool->started;
}

void restore_pool_run(restore_pool *pool, long chunks, restore_pool_body body, void *context) {
    if (chunks > 1 && pool->threads > 1 && !inside_job && !atomic_exchange(&pool->busy, 1)) {
        if (start_workers(pool) > 0) {
            pool->body = body;
            pool->context = context;
            atomic_store_explicit(&pool->chunks, chunks, memory_order_relaxed);
            atomic_store_explicit(&pool->unfinished, chunks, memory_order_relaxed);
            atomic_store_explicit(&pool->done, 0, memory_order_relaxed);
            uint32_t generation = atomic_load_explicit(&pool->generation, memory_order_relaxed) + 1;
            atomic_store_explicit(&pool->claim, (uint64_t)generation << 32, memory_order_release);
            atomic_store(&pool->generation, generation);
            if (atomic_load(&pool->sleeping_workers) > 0) futex_wake(&pool->generation, pool->started);

            inside_job = 1;
            run_chunks(pool, generation);
            inside_job = 0;
            if (!spin_while_equal(&pool->done, 0)) {
                atomic_store(&pool->caller_sleeping, 1);
                while (atomic_load(&pool->done) == 0) futex_wait(&pool->done, 0);
                atomic_store(&pool->caller_sleeping, 0);
            }
            atomic_store_explicit(&pool->busy, 0, memory_order_release);
            return;
        }
        atomic_store_explicit(&pool->busy, 0, memory_order_release);
    }
    for (long chunk = 0; chunk < chunks; chunk++) body(context, chunk);
}

void restore_pool_destroy(restore_pool *pool) {
    if (pool == NULL) return;
    atomic_store(&pool->stopping, 1);
    atomic_fetch_add(&pool->generation, 1);
    futex_wake(&pool->generation, INT_MAX);
    for (int i = 0; i < pool->started; i++) pthread_join(pool->workers[i], NULL);
    free(pool->workers);
    free(pool);
}

int restore_pool_started_workers(const restore_pool *pool) { return pool->started; }
