/*
 * Tests of libRestore's C interface: every entry point with bad arguments (each must
 * return the right status with a message and never abort), corrupt models, tensor and
 * image mode, one model shared by sessions on four threads, Deep Image Prior with a
 * progress callback that cancels, and BigGAN generation and Deep Generative Prior.
 *
 * Usage: test_capi MODEL.rgraph [GENERATOR.rgraph]   (an image model with restore.scale 1,
 * e.g. the converted dncnn fixture, and a BigGAN generator, the biggan-deep checkpoint
 * fixture converted at truncation 0.4; scripts/test-capi.sh makes both). Prints
 * "N passed, N failed".
 */
#define _POSIX_C_SOURCE 200809L
#include <restore.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;

#define CHECK(condition)                                                              \
    do {                                                                              \
        if (condition) {                                                              \
            passed++;                                                                 \
        } else {                                                                      \
            failed++;                                                                 \
            fprintf(stderr, "FAIL %s:%d: %s (last error: %s)\n", __FILE__, __LINE__,  \
                    #condition, restore_last_error());                                \
        }                                                                             \
    } while (0)

/* A call must fail with `expected` and leave a non-empty message. */
#define CHECK_FAILS(call, expected)                                                   \
    do {                                                                              \
        restore_status status_ = (call);                                              \
        if (status_ == (expected) && restore_last_error()[0] != '\0') {               \
            passed++;                                                                 \
        } else {                                                                      \
            failed++;                                                                 \
            fprintf(stderr, "FAIL %s:%d: %s returned %s, expected %s (message: '%s')\n", \
                    __FILE__, __LINE__, #call, restore_status_string(status_),        \
                    restore_status_string(expected), restore_last_error());           \
        }                                                                             \
    } while (0)

#define CHECK_OK(call)                                                                \
    do {                                                                              \
        restore_status status_ = (call);                                              \
        if (status_ == RESTORE_OK && restore_last_error()[0] == '\0') {               \
            passed++;                                                                 \
        } else {                                                                      \
            failed++;                                                                 \
            fprintf(stderr, "FAIL %s:%d: %s returned %s: %s\n", __FILE__, __LINE__,   \
                    #call, restore_status_string(status_), restore_last_error());     \
        }                                                                             \
    } while (0)

static unsigned char *read_file(const char *path, size_t *size) {
    FILE *file = fopen(path, "rb");
    if (!file) return NULL;
    fseek(file, 0, SEEK_END);
    long length = ftell(file);
    fseek(file, 0, SEEK_SET);
    unsigned char *bytes = length > 0 ? malloc((size_t)length) : NULL;
    if (bytes && fread(bytes, 1, (size_t)length, file) != (size_t)length) {
        free(bytes);
        bytes = NULL;
    }
    fclose(file);
    *size = bytes ? (size_t)length : 0;
    return bytes;
}

static int write_file(const char *path, const unsigned char *bytes, size_t size) {
    FILE *file = fopen(path, "wb");
    if (!file) return 0;
    int ok = fwrite(bytes, 1, size, file) == size;
    return fclose(file) == 0 && ok;
}

/* Deterministic pseudo-random bytes (xorshift32), so every run sees the same image. */
static void fill_random(uint8_t *bytes, size_t count, uint32_t seed) {
    uint32_t state = seed ? seed : 1;
    for (size_t i = 0; i < count; i++) {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        bytes[i] = (uint8_t)(state >> 24);
    }
}

static void test_basics(void) {
    CHECK(strlen(restore_version()) > 0);
    CHECK(strcmp(restore_status_string(RESTORE_ERROR_SHAPE), "RESTORE_ERROR_SHAPE") == 0);
    CHECK(strcmp(restore_status_string((restore_status)99), "RESTORE_STATUS_UNKNOWN") == 0);
    CHECK(restore_last_error() != NULL);
}

static void test_loading_errors(const char *model_path) {
    restore_model *model = (restore_model *)0x1; /* must stay untouched on failure */
    CHECK_FAILS(restore_model_load(NULL, &model), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_model_load(model_path, NULL), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_model_load("/nonexistent/model.rgraph", &model), RESTORE_ERROR_IO);
    CHECK(strstr(restore_last_error(), "/nonexistent/model.rgraph") != NULL);
    CHECK_FAILS(restore_model_load("/", &model), RESTORE_ERROR_IO); /* a directory */
    CHECK(model == (restore_model *)0x1);

    size_t size = 0;
    unsigned char *bytes = read_file(model_path, &size);
    CHECK(bytes != NULL && size > 200);
    if (!bytes) return;

    CHECK_FAILS(restore_model_load_memory(NULL, size, &model), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_model_load_memory(bytes, size, NULL), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_model_load_memory(bytes, 0, &model), RESTORE_ERROR_FORMAT);
    CHECK_FAILS(restore_model_load_memory(bytes, 10, &model), RESTORE_ERROR_FORMAT);
    CHECK_FAILS(restore_model_load_memory(bytes, (size_t)-1, &model), RESTORE_ERROR_ARGUMENT);

    unsigned char garbage[4096];
    fill_random(garbage, sizeof garbage, 7);
    CHECK_FAILS(restore_model_load_memory(garbage, sizeof garbage, &model), RESTORE_ERROR_FORMAT);

    /* Truncations at several points, from memory and from a file. */
    const char *truncated_path = "test_capi_truncated.rgraph";
    size_t cuts[] = {72, 100, size / 2, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        CHECK_FAILS(restore_model_load_memory(bytes, cuts[i], &model), RESTORE_ERROR_FORMAT);
        CHECK(write_file(truncated_path, bytes, cuts[i]));
        CHECK_FAILS(restore_model_load(truncated_path, &model), RESTORE_ERROR_FORMAT);
    }
    remove(truncated_path);

    /* One flipped byte in the magic, the fixed header, the header section and the data. */
    size_t flips[] = {0, 20, 80, size - 8};
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        unsigned char *copy = malloc(size);
        memcpy(copy, bytes, size);
        copy[flips[i]] ^= 0x5a;
        CHECK_FAILS(restore_model_load_memory(copy, size, &model), RESTORE_ERROR_FORMAT);
        free(copy);
    }
    CHECK(model == (restore_model *)0x1);

    /* 500 random corruptions (1–4 bytes changed, sometimes also truncated): every load
       returns a status, and a failure always has a message. */
    uint32_t seed = 12345;
    int rejected = 0, loaded_anyway = 0, silent = 0;
    unsigned char *copy = malloc(size);
    for (int round = 0; round < 500 && copy; round++) {
        memcpy(copy, bytes, size);
        uint8_t noise[16];
        fill_random(noise, sizeof noise, seed += 7919);
        int changes = 1 + noise[0] % 4;
        for (int i = 0; i < changes; i++) {
            size_t position = ((size_t)noise[1 + 3 * i] << 16 | (size_t)noise[2 + 3 * i] << 8 | noise[3 + 3 * i]) % size;
            copy[position] ^= (uint8_t)(noise[13] | 1);
        }
        size_t length = noise[14] < 64 ? size * noise[15] / 256 : size;
        restore_model *mutated = NULL;
        restore_status status = restore_model_load_memory(copy, length, &mutated);
        if (status == RESTORE_OK) {
            loaded_anyway++;
            restore_model_free(mutated);
        } else if (restore_last_error()[0] != '\0') {
            rejected++;
        } else {
            silent++;
        }
    }
    free(copy);
    CHECK(silent == 0);
    CHECK(rejected > 450);
    printf("corrupted models: %d rejected with a message, %d loaded (change outside checked bytes)\n",
           rejected, loaded_anyway);

    /* The bytes themselves load, and may be freed right after. */
    restore_model *loaded = NULL;
    CHECK_OK(restore_model_load_memory(bytes, size, &loaded));
    free(bytes);
    CHECK(loaded != NULL && restore_model_input_count(loaded) == 1);
    restore_model_free(loaded);
}

static void test_model_queries(restore_model *model) {
    CHECK(restore_model_metadata(model, "restore.range") != NULL);
    CHECK(strcmp(restore_model_metadata(model, "restore.range"), "0,1") == 0);
    CHECK(restore_model_metadata(model, "no.such.key") == NULL);
    CHECK(restore_model_metadata(model, NULL) == NULL);
    CHECK(restore_model_metadata(NULL, "restore.range") == NULL);

    int count = restore_model_metadata_count(model);
    CHECK(count >= 1);
    int found_range = 0;
    for (int i = 0; i < count; i++) {
        const char *key = restore_model_metadata_key(model, i);
        CHECK(key != NULL && restore_model_metadata(model, key) != NULL);
        if (key && strcmp(key, "restore.range") == 0) found_range = 1;
    }
    CHECK(found_range);
    CHECK(restore_model_metadata_key(model, -1) == NULL);
    CHECK(restore_model_metadata_key(model, count) == NULL);
    CHECK(restore_model_metadata_count(NULL) == 0);

    CHECK(restore_model_input_count(model) == 1);
    CHECK(restore_model_input_name(model, 0) != NULL && strcmp(restore_model_input_name(model, 0), "image") == 0);
    CHECK(restore_model_input_name(model, 1) == NULL);
    CHECK(restore_model_input_name(model, -5) == NULL);
    CHECK(restore_model_input_count(NULL) == 0 && restore_model_input_name(NULL, 0) == NULL);
    CHECK(restore_model_output_count(model) == 1);
    CHECK(restore_model_output_name(model, 0) != NULL);
    CHECK(restore_model_output_name(model, 1) == NULL);
    CHECK(restore_model_output_count(NULL) == 0 && restore_model_output_name(NULL, 0) == NULL);

    int width = -1, height = -1;
    CHECK_OK(restore_output_size(model, 37, 45, &width, &height));
    CHECK(width == 37 && height == 45);
    CHECK_FAILS(restore_output_size(NULL, 37, 45, &width, &height), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_output_size(model, 37, 45, NULL, &height), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_output_size(model, 37, 45, &width, NULL), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_output_size(model, 0, 45, &width, &height), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_output_size(model, 37, -1, &width, &height), RESTORE_ERROR_ARGUMENT);

    restore_model_free(NULL); /* ignored */
    restore_session_free(NULL);
}

static void test_session_errors(restore_model *model) {
    restore_session *session = (restore_session *)0x1;
    CHECK_FAILS(restore_session_create(NULL, 1, &session), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_session_create(model, 1, NULL), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_session_create(model, -2, &session), RESTORE_ERROR_ARGUMENT);
    CHECK(session == (restore_session *)0x1);
    session = NULL;
    CHECK_OK(restore_session_create(model, 0, &session));
    restore_session_free(session);
}

static void test_tensor_mode(restore_model *model) {
    restore_session *session = NULL;
    CHECK_OK(restore_session_create(model, 1, &session));
    if (!session) return;

    enum { H = 9, W = 7, N = 3 * H * W };
    float input[N], output[N];
    for (int i = 0; i < N; i++) input[i] = (float)((i * 37) % 101) / 100.0f;
    int64_t shape[4] = {1, 3, H, W};
    int64_t output_shape[RESTORE_MAX_RANK];
    int output_rank = 0;

    CHECK_FAILS(restore_run_f32(NULL, input, shape, 4, output, N, output_shape, &output_rank), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_run_f32(session, NULL, shape, 4, output, N, output_shape, &output_rank), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_run_f32(session, input, NULL, 4, output, N, output_shape, &output_rank), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_run_f32(session, input, shape, 4, output, N, NULL, &output_rank), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_run_f32(session, input, shape, 4, output, N, output_shape, NULL), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_run_f32(session, input, shape, 0, output, N, output_shape, &output_rank), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_run_f32(session, input, shape, -1, output, N, output_shape, &output_rank), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_run_f32(session, input, shape, RESTORE_MAX_RANK + 1, output, N, output_shape, &output_rank),
                RESTORE_ERROR_ARGUMENT);

    int64_t negative[4] = {1, 3, -H, W};
    CHECK_FAILS(restore_run_f32(session, input, negative, 4, output, N, output_shape, &output_rank), RESTORE_ERROR_SHAPE);
    int64_t zero[4] = {1, 3, 0, W};
    CHECK_FAILS(restore_run_f32(session, input, zero, 4, output, N, output_shape, &output_rank), RESTORE_ERROR_SHAPE);
    int64_t huge[4] = {1, 3, INT64_MAX / 2, 4};
    CHECK_FAILS(restore_run_f32(session, input, huge, 4, output, N, output_shape, &output_rank), RESTORE_ERROR_MEMORY);
    /* Fits in memory arithmetic, not in the machine: refused before the input is read. */
    int64_t too_big[4] = {1, 3, 1 << 20, 1 << 20};
    CHECK_FAILS(restore_run_f32(session, input, too_big, 4, output, N, output_shape, &output_rank), RESTORE_ERROR_MEMORY);
    int64_t channels[4] = {1, 1, H, W}; /* the model takes 3 channels */
    CHECK_FAILS(restore_run_f32(session, input, channels, 4, output, N, output_shape, &output_rank), RESTORE_ERROR_SHAPE);
    int64_t rank3[3] = {3, H, W};
    CHECK_FAILS(restore_run_f32(session, input, rank3, 3, output, N, output_shape, &output_rank), RESTORE_ERROR_SHAPE);

    /* Too small: nothing runs, the needed shape comes back. Capacity 0 + NULL asks for it. */
    output_rank = 0;
    CHECK_FAILS(restore_run_f32(session, input, shape, 4, output, N - 1, output_shape, &output_rank), RESTORE_ERROR_ARGUMENT);
    CHECK(output_rank == 4 && output_shape[1] == 3 && output_shape[2] == H && output_shape[3] == W);
    output_rank = 0;
    CHECK_FAILS(restore_run_f32(session, input, shape, 4, NULL, 0, output_shape, &output_rank), RESTORE_ERROR_ARGUMENT);
    CHECK(output_rank == 4);
    CHECK_FAILS(restore_run_f32(session, input, shape, 4, NULL, N, output_shape, &output_rank), RESTORE_ERROR_ARGUMENT);

    memset(output, 0, sizeof output);
    CHECK_OK(restore_run_f32(session, input, shape, 4, output, N, output_shape, &output_rank));
    int changed = 0, finite = 1;
    for (int i = 0; i < N; i++) {
        if (output[i] != 0) changed = 1;
        if (!(output[i] == output[i])) finite = 0;
    }
    CHECK(changed && finite);

    /* set_input: unknown names, bad shapes, clearing. */
    CHECK_FAILS(restore_session_set_input(NULL, "image", input, shape, 4), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_session_set_input(session, NULL, input, shape, 4), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_session_set_input(session, "nope", input, shape, 4), RESTORE_ERROR_ARGUMENT);
    CHECK(strstr(restore_last_error(), "image") != NULL); /* lists the inputs */
    CHECK_FAILS(restore_session_set_input(session, "image", NULL, shape, 4), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_session_set_input(session, "image", input, negative, 4), RESTORE_ERROR_SHAPE);
    CHECK_OK(restore_session_set_input(session, "image", NULL, NULL, 0));
    restore_session_free(session);
}

enum { IMAGE_W = 75, IMAGE_H = 61, TILE = 32, OVERLAP = 6 };

static void test_image_errors(restore_model *model) {
    restore_session *session = NULL;
    CHECK_OK(restore_session_create(model, 1, &session));
    if (!session) return;
    enum { W = 10, H = 8 };
    uint8_t pixels[W * H * 4], out[W * H * 4];
    fill_random(pixels, sizeof pixels, 3);

    CHECK_FAILS(restore_image_u8(NULL, pixels, W, H, 3, W * 3, out, W * 3, 0, -1), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_image_u8(session, NULL, W, H, 3, W * 3, out, W * 3, 0, -1), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_image_u8(session, pixels, W, H, 3, W * 3, NULL, W * 3, 0, -1), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_image_u8(session, pixels, 0, H, 3, W * 3, out, W * 3, 0, -1), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_image_u8(session, pixels, W, -H, 3, W * 3, out, W * 3, 0, -1), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_image_u8(session, pixels, W, H, 1, W, out, W, 0, -1), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_image_u8(session, pixels, W, H, 2, W * 2, out, W * 2, 0, -1), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_image_u8(session, pixels, W, H, 5, W * 5, out, W * 5, 0, -1), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_image_u8(session, pixels, W, H, 3, W * 3 - 1, out, W * 3, 0, -1), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_image_u8(session, pixels, W, H, 3, -W * 3, out, W * 3, 0, -1), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_image_u8(session, pixels, W, H, 3, W * 3, out, W * 3 - 1, 0, -1), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_image_u8(session, pixels, W, H, 4, W * 3, out, W * 4, 0, -1), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_image_u8(session, pixels, W, H, 3, W * 3, out, W * 3, -4, -1), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_image_u8(session, pixels, W, H, 3, W * 3, out, W * 3, 4, 4), RESTORE_ERROR_ARGUMENT);
    /* Sizes whose product overflows or exceeds the pixel limit: refused before any read. */
    CHECK_FAILS(restore_image_u8(session, pixels, 2000000000, 2000000000, 4, 2000000000, out, 2000000000, 0, -1),
                RESTORE_ERROR_MEMORY);
    CHECK_FAILS(restore_image_u8(session, pixels, 1 << 20, 1 << 20, 3, 1 << 30, out, 1 << 30, 0, -1), RESTORE_ERROR_MEMORY);

    /* Within the pixel limit but beyond the session's memory budget (its two 2.7 GB images
       alone pass 1 GiB): refused before the pixels are read (this buffer is far too small
       for the claimed size). */
    CHECK_OK(restore_session_set_memory_limit(session, (size_t)1 << 30));
    CHECK_FAILS(restore_image_u8(session, pixels, 30000, 30000, 3, 90000, out, 90000, 0, -1), RESTORE_ERROR_MEMORY);
    CHECK(strstr(restore_last_error(), "memory") != NULL);
    CHECK_OK(restore_session_set_memory_limit(session, 0));
    CHECK_FAILS(restore_session_set_memory_limit(NULL, 0), RESTORE_ERROR_ARGUMENT);

    CHECK_OK(restore_image_u8(session, pixels, W, H, 4, W * 4, out, W * 4, 0, -1));
    int alpha_kept = 1;
    for (int i = 0; i < W * H; i++) alpha_kept &= out[i * 4 + 3] == pixels[i * 4 + 3];
    CHECK(alpha_kept);
    /* In place (out == pixels) gives the same result. */
    uint8_t in_place[W * H * 4];
    memcpy(in_place, pixels, sizeof pixels);
    CHECK_OK(restore_image_u8(session, in_place, W, H, 4, W * 4, in_place, W * 4, 0, -1));
    CHECK(memcmp(in_place, out, sizeof out) == 0);
    restore_session_free(session);
}

/* Restores the test image (RGB, padded rows) on one session; returns malloc'ed output. */
static uint8_t *restore_test_image(restore_session *session, const uint8_t *pixels, int stride, restore_status *status) {
    int out_stride = IMAGE_W * 3 + 5;
    uint8_t *out = calloc((size_t)out_stride * IMAGE_H, 1);
    *status = restore_image_u8(session, pixels, IMAGE_W, IMAGE_H, 3, stride, out, out_stride, TILE, OVERLAP);
    return out;
}

struct worker {
    const restore_model *model;
    const uint8_t *pixels;
    int stride;
    int rounds;
    uint8_t *result;
    restore_status status;
    int results_stable;
    char message[256];
};

static void *worker_main(void *argument) {
    struct worker *worker = argument;
    restore_session *session = NULL;
    worker->status = restore_session_create(worker->model, 2, &session); /* kernels on 2 threads too */
    worker->results_stable = 1;
    for (int round = 0; round < worker->rounds && worker->status == RESTORE_OK; round++) {
        uint8_t *result = restore_test_image(session, worker->pixels, worker->stride, &worker->status);
        if (worker->result && memcmp(worker->result, result, (size_t)(IMAGE_W * 3 + 5) * IMAGE_H) != 0)
            worker->results_stable = 0;
        free(worker->result);
        worker->result = result;
    }
    snprintf(worker->message, sizeof worker->message, "%s", restore_last_error());
    /* An error on this thread must not be visible on another one. */
    if (worker->status == RESTORE_OK) {
        restore_status status = restore_session_create(NULL, 1, &session);
        if (status != RESTORE_ERROR_ARGUMENT || restore_last_error()[0] == '\0') worker->results_stable = 0;
    }
    restore_session_free(session);
    return NULL;
}

static void test_threads(restore_model *model) {
    int stride = IMAGE_W * 3 + 3;
    uint8_t *pixels = malloc((size_t)stride * IMAGE_H);
    fill_random(pixels, (size_t)stride * IMAGE_H, 11);

    restore_session *session = NULL;
    CHECK_OK(restore_session_create(model, 1, &session));
    restore_status status;
    uint8_t *reference = restore_test_image(session, pixels, stride, &status);
    CHECK(status == RESTORE_OK);
    restore_session_free(session);

    enum { THREADS = 4 };
    struct worker workers[THREADS];
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (struct worker){.model = model, .pixels = pixels, .stride = stride, .rounds = 3};
        CHECK(pthread_create(&threads[i], NULL, worker_main, &workers[i]) == 0);
    }
    /* The main thread's own (successful) state is untouched by the workers' failures. */
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    CHECK(restore_last_error()[0] == '\0');
    for (int i = 0; i < THREADS; i++) {
        if (workers[i].status != RESTORE_OK) fprintf(stderr, "thread %d: %s\n", i, workers[i].message);
        CHECK(workers[i].status == RESTORE_OK);
        CHECK(workers[i].results_stable);
        CHECK(workers[i].result && memcmp(workers[i].result, reference, (size_t)(IMAGE_W * 3 + 5) * IMAGE_H) == 0);
        free(workers[i].result);
    }
    printf("threads: %d sessions × 3 runs of a %dx%d image in %dpx tiles: identical to one thread\n",
           THREADS, IMAGE_W, IMAGE_H, TILE);
    free(reference);
    free(pixels);
}

/* restore_image: gray, gray+alpha, RGB and RGBA at 8 and 16 bits, as rrun reads them. The
   same picture at 16 bits (v·257) restores to the 8-bit result within a level, alpha passes
   through exactly, and 8-bit RGB gives restore_image_u8's bytes. */
static void test_image_layouts(restore_model *model) {
    restore_session *session = NULL;
    CHECK_OK(restore_session_create(model, 1, &session));
    if (!session) return;
    enum { W = 21, H = 17 };
    uint8_t pixels8[W * H * 4], out8[W * H * 4], reference[W * H * 4];
    uint16_t pixels16[W * H * 4], out16[W * H * 4];
    fill_random(pixels8, sizeof pixels8, 21);
    for (int channels = 1; channels <= 4; channels++) {
        int count = W * H * channels;
        for (int i = 0; i < count; i++) pixels16[i] = (uint16_t)(pixels8[i] * 257);
        CHECK_OK(restore_image(session, pixels8, W, H, channels, 8, W * channels, out8, W * channels, 0, -1));
        CHECK_OK(restore_image(session, pixels16, W, H, channels, 16, W * channels * 2, out16, W * channels * 2, 0, -1));
        int within = 1, alpha_kept = 1;
        for (int i = 0; i < count; i++) {
            int difference = (int)out16[i] - (int)out8[i] * 257;
            within &= difference >= -257 && difference <= 257;
            if ((channels == 2 || channels == 4) && i % channels == channels - 1)
                alpha_kept &= out8[i] == pixels8[i] && out16[i] == pixels16[i];
        }
        CHECK(within);
        CHECK(alpha_kept);
        if (channels >= 3) {
            CHECK_OK(restore_image_u8(session, pixels8, W, H, channels, W * channels, reference, W * channels, 0, -1));
            CHECK(memcmp(reference, out8, (size_t)count) == 0);
        }
    }
    CHECK_FAILS(restore_image(session, pixels8, W, H, 0, 8, W, out8, W, 0, -1), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_image(session, pixels8, W, H, 5, 8, W * 5, out8, W * 5, 0, -1), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_image(session, pixels8, W, H, 3, 12, W * 6, out8, W * 6, 0, -1), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_image(session, pixels16, W, H, 3, 16, W * 3, out16, W * 6, 0, -1), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_image(session, pixels8, W, H, 3, 8, W * 3, out8, W * 3, 1, -1), RESTORE_ERROR_ARGUMENT);
    printf("image layouts: gray, gray+alpha, RGB, RGBA at 8 and 16 bits\n");
    restore_session_free(session);
}

/* Resident set size of this process, in bytes (Linux /proc; 0 elsewhere). */
static long resident_bytes(void) {
    FILE *file = fopen("/proc/self/statm", "r");
    if (!file) return 0;
    long pages = 0, resident = 0;
    if (fscanf(file, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(file);
    return resident * 4096;
}

/* Load under concurrency: one model shared by 8 threads, 1000 tensor runs in all, each
   output compared with the single-threaded one bit for bit; the resident set after the
   last run is compared with the one after each thread's 50th, with the same sessions
   alive, once the allocator's per-thread arenas have grown to their working size. */
enum { LOAD_THREADS = 8, LOAD_RUNS = 1000, LOAD_SIDE = 16, LOAD_WARM_RUNS = 5, LOAD_SETTLED_RUNS = 50 };

struct loader {
    const restore_model *model;
    const float *input;
    const float *reference;
    pthread_barrier_t *warm;
    int identical, failures;
};

static void *loader_main(void *argument) {
    struct loader *loader = argument;
    restore_session *session = NULL;
    int64_t shape[4] = {1, 3, LOAD_SIDE, LOAD_SIDE}, output_shape[RESTORE_MAX_RANK];
    int output_rank = 0;
    float output[3 * LOAD_SIDE * LOAD_SIDE];
    if (restore_session_create(loader->model, 1, &session) != RESTORE_OK) loader->failures++;
    for (int run = 0; run < LOAD_RUNS / LOAD_THREADS; run++) {
        restore_status status = restore_run_f32(session, loader->input, shape, 4, output, 3 * LOAD_SIDE * LOAD_SIDE,
                                                output_shape, &output_rank);
        if (status != RESTORE_OK) loader->failures++;
        else if (memcmp(output, loader->reference, sizeof output) == 0) loader->identical++;
        if (run == LOAD_WARM_RUNS - 1 || run == LOAD_SETTLED_RUNS - 1) pthread_barrier_wait(loader->warm);
    }
    pthread_barrier_wait(loader->warm); /* all runs done: the main thread measures */
    pthread_barrier_wait(loader->warm); /* measured: sessions may go */
    restore_session_free(session);
    return NULL;
}

static void test_load_under_concurrency(restore_model *model) {
    float input[3 * LOAD_SIDE * LOAD_SIDE], reference[3 * LOAD_SIDE * LOAD_SIDE];
    for (int i = 0; i < 3 * LOAD_SIDE * LOAD_SIDE; i++) input[i] = (float)((i * 37) % 101) / 101.0f;
    int64_t shape[4] = {1, 3, LOAD_SIDE, LOAD_SIDE}, output_shape[RESTORE_MAX_RANK];
    int output_rank = 0;
    restore_session *session = NULL;
    CHECK_OK(restore_session_create(model, 1, &session));
    CHECK_OK(restore_run_f32(session, input, shape, 4, reference, 3 * LOAD_SIDE * LOAD_SIDE, output_shape, &output_rank));
    restore_session_free(session);

    pthread_barrier_t warm;
    pthread_barrier_init(&warm, NULL, LOAD_THREADS + 1);
    struct loader loaders[LOAD_THREADS];
    pthread_t threads[LOAD_THREADS];
    for (int i = 0; i < LOAD_THREADS; i++) {
        loaders[i] = (struct loader){.model = model, .input = input, .reference = reference, .warm = &warm};
        CHECK(pthread_create(&threads[i], NULL, loader_main, &loaders[i]) == 0);
    }
    pthread_barrier_wait(&warm); /* every thread has run 5 times: sessions, plans and arenas exist */
    long warm_rss = resident_bytes();
    pthread_barrier_wait(&warm); /* 50 runs each: the allocator's per-thread arenas have settled */
    long settled_rss = resident_bytes();
    pthread_barrier_wait(&warm); /* every thread has finished its runs, sessions still alive */
    long end_rss = resident_bytes();
    pthread_barrier_wait(&warm);
    for (int i = 0; i < LOAD_THREADS; i++) pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&warm);
    int identical = 0, failures = 0;
    for (int i = 0; i < LOAD_THREADS; i++) {
        identical += loaders[i].identical;
        failures += loaders[i].failures;
    }
    CHECK(failures == 0);
    CHECK(identical == LOAD_RUNS);
    /* From 400 runs in to 1000: a leak of 1 KiB a run would add 600 KiB. (Without one, 24000
       runs grew it by 0.15 MiB: the allocator settling, not growing with the runs.) */
    CHECK(end_rss - settled_rss < (512L << 10));
    printf("load: %d threads sharing one model, %d runs, %d identical to one thread; RSS after %d, %d and %d runs: "
           "%.2f, %.2f, %.2f MiB\n", LOAD_THREADS, LOAD_RUNS, identical, LOAD_THREADS * LOAD_WARM_RUNS,
           LOAD_THREADS * LOAD_SETTLED_RUNS, LOAD_RUNS, warm_rss / 1048576.0, settled_rss / 1048576.0, end_rss / 1048576.0);
}

/* Two threads calling on one session: one of them may be refused, none may crash. */
struct sharer {
    restore_session *session;
    const uint8_t *pixels;
    int refused, succeeded, other;
};

static void *sharer_main(void *argument) {
    struct sharer *sharer = argument;
    for (int i = 0; i < 20; i++) {
        uint8_t out[24 * 24 * 3];
        restore_status status = restore_image_u8(sharer->session, sharer->pixels, 24, 24, 3, 72, out, 72, 0, -1);
        if (status == RESTORE_OK) sharer->succeeded++;
        else if (status == RESTORE_ERROR_ARGUMENT && strstr(restore_last_error(), "another thread")) sharer->refused++;
        else sharer->other++;
    }
    return NULL;
}

static void test_shared_session_refused(restore_model *model) {
    restore_session *session = NULL;
    CHECK_OK(restore_session_create(model, 1, &session));
    uint8_t pixels[24 * 24 * 3];
    fill_random(pixels, sizeof pixels, 5);
    struct sharer sharers[2] = {{.session = session, .pixels = pixels}, {.session = session, .pixels = pixels}};
    pthread_t threads[2];
    for (int i = 0; i < 2; i++) pthread_create(&threads[i], NULL, sharer_main, &sharers[i]);
    for (int i = 0; i < 2; i++) pthread_join(threads[i], NULL);
    CHECK(sharers[0].other == 0 && sharers[1].other == 0);
    CHECK(sharers[0].succeeded + sharers[1].succeeded > 0);
    printf("one session on two threads: %d runs, %d refused as busy\n",
           sharers[0].succeeded + sharers[1].succeeded, sharers[0].refused + sharers[1].refused);
    restore_session_free(session);
}

static void test_free_order(const char *model_path) {
    /* A session keeps its model alive: freeing the model first is safe. */
    restore_model *model = NULL;
    restore_session *session = NULL;
    CHECK_OK(restore_model_load(model_path, &model));
    CHECK_OK(restore_session_create(model, 1, &session));
    restore_model_free(model);
    uint8_t pixels[8 * 8 * 3], out[8 * 8 * 3];
    fill_random(pixels, sizeof pixels, 9);
    CHECK_OK(restore_image_u8(session, pixels, 8, 8, 3, 24, out, 24, 0, -1));
    restore_session_free(session);
}

/* Progress of restore_dip: counts calls, checks their arguments, cancels after
   `cancel_after` iterations (0: never). */
struct dip_progress {
    int calls, last_iteration, total, cancel_after, bad_arguments;
};

static int dip_progress(void *user_data, int iteration, int total, float loss) {
    struct dip_progress *progress = user_data;
    progress->calls++;
    if (iteration != progress->last_iteration + 1 || !(loss >= 0)) progress->bad_arguments++;
    progress->last_iteration = iteration;
    progress->total = total;
    return progress->cancel_after > 0 && iteration >= progress->cancel_after;
}

static void test_dip(void) {
    enum { W = 12, H = 10 };
    CHECK(strcmp(restore_status_string(RESTORE_CANCELLED), "RESTORE_CANCELLED") == 0);
    restore_dip_options options;
    memset(&options, 0x5A, sizeof options);
    restore_dip_options_init(&options);
    restore_dip_options_init(NULL);
    CHECK(options.task == RESTORE_DIP_DENOISE && options.net == RESTORE_DIP_NET_UNET && options.iterations == 500 &&
          options.seed == 0 && options.threads == 2 && options.mask == NULL);
    options.iterations = 3;
    options.threads = 1;

    uint8_t pixels[W * H * 3], out[W * H * 3], sr[4 * W * 4 * H * 3];
    fill_random(pixels, sizeof pixels, 13);
    struct dip_progress progress = {0};
    CHECK_OK(restore_dip(&options, pixels, W, H, 3, 8, W * 3, out, W * 3, dip_progress, &progress));
    CHECK(progress.calls == 3 && progress.total == 3 && progress.bad_arguments == 0);
    CHECK(memcmp(out, pixels, sizeof out) != 0);
    /* No callback at all. */
    CHECK_OK(restore_dip(&options, pixels, W, H, 3, 8, W * 3, out, W * 3, NULL, NULL));

    /* Cancelled after the second iteration: RESTORE_CANCELLED, no more calls, out untouched. */
    struct dip_progress cancelling = {0};
    cancelling.cancel_after = 2;
    memset(out, 0xAB, sizeof out);
    CHECK_FAILS(restore_dip(&options, pixels, W, H, 3, 8, W * 3, out, W * 3, dip_progress, &cancelling), RESTORE_CANCELLED);
    CHECK(cancelling.calls == 2);
    int untouched = 1;
    for (size_t i = 0; i < sizeof out; i++) untouched &= out[i] == 0xAB;
    CHECK(untouched);

    /* ×4 super-resolution writes a 4W × 4H image. */
    options.task = RESTORE_DIP_SR4;
    options.iterations = 1;
    CHECK_OK(restore_dip(&options, pixels, W, H, 3, 8, W * 3, sr, 4 * W * 3, NULL, NULL));
    CHECK_FAILS(restore_dip(&options, pixels, W, H, 3, 8, W * 3, sr, W * 3, NULL, NULL), RESTORE_ERROR_ARGUMENT);

    /* Inpainting needs a mask; other tasks refuse one. */
    uint8_t mask[W * H];
    for (int i = 0; i < W * H; i++) mask[i] = (uint8_t)(i % 3 != 0);
    options.task = RESTORE_DIP_INPAINT;
    CHECK_FAILS(restore_dip(&options, pixels, W, H, 3, 8, W * 3, out, W * 3, NULL, NULL), RESTORE_ERROR_ARGUMENT);
    options.mask = mask;
    options.mask_stride = W - 1;
    CHECK_FAILS(restore_dip(&options, pixels, W, H, 3, 8, W * 3, out, W * 3, NULL, NULL), RESTORE_ERROR_ARGUMENT);
    options.mask_stride = W;
    CHECK_OK(restore_dip(&options, pixels, W, H, 3, 8, W * 3, out, W * 3, NULL, NULL));
    options.task = RESTORE_DIP_DENOISE;
    CHECK_FAILS(restore_dip(&options, pixels, W, H, 3, 8, W * 3, out, W * 3, NULL, NULL), RESTORE_ERROR_ARGUMENT);
    options.mask = NULL;

    /* Bad arguments. */
    CHECK_FAILS(restore_dip(NULL, pixels, W, H, 3, 8, W * 3, out, W * 3, NULL, NULL), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_dip(&options, NULL, W, H, 3, 8, W * 3, out, W * 3, NULL, NULL), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_dip(&options, pixels, W, H, 3, 8, W * 3, NULL, W * 3, NULL, NULL), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_dip(&options, pixels, 0, H, 3, 8, W * 3, out, W * 3, NULL, NULL), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_dip(&options, pixels, W, H, 5, 8, W * 5, out, W * 5, NULL, NULL), RESTORE_ERROR_ARGUMENT);
    options.iterations = 0;
    CHECK_FAILS(restore_dip(&options, pixels, W, H, 3, 8, W * 3, out, W * 3, NULL, NULL), RESTORE_ERROR_ARGUMENT);
    options.iterations = 1;
    options.threads = 0;
    CHECK_FAILS(restore_dip(&options, pixels, W, H, 3, 8, W * 3, out, W * 3, NULL, NULL), RESTORE_ERROR_ARGUMENT);
    options.threads = 1;
    options.net = (restore_dip_net)7;
    CHECK_FAILS(restore_dip(&options, pixels, W, H, 3, 8, W * 3, out, W * 3, NULL, NULL), RESTORE_ERROR_ARGUMENT);
    options.net = RESTORE_DIP_NET_VIT;
    CHECK_OK(restore_dip(&options, pixels, W, H, 3, 8, W * 3, out, W * 3, NULL, NULL));
}

static int progress_calls;
static float last_loss = -1;

static int count_progress(void *user_data, int iteration, int total, float loss) {
    (void)user_data;
    progress_calls++;
    if (iteration != progress_calls || total <= 0 || iteration > total) return 1;
    last_loss = loss;
    return 0;
}

static int cancel_at_two(void *user_data, int iteration, int total, float loss) {
    (void)user_data, (void)total, (void)loss;
    return iteration >= 2;
}

/* restore_generator_info, restore_generate and restore_dgp on the generator fixture; their
   refusals on it and on a model that is not a generator. */
static void test_generator(restore_model *generator, restore_model *not_a_generator) {
    int width = 0, height = 0, classes = 0, latent = 0;
    CHECK_OK(restore_generator_info(generator, &width, &height, &classes, &latent));
    CHECK(width == 32 && height == 32 && classes == 10 && latent == 16);
    CHECK_OK(restore_generator_info(generator, NULL, NULL, NULL, NULL));
    CHECK_FAILS(restore_generator_info(not_a_generator, &width, NULL, NULL, NULL), RESTORE_ERROR_UNSUPPORTED);
    CHECK_FAILS(restore_generator_info(NULL, &width, NULL, NULL, NULL), RESTORE_ERROR_ARGUMENT);

    enum { side = 32, stride = 3 * side + 5 };
    uint8_t *three = calloc(3 * side * stride, 1), *one = calloc(side * stride, 1);
    /* The same seed gives the same z rows: the first of three images is the single one. */
    CHECK_OK(restore_generate(generator, 3, 7, 0.0f, 3, 2, three, stride));
    CHECK_OK(restore_generate(generator, 3, 7, 0.4f, 1, 2, one, stride));
    int same = 1, varied = 0;
    for (int y = 0; y < side; y++) {
        same &= memcmp(three + y * stride, one + y * stride, 3 * side) == 0;
        varied |= memcmp(three + y * stride, three + (side + y) * stride, 3 * side) != 0;
    }
    CHECK(same);
    CHECK(varied);
    CHECK_FAILS(restore_generate(generator, 10, 7, 0.0f, 1, 2, one, stride), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_generate(generator, 3, 7, 0.5f, 1, 2, one, stride), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_generate(generator, 3, 7, 0.0f, 0, 2, one, stride), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_generate(generator, 3, 7, 0.0f, 1, 2, one, 3 * side - 1), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_generate(generator, 3, 7, 0.0f, 1, 2, NULL, stride), RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_generate(not_a_generator, 0, 7, 0.0f, 1, 2, one, stride), RESTORE_ERROR_UNSUPPORTED);

    /* Colorization of the gray of a generated image: progress after every iteration. */
    uint8_t gray[side * side];
    for (int y = 0; y < side; y++)
        for (int x = 0; x < side; x++) {
            const uint8_t *p = one + y * stride + 3 * x;
            gray[y * side + x] = (uint8_t)(0.2989f * p[0] + 0.587f * p[1] + 0.114f * p[2] + 0.5f);
        }
    restore_dgp_options options;
    restore_dgp_options_init(&options);
    CHECK(options.iterations == 500 && options.class_index == -1 && options.discriminator == NULL);
    options.class_index = 3;
    options.iterations = 5;
    options.candidates = 2;
    uint8_t *restored = calloc(side * stride, 1);
    progress_calls = 0;
    CHECK_OK(restore_dgp(generator, &options, gray, side, side, 1, 8, side, restored, stride, count_progress, NULL));
    CHECK(progress_calls == 5 && last_loss > 0);
    int colourful = 0;
    for (int i = 0; i < side * side; i++) colourful |= restored[(i / side) * stride + 3 * (i % side)] != restored[(i / side) * stride + 3 * (i % side) + 1];
    CHECK(colourful);
    CHECK_OK(restore_dgp(generator, &options, gray, side, side, 1, 8, side, restored, stride, NULL, NULL));

    /* Cancelling returns RESTORE_CANCELLED and leaves the output untouched. */
    memset(restored, 0xAB, side * stride);
    CHECK_FAILS(restore_dgp(generator, &options, gray, side, side, 1, 8, side, restored, stride, cancel_at_two, NULL),
                RESTORE_CANCELLED);
    int untouched = 1;
    for (int i = 0; i < side * stride; i++) untouched &= restored[i] == 0xAB;
    CHECK(untouched);
    CHECK(strcmp(restore_status_string(RESTORE_CANCELLED), "RESTORE_CANCELLED") == 0);

    /* ×4 super-resolution of an 8×8 image gives 32×32; a 12×8 one is centre-cropped to 8×8. */
    options.task = RESTORE_DGP_SR4;
    options.iterations = 1;
    options.candidates = 1;
    uint8_t small[12 * 8 * 3];
    fill_random(small, sizeof small, 5);
    CHECK_OK(restore_dgp(generator, &options, small, 8, 8, 3, 8, 8 * 3, restored, stride, NULL, NULL));
    CHECK_OK(restore_dgp(generator, &options, small, 12, 8, 3, 8, 12 * 3, restored, stride, NULL, NULL));

    /* Refusals. */
    options.task = RESTORE_DGP_INPAINT;
    CHECK_FAILS(restore_dgp(generator, &options, gray, side, side, 1, 8, side, restored, stride, NULL, NULL),
                RESTORE_ERROR_ARGUMENT);
    options.task = RESTORE_DGP_COLORIZE;
    CHECK_FAILS(restore_dgp(generator, &options, gray, side, side, 1, 8, side, restored, 3 * side - 1, NULL, NULL),
                RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_dgp(generator, NULL, gray, side, side, 1, 8, side, restored, stride, NULL, NULL),
                RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_dgp(generator, &options, NULL, side, side, 1, 8, side, restored, stride, NULL, NULL),
                RESTORE_ERROR_ARGUMENT);
    CHECK_FAILS(restore_dgp(not_a_generator, &options, gray, side, side, 1, 8, side, restored, stride, NULL, NULL),
                RESTORE_ERROR_UNSUPPORTED);
    options.class_index = 10;
    CHECK_FAILS(restore_dgp(generator, &options, gray, side, side, 1, 8, side, restored, stride, NULL, NULL),
                RESTORE_ERROR_ARGUMENT);
    options.class_index = 3;
    options.iterations = 0;
    CHECK_FAILS(restore_dgp(generator, &options, gray, side, side, 1, 8, side, restored, stride, NULL, NULL),
                RESTORE_ERROR_ARGUMENT);
    free(three);
    free(one);
    free(restored);
}

int main(int argc, char **argv) {
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: %s MODEL.rgraph [GENERATOR.rgraph]\n", argv[0]);
        return 2;
    }
    const char *model_path = argv[1];
    test_basics();
    test_loading_errors(model_path);

    restore_model *model = NULL;
    CHECK_OK(restore_model_load(model_path, &model));
    if (model) {
        test_model_queries(model);
        test_session_errors(model);
        test_tensor_mode(model);
        test_image_errors(model);
        test_image_layouts(model);
        test_threads(model);
        test_load_under_concurrency(model);
        test_shared_session_refused(model);
        restore_model *generator = NULL;
        if (argc == 3) {
            CHECK_OK(restore_model_load(argv[2], &generator));
            if (generator) test_generator(generator, model);
            restore_model_free(generator);
        }
        restore_model_free(model);
    }
    test_free_order(model_path);
    test_dip();

    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
