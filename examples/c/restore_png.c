/*
 * restore_png: restores a PNG image with libRestore.
 *
 *   restore_png MODEL.rgraph IN.png OUT.png [TILE [OVERLAP]]
 *
 * The PNG is read and written with libpng: any input (gray, palette, 16-bit,
 * interlaced) becomes 8-bit RGB or RGBA through libpng's transforms; the output is
 * 8-bit RGB or RGBA, restore_output_size() large. TILE 0 (the default) uses the
 * model's tile size, OVERLAP -1 (the default) its overlap.
 *
 * Build: cc restore_png.c $(pkg-config --cflags --libs restore libpng) -o restore_png
 */
#include <restore.h>

#include <png.h>
#include <stdio.h>
#include <stdlib.h>

/* An 8-bit interleaved image: 3 (RGB) or 4 (RGBA) channels, rows packed. */
struct image {
    int width, height, channels;
    unsigned char *pixels;
};

/* Reads any PNG as 8-bit RGB or RGBA. Returns 0 on success; prints why on failure. */
static int read_png(const char *path, struct image *image) {
    FILE *file = fopen(path, "rb");
    if (!file) {
        perror(path);
        return -1;
    }
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    /* Written after setjmp and read after a longjmp, hence volatile. */
    unsigned char *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        fprintf(stderr, "%s: cannot decode PNG\n", path);
        png_destroy_read_struct(&png, &info, NULL);
        free(rows);
        free(pixels);
        fclose(file);
        return -1;
    }
    png_init_io(png, file);
    png_read_info(png, info);
    png_set_expand(png);        /* palette → RGB, gray < 8 bits → 8 bits, tRNS → alpha */
    png_set_strip_16(png);      /* 16 → 8 bits */
    png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    int width = (int)png_get_image_width(png, info);
    int height = (int)png_get_image_height(png, info);
    int channels = png_get_channels(png, info);
    if (channels != 3 && channels != 4) png_error(png, "unexpected channel count after transforms");
    size_t row_bytes = (size_t)width * (size_t)channels;
    pixels = malloc(row_bytes * (size_t)height);
    rows = malloc(sizeof(png_bytep) * (size_t)height);
    if (!pixels || !rows) png_error(png, "out of memory");
    for (int y = 0; y < height; y++) rows[y] = pixels + (size_t)y * row_bytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);

    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    fclose(file);
    *image = (struct image){width, height, channels, pixels};
    return 0;
}

/* Writes 8-bit RGB or RGBA. Returns 0 on success; prints why on failure. */
static int write_png(const char *path, const struct image *image) {
    FILE *file = fopen(path, "wb");
    if (!file) {
        perror(path);
        return -1;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep *volatile rows = NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        fprintf(stderr, "%s: cannot encode PNG\n", path);
        png_destroy_write_struct(&png, &info);
        free(rows);
        fclose(file);
        return -1;
    }
    png_init_io(png, file);
    png_set_IHDR(png, info, (png_uint_32)image->width, (png_uint_32)image->height, 8,
                 image->channels == 4 ? PNG_COLOR_TYPE_RGBA : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    rows = malloc(sizeof(png_bytep) * (size_t)image->height);
    if (!rows) png_error(png, "out of memory");
    size_t row_bytes = (size_t)image->width * (size_t)image->channels;
    for (int y = 0; y < image->height; y++) rows[y] = image->pixels + (size_t)y * row_bytes;
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    if (fclose(file) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}

/* Prints a failed libRestore call's status and message. */
static int failed(const char *what, restore_status status) {
    fprintf(stderr, "%s failed: %s: %s\n", what, restore_status_string(status), restore_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 4 || argc > 6) {
        fprintf(stderr, "usage: %s MODEL.rgraph IN.png OUT.png [TILE [OVERLAP]]\n", argv[0]);
        return 2;
    }
    int tile = argc > 4 ? atoi(argv[4]) : 0;
    int overlap = argc > 5 ? atoi(argv[5]) : -1;

    restore_model *model = NULL;
    restore_status status = restore_model_load(argv[1], &model);
    if (status != RESTORE_OK) return failed("restore_model_load", status);

    struct image input = {0};
    if (read_png(argv[2], &input) != 0) {
        restore_model_free(model);
        return 1;
    }

    int exit_code = 1;
    restore_session *session = NULL;
    struct image output = {0, 0, input.channels, NULL};
    status = restore_output_size(model, input.width, input.height, &output.width, &output.height);
    if (status != RESTORE_OK) {
        failed("restore_output_size", status);
        goto done;
    }
    status = restore_session_create(model, 0, &session);
    if (status != RESTORE_OK) {
        failed("restore_session_create", status);
        goto done;
    }
    output.pixels = malloc((size_t)output.width * (size_t)output.height * (size_t)output.channels);
    if (!output.pixels) {
        fprintf(stderr, "out of memory\n");
        goto done;
    }
    status = restore_image_u8(session, input.pixels, input.width, input.height, input.channels,
                              input.width * input.channels, output.pixels, output.width * output.channels,
                              tile, overlap);
    if (status != RESTORE_OK) {
        failed("restore_image_u8", status);
        goto done;
    }
    if (write_png(argv[3], &output) == 0) exit_code = 0;

done:
    free(output.pixels);
    free(input.pixels);
    restore_session_free(session);
    restore_model_free(model);
    return exit_code;
}
