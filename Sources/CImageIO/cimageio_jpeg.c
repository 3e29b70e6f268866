#include "cimageio.h"

#include <stdio.h>
#include <jpeglib.h>
#include <jerror.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

/* libjpeg reports errors through error_exit, which must not return: it longjmps back here.
   Warnings (corrupt data that libjpeg would paper over with grey, a premature end) are
   treated as errors too, so a damaged file is refused instead of restored half grey. */
typedef struct {
    struct jpeg_error_mgr manager;
    struct jpeg_progress_mgr progress;
    jmp_buf escape;
    char *message;
    size_t message_capacity;
    int out_of_memory;
} jpeg_context;

static void jpeg_set_message(jpeg_context *context, const char *text) {
    if (context->message && context->message_capacity > 0) {
        snprintf(context->message, context->message_capacity, "%s", text);
    }
}

static void jpeg_fail(j_common_ptr info) {
    jpeg_context *context = (jpeg_context *)info->err;
    char text[JMSG_LENGTH_MAX];
    info->err->format_message(info, text);
    jpeg_set_message(context, text);
    if (info->err->msg_code == JERR_OUT_OF_MEMORY) context->out_of_memory = 1;
    longjmp(context->escape, 1);
}

static void jpeg_on_message(j_common_ptr info, int level) {
    if (level < 0) jpeg_fail(info); /* a warning: the data is corrupt */
}

/* A progressive file may hold any number of scans, each a pass over the whole image;
   a hostile one with thousands of tiny scans would take minutes. Real encoders write ≤ ~20. */
static void jpeg_limit_scans(j_common_ptr info) {
    if (info->is_decompressor && ((j_decompress_ptr)info)->input_scan_number > CIMAGEIO_JPEG_MAX_SCANS) {
        jpeg_context *context = (jpeg_context *)info->err;
        char text[96];
        snprintf(text, sizeof text, "more than %d progressive scans", CIMAGEIO_JPEG_MAX_SCANS);
        jpeg_set_message(context, text);
        longjmp(context->escape, 1);
    }
}

static void jpeg_prepare(jpeg_context *context, char *message, size_t message_capacity) {
    memset(context, 0, sizeof *context);
    context->message = message;
    context->message_capacity = message_capacity;
    jpeg_std_error(&context->manager);
    context->manager.error_exit = jpeg_fail;
    context->manager.emit_message = jpeg_on_message;
    context->progress.progress_monitor = jpeg_limit_scans;
    jpeg_set_message(context, "");
}

/* Everything after setjmp lives in the caller's structs, so nothing here needs volatile. */
static cimageio_status jpeg_decode_with(struct jpeg_decompress_struct *info, jpeg_context *context,
                                        const uint8_t *data, size_t size, cimageio_image *image,
                                        void *samples, size_t capacity) {
    if (setjmp(context->escape)) {
        return context->out_of_memory ? CIMAGEIO_OUT_OF_MEMORY : CIMAGEIO_CORRUPT;
    }
    jpeg_create_decompress(info);
    info->progress = &context->progress;
    /* libjpeg-turbo keeps no backing store: a progressive image's coefficients all live in
       memory, and above this the decoder fails with "Insufficient memory" instead of
       taking gigabytes. 2^27 pixels × 3 components × 2 bytes = 768 MiB is the worst legal case. */
    info->mem->max_memory_to_use = (long)CIMAGEIO_MAX_PIXELS * 3 * 2 + (64 << 20);
    jpeg_mem_src(info, data, (unsigned long)size);
    jpeg_read_header(info, TRUE);

    uint32_t width = info->image_width, height = info->image_height;
    if (width > CIMAGEIO_MAX_SIDE || height > CIMAGEIO_MAX_SIDE || (uint64_t)width * height > CIMAGEIO_MAX_PIXELS) {
        char text[128];
        snprintf(text, sizeof text, "%ux%u pixels exceeds the limit of %u pixels (%u a side)", width, height,
                 (unsigned)CIMAGEIO_MAX_PIXELS, (unsigned)CIMAGEIO_MAX_SIDE);
        jpeg_set_message(context, text);
        return CIMAGEIO_TOO_LARGE;
    }
    switch (info->jpeg_color_space) {
    case JCS_GRAYSCALE: info->out_color_space = JCS_GRAYSCALE; break;
    case JCS_YCbCr: case JCS_RGB: info->out_color_space = JCS_RGB; break;
    default:
        jpeg_set_message(context, info->jpeg_color_space == JCS_CMYK || info->jpeg_color_space == JCS_YCCK
                         ? "CMYK colour (only gray and RGB/YCbCr JPEGs are read; save it as RGB)"
                         : "an unknown colour space (only gray and RGB/YCbCr JPEGs are read)");
        return CIMAGEIO_UNSUPPORTED;
    }
    int channels = info->out_color_space == JCS_GRAYSCALE ? 1 : 3;
    image->width = width;
    image->height = height;
    image->bit_depth = 8;
    image->channels = channels;
    if (!samples) return CIMAGEIO_OK;
    size_t row_bytes = (size_t)width * channels;
    if (capacity < row_bytes * height) {
        jpeg_set_message(context, "the buffer for the pixels is too small");
        return CIMAGEIO_UNSUPPORTED;
    }
    jpeg_start_decompress(info);
    if (info->output_width != width || info->output_height != height || info->output_components != channels) {
        jpeg_set_message(context, "unexpected output layout");
        return CIMAGEIO_UNSUPPORTED;
    }
    while (info->output_scanline < height) {
        JSAMPROW row = (JSAMPROW)samples + (size_t)info->output_scanline * row_bytes;
        jpeg_read_scanlines(info, &row, 1);
    }
    jpeg_finish_decompress(info);
    image->samples = samples;
    return CIMAGEIO_OK;
}

cimageio_status cimageio_jpeg_decode(const uint8_t *data, size_t size, cimageio_image *image,
                                     void *samples, size_t capacity, char *message, size_t message_capacity) {
    memset(image, 0, sizeof *image);
    jpeg_context context;
    jpeg_prepare(&context, message, message_capacity);
    if (size < 3 || data[0] != 0xFF || data[1] != 0xD8 || data[2] != 0xFF) {
        jpeg_set_message(&context, "no JPEG start-of-image marker (FF D8 FF)");
        return CIMAGEIO_NOT_JPEG;
    }
    struct jpeg_decompress_struct info;
    memset(&info, 0, sizeof info);
    info.err = &context.manager;
    cimageio_status status = jpeg_decode_with(&info, &context, data, size, image, samples, capacity);
    jpeg_destroy_decompress(&info);
    return status;
}

static cimageio_status jpeg_encode_with(struct jpeg_compress_struct *info, jpeg_context *context,
                                        const cimageio_image *image, int quality,
                                        unsigned char **encoded, unsigned long *encoded_size) {
    if (setjmp(context->escape)) {
        return context->out_of_memory ? CIMAGEIO_OUT_OF_MEMORY : CIMAGEIO_CORRUPT;
    }
    jpeg_create_compress(info);
    jpeg_mem_dest(info, encoded, encoded_size);
    info->image_width = image->width;
    info->image_height = image->height;
    info->input_components = image->channels;
    info->in_color_space = image->channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(info);
    jpeg_set_quality(info, quality, TRUE);
    /* No chroma subsampling (4:4:4): a restored image's colour detail is what was paid for. */
    for (int c = 0; c < info->num_components; c++) {
        info->comp_info[c].h_samp_factor = 1;
        info->comp_info[c].v_samp_factor = 1;
    }
    info->optimize_coding = TRUE;
    jpeg_start_compress(info, TRUE);
    size_t row_bytes = (size_t)image->width * image->channels;
    while (info->next_scanline < image->height) {
        JSAMPROW row = (JSAMPROW)image->samples + (size_t)info->next_scanline * row_bytes;
        jpeg_write_scanlines(info, &row, 1);
    }
    jpeg_finish_compress(info);
    return CIMAGEIO_OK;
}

cimageio_status cimageio_jpeg_encode(const cimageio_image *image, int quality, uint8_t **encoded,
                                     size_t *encoded_size, char *message, size_t message_capacity) {
    *encoded = NULL;
    *encoded_size = 0;
    jpeg_context context;
    jpeg_prepare(&context, message, message_capacity);
    if (image->bit_depth != 8 || (image->channels != 1 && image->channels != 3) || image->width == 0
        || image->height == 0 || image->width > 65500 || image->height > 65500 || quality < 1 || quality > 100) {
        jpeg_set_message(&context, "JPEG holds 8-bit gray or RGB images up to 65500 a side, quality 1-100");
        return CIMAGEIO_UNSUPPORTED;
    }
    struct jpeg_compress_struct info;
    memset(&info, 0, sizeof info);
    info.err = &context.manager;
    unsigned char *buffer = NULL;
    unsigned long buffer_size = 0;
    cimageio_status status = jpeg_encode_with(&info, &context, image, quality, &buffer, &buffer_size);
    jpeg_destroy_compress(&info);
    if (status != CIMAGEIO_OK) {
        free(buffer);
        return status;
    }
    *encoded = buffer;
    *encoded_size = buffer_size;
    return CIMAGEIO_OK;
}
