/*
 * thread_pool.h — the persistent workers behind Runtime's ThreadPool.
 *
 * DispatchQueue.concurrentPerform wakes parked threads on every call, and a model run
 * makes about a hundred calls (one per linear, attention, layer norm...). These workers
 * are made once per pool, spin briefly between jobs so the next call finds them awake,
 * then sleep on a futex so an idle process uses no CPU.
 */
#ifndef RESTORE_THREAD_POOL_H
#define RESTORE_THREAD_POOL_H

#pragma GCC visibility push(hidden)

typedef struct restore_pool restore_pool;

/* Runs chunk number `chunk` of a job; `context` is the pointer given to restore_pool_run. */
typedef void (*restore_pool_body)(void *context, long chunk);

/* A pool of `threads` threads counting the caller's: `threads` - 1 workers, started on
 * the first job that has more than one chunk. NULL when it cannot be allocated. */
restore_pool *restore_pool_create(int threads);

/* Stops and joins the workers and frees the pool. Not while a job runs on it. */
void restore_pool_destroy(restore_pool *pool);

/*
 * Calls body(context, c) once for every c in 0..<chunks and returns when all calls have
 * returned. The caller runs chunks too; which thread runs which chunk varies, so a body
 * must depend only on its chunk number. Runs every chunk on the calling thread, in order,
 * when the pool has no workers (or they could not be started), when called from inside
 * a body of any pool (nesting: the outer job already occupies the threads), or while
 * another thread's job runs on this pool.
 */
void restore_pool_run(restore_pool *pool, long chunks, restore_pool_body body, void *context);

/* The number of workers the pool has started (0 before its first parallel job). */
int restore_pool_started_workers(const restore_pool *pool);

#pragma GCC visibility pop

#endif
