/* CExecutableStart has no interface: linking it into an executable is what it does
 * (openblas_threads.c). This header exists because SwiftPM C targets need one. */
