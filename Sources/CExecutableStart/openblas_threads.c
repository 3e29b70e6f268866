#include <dlfcn.h>
#include <stddef.h>

/*
 * Runs in rrun and convert only, after the shared libraries' constructors and before main.
 *
 * libopenblas's constructor starts one server thread per extra core, and each spins on
 * sched_yield for a while after it starts (and after every threaded call) before it sleeps.
 * Restore calls OpenBLAS only single-threaded (Runtime/Core/GEMM.swift) and splits work over
 * its own pool, so those threads only take CPU from it: on 2 cores, loading a 360 MB model
 * took 77 ms beside the spinning thread and 52 ms without it (session 8).
 *
 * OPENBLAS_NUM_THREADS=1 would keep the threads from starting, but nothing in the process
 * can set it in time: glibc's own initialisation resets the environment to the one the
 * process started with, after an executable's preinit functions and before libopenblas's
 * constructor. So the threads are stopped here instead: one thread for OpenBLAS, then
 * blas_thread_shutdown_, which OpenBLAS itself calls before fork; it joins its servers,
 * and with one thread no later call starts them again. The symbols are looked up, not
 * linked, because only the pthread build of OpenBLAS has the second one (an OpenMP build
 * leaves its threads to OMP_WAIT_POLICY). Shared objects must not do this to their host,
 * so libRestore does not.
 */
__attribute__((constructor))
static void restore_stop_openblas_threads(void) {
    void (*set_threads)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
    int (*shutdown_threads)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "blas_thread_shutdown_");
    if (set_threads == NULL || shutdown_threads == NULL) return;
    set_threads(1);
    shutdown_threads();
}
