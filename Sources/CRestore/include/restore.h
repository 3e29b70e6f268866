/*
 * restore.h — the C interface of libRestore (docs/design.md §6).
 *
 * This header is the single source of truth: the library implements each declaration
 * in Swift with @c @implementation, so the compiler checks that both agree.
 *
 * Rules that hold for every function:
 *  - Functions that can fail return a restore_status. On failure they leave a message
 *    for restore_last_error() and leave the `out` arguments untouched (except where a
 *    function says otherwise). No call aborts the process on bad input: NULL pointers,
 *    negative or overflowing sizes, too-small buffers, missing or corrupt files all
 *    come back as a status.
 *  - A restore_model is immutable once loaded and may be shared by any number of
 *    threads. A restore_session holds per-run state (plans, memory) and must be used by
 *    one thread at a time; a call that finds its session busy on another thread
 *    returns RESTORE_ERROR_ARGUMENT instead of racing. A session keeps its model
 *    alive, so models and sessions may be freed in either order.
 *  - Strings returned by the library are UTF-8 and owned by it.
 *
 * Link with `pkg-config --cflags --libs restore`.
 */
#ifndef RESTORE_H
#define RESTORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A loaded model: immutable, shared by threads. */
typedef struct restore_model restore_model;
/** Runs a model: one per thread. */
typedef struct restore_session restore_session;

/** What a call did. RESTORE_OK is 0; every other value comes with restore_last_error(). */
typedef enum {
    RESTORE_OK = 0,
    RESTORE_ERROR_IO,          /* a file could not be opened or read */
    RESTORE_ERROR_FORMAT,      /* the bytes are not a valid .rgraph model, or its metadata is invalid */
    RESTORE_ERROR_UNSUPPORTED, /* valid, but uses something this library does not implement */
    RESTORE_ERROR_SHAPE,       /* a tensor or image has a shape the model cannot take */
    RESTORE_ERROR_ARGUMENT,    /* a NULL pointer, a bad size, a too-small buffer, an unknown name */
    RESTORE_ERROR_MEMORY,      /* the sizes involved do not fit in memory */
    RESTORE_ERROR_INTERNAL,    /* a bug in Restore: please report the message */
    RESTORE_CANCELLED          /* a progress callback asked to stop; no output was written */
} restore_status;

/** The largest tensor rank restore_run_f32 and restore_session_set_input accept;
    output_shape arrays must hold this many entries. */
#define RESTORE_MAX_RANK 8

/** The library's version, "MAJOR.MINOR.PATCH". Static storage. */
const char *restore_version(void);

/** The message of the last call on this thread that returned a restore_status: what
    went wrong, or "" if it succeeded. Thread-local; valid until the next call into the
    library on this thread. Never NULL. */
const char *restore_last_error(void);

/** The name of a status, e.g. "RESTORE_ERROR_SHAPE". Static storage; never NULL. */
const char *restore_status_string(restore_status status);

/* ---- models ------------------------------------------------------------------------- */

/** Loads an .rgraph file (mapped read-only, weights used in place). */
restore_status restore_model_load(const char *path, restore_model **out);

/** Loads an .rgraph model from `size` bytes in memory; the bytes are copied, so the
    caller may free them as soon as this returns. */
restore_status restore_model_load_memory(const void *data, size_t size, restore_model **out);

/** Releases a model. NULL is ignored. Sessions made from it keep it alive until they
    are freed too. */
void restore_model_free(restore_model *model);

/** The metadata value for `key` (e.g. "restore.scale"), or NULL if absent or if an
    argument is NULL. Valid while the model lives. */
const char *restore_model_metadata(const restore_model *model, const char *key);

/** Number of metadata entries (0 for NULL). */
int restore_model_metadata_count(const restore_model *model);

/** The key of metadata entry `index` (keys sorted by byte value), or NULL if out of
    range. Valid while the model lives. */
const char *restore_model_metadata_key(const restore_model *model, int index);

/** Number of graph inputs (0 for NULL). */
int restore_model_input_count(const restore_model *model);

/** The name of graph input `index`, or NULL if out of range. Valid while the model lives. */
const char *restore_model_input_name(const restore_model *model, int index);

/** Number of graph outputs (0 for NULL). */
int restore_model_output_count(const restore_model *model);

/** The name of graph output `index`, or NULL if out of range. Valid while the model lives. */
const char *restore_model_output_name(const restore_model *model, int index);

/** The size of the image restore_image_u8 makes from a width×height image
    (restore.scale times larger). Fails with RESTORE_ERROR_UNSUPPORTED for a model
    without a valid restoration contract (restore.* metadata). */
restore_status restore_output_size(const restore_model *model, int width, int height,
                                   int *out_width, int *out_height);

/* ---- sessions ----------------------------------------------------------------------- */

/** Creates a session that runs `model` with `threads` threads for its kernels
    (0 = one per processor). The session holds a reference to the model. */
restore_status restore_session_create(const restore_model *model, int threads, restore_session **out);

/** Frees a session. NULL is ignored. */
void restore_session_free(restore_session *session);

/** Sets a model input other than the image/first input (a conditioning vector, say),
    used by every later restore_run_f32 and restore_image_u8 on this session. The data
    (float32, C order) is copied. data == NULL with rank == 0 clears the input. */
restore_status restore_session_set_input(restore_session *session, const char *name,
                                         const float *data, const int64_t *shape, int rank);

/** Tensor mode: runs the model with `input` (float32, C order, `rank` dimensions in
    `shape`, each ≥ 1) as its first input and copies its first output to `output`.
    `output_shape` must hold RESTORE_MAX_RANK entries; the output's shape and rank are
    written there. `output_capacity` counts floats: if it is smaller than the output,
    nothing runs, the needed shape is still written to output_shape/output_rank, and the
    call returns RESTORE_ERROR_ARGUMENT (so capacity 0 with output NULL asks for the shape). */
restore_status restore_run_f32(restore_session *s, const float *input, const int64_t *shape, int rank,
                               float *output, size_t output_capacity, int64_t *output_shape, int *output_rank);

/** Image mode: restores interleaved 8-bit pixels, 3 (RGB) or 4 (RGBA) channels, rows
    `stride` bytes apart (stride ≥ width·channels), applying the model's restoration
    metadata (range, normalisation, residual, padding, scale). `out` receives an image
    of restore_output_size() with the same channel count, rows `out_stride` bytes apart.
    Alpha passes through (repeated over s×s blocks for a model of scale s). `tile` > 0
    runs in tiles of that size (at least 16); 0 chooses them as `rrun` does: the model's
    restore.tile, else the whole image, else the largest tiles that fit the session's
    memory budget (restore_session_set_memory_limit). `overlap` < 0 chooses it as `rrun`
    does: restore.overlap, else from the model's receptive field, else 32. A restoration
    that cannot fit the budget fails with RESTORE_ERROR_MEMORY. `out` may be `pixels`
    only if the scale is 1 and the strides are equal. */
restore_status restore_image_u8(restore_session *s, const uint8_t *pixels, int width, int height,
                                int channels, int stride, uint8_t *out, int out_stride,
                                int tile, int overlap);

/** Image mode for every layout `rrun` reads: `channels` 1 (gray), 2 (gray+alpha), 3 (RGB)
    or 4 (RGBA), `bits` 8 (uint8_t samples) or 16 (uint16_t samples, native byte order,
    0…65535), rows `stride` bytes apart. Gray is restored as R = G = B and stored as
    the luma 0.299 R + 0.587 G + 0.114 B of the result, as rrun writes it. Otherwise as restore_image_u8; `out` gets the same channels and bits. */
restore_status restore_image(restore_session *s, const void *pixels, int width, int height,
                             int channels, int bits, int stride, void *out, int out_stride,
                             int tile, int overlap);

/** The most memory (bytes) image mode may hold for one restoration when it chooses tiles
    itself (tile 0): the model's working memory for a tile plus the images and buffers.
    0 restores the default, a quarter of the machine's physical memory, at most 1 GiB. */
restore_status restore_session_set_memory_limit(restore_session *session, size_t bytes);

/* ---- optimisation at run time ---------------------------------------------------------- */

/** Called by long optimisations (Deep Image Prior, fine-tuning, …) after each of `total`
    iterations with the iteration just finished (1 … total) and its loss, on the calling
    thread. Return 0 to go on; any other value cancels: the call then returns
    RESTORE_CANCELLED at once and writes no output. */
typedef int (*restore_progress_fn)(void *user_data, int iteration, int total, float loss);

/** What degraded the image Deep Image Prior restores. */
typedef enum {
    RESTORE_DIP_DENOISE = 0, /* additive noise */
    RESTORE_DIP_INPAINT,     /* missing pixels, given by restore_dip_options.mask */
    RESTORE_DIP_SR4          /* ×4 super-resolution: the output is 4× wider and taller */
} restore_dip_task;

/** The generator Deep Image Prior fits. */
typedef enum {
    RESTORE_DIP_NET_UNET = 0, /* the paper's encoder-decoder with skip connections */
    RESTORE_DIP_NET_VIT       /* a small vision transformer */
} restore_dip_net;

/** Options of restore_dip. Fill them with restore_dip_options_init, then change fields. */
typedef struct {
    restore_dip_task task;
    restore_dip_net net;
    int iterations;        /* ≥ 1 (default 500) */
    uint64_t seed;         /* initial weights, noise input and perturbations (default 0) */
    int threads;           /* ≥ 1 (default 2) */
    /* RESTORE_DIP_INPAINT only: width×height bytes, rows mask_stride bytes apart,
       nonzero where the pixel is known, 0 where it is to be filled; NULL otherwise. */
    const uint8_t *mask;
    int mask_stride;
} restore_dip_options;

/** Fills `options` with the defaults: denoising with the encoder-decoder, 500 iterations,
    seed 0, 2 threads, no mask. NULL is ignored. */
void restore_dip_options_init(restore_dip_options *options);

/** Deep Image Prior (Ulyanov et al., 2018): restores one image with no trained weights by
    fitting a randomly initialised generator to it — the same as `rrun dip`. Pixels are
    laid out as for restore_image (`channels` 1–4, `bits` 8 or 16, rows `stride` bytes
    apart); `out` receives an image of the same channels and bits, width×height, or
    4·width × 4·height for RESTORE_DIP_SR4, rows `out_stride` bytes apart; alpha passes
    through (repeated over 4×4 blocks for SR4). `progress` may be NULL; otherwise it is
    called after every iteration and may cancel (see restore_progress_fn). */
restore_status restore_dip(const restore_dip_options *options, const void *pixels, int width, int height,
                           int channels, int bits, int stride, void *out, int out_stride,
                           restore_progress_fn progress, void *user_data);

/* ---- generators: BigGAN generation and Deep Generative Prior ------------------------------ */

/** A class-conditional generator's sizes: a model with inputs z [batch, latent_size] and
    class_vector [batch, classes] and an image output [batch, 3, height, width] (a converted
    BigGAN, docs/dgp.md). Any out pointer may be NULL. Fails with RESTORE_ERROR_UNSUPPORTED
    for another model. */
restore_status restore_generator_info(const restore_model *generator, int *width, int *height, int *classes,
                                      int *latent_size);

/** Generates `count` images of class `class_index`, as `rrun generate`: z is
    truncation · truncnorm(−2, 2) drawn as pytorch-pretrained-biggan's
    truncated_noise_sample(count, Z, truncation, seed) draws it, the class vector one-hot.
    `truncation` 0 uses the one the model was converted at (else 1); another value than
    the recorded one fails with RESTORE_ERROR_ARGUMENT. `out` receives the images one after
    another, each `height` rows of RGB bytes `out_stride` bytes apart (≥ 3·width). */
restore_status restore_generate(const restore_model *generator, int class_index, uint32_t seed, float truncation,
                                int count, int threads, uint8_t *out, int out_stride);

/** What degraded the image Deep Generative Prior restores. */
typedef enum {
    RESTORE_DGP_COLORIZE = 0, /* gray: compared through the luma 0.2989 R + 0.5870 G + 0.1140 B */
    RESTORE_DGP_INPAINT,      /* missing pixels, given by restore_dgp_options.mask */
    RESTORE_DGP_SR4           /* ×4 super-resolution: the output is 4× wider and taller */
} restore_dgp_task;

/** Which generator weights train when. */
typedef enum {
    RESTORE_DGP_SCHEDULE_PROGRESSIVE = 0, /* the paper's: block groups unfrozen shallow to deep */
    RESTORE_DGP_SCHEDULE_ALL              /* every weight and z from the first iteration */
} restore_dgp_schedule;

/** Options of restore_dgp. Fill them with restore_dgp_options_init, then change fields. */
typedef struct {
    restore_dgp_task task;
    restore_dgp_schedule schedule;
    int class_index;       /* the class, or -1 to choose it with z (default -1) */
    int iterations;        /* ≥ 1, over all five stages (default 500) */
    int candidates;        /* ≥ 1 random samples z is chosen from (default 100) */
    uint64_t seed;         /* the candidate samples (default 0) */
    int threads;           /* ≥ 1 (default 2) */
    /* A discriminator feature network (docs/dgp.md) adding the L1 distance of its
       features, or NULL for the MSE alone. */
    const restore_model *discriminator;
    /* RESTORE_DGP_INPAINT only: width×height bytes, rows mask_stride bytes apart,
       nonzero where the pixel is known, 0 where it is to be filled; NULL otherwise. */
    const uint8_t *mask;
    int mask_stride;
} restore_dgp_options;

/** Fills `options` with the defaults: colorization, progressive schedule, class chosen
    with z, 500 iterations, 100 candidates, seed 0, 2 threads, no discriminator, no mask.
    NULL is ignored. */
void restore_dgp_options_init(restore_dgp_options *options);

/** Deep Generative Prior (Pan et al., 2020), as `rrun dgp`: restores one image by
    inverting the generator and fine-tuning it on the image. Pixels are laid out as for
    restore_image (`channels` 1–4, `bits` 8 or 16, rows `stride` bytes apart). An image
    of another size than the generator's (a quarter of it for SR4) is centre-cropped to
    the square of its short side and resized to it. `out` receives an RGB image of
    side × side bytes ×3, side = min(width, height) (×4 for SR4), rows `out_stride` bytes
    apart (≥ 3·side). `progress` may be NULL; otherwise it is called after every
    iteration and may cancel (see restore_progress_fn). */
restore_status restore_dgp(const restore_model *generator, const restore_dgp_options *options, const void *pixels,
                           int width, int height, int channels, int bits, int stride, uint8_t *out, int out_stride,
                           restore_progress_fn progress, void *user_data);

#ifdef __cplusplus
}
#endif

#endif /* RESTORE_H */
