#ifndef CIMAGEIO_H
#define CIMAGEIO_H

/*
 * PNG (libpng) and JPEG (libjpeg-turbo) decoding and encoding, in memory, without
 * longjmp escaping.
 *
 * Both libraries report errors by longjmp; Swift cannot unwind through that, so every
 * library call happens here, under setjmp, and the outcome comes back as a status code
 * plus a message. Nothing here aborts or prints: PNG warnings are dropped, JPEG warnings
 * (corrupt or missing data) are errors, and errors are returned.
 */

#include <stddef.h>
#include <stdint.h>

typedef enum {
    CIMAGEIO_OK = 0,
    CIMAGEIO_NOT_PNG = 1,        /* the 8-byte signature is missing or wrong */
    CIMAGEIO_TRUNCATED = 2,      /* the data ended before the image did */
    CIMAGEIO_CRC_ERROR = 3,      /* a critical chunk failed its CRC check */
    CIMAGEIO_CORRUPT = 4,        /* any other malformed content libpng rejects */
    CIMAGEIO_TOO_LARGE = 5,      /* dimensions beyond the limits below */
    CIMAGEIO_UNSUPPORTED = 6,    /* a layout this wrapper does not write */
    CIMAGEIO_OUT_OF_MEMORY = 7,
    CIMAGEIO_NOT_JPEG = 8        /* no JPEG start-of-image marker */
} cimageio_status;

/* Limits applied to every decode (png_set_user_limits and our own pixel cap). */
enum {
    CIMAGEIO_MAX_SIDE = 65536,          /* width and height, each */
    CIMAGEIO_MAX_PIXELS = 1 << 27,      /* width * height: 134 M pixels (11585²) */
    CIMAGEIO_MAX_CHUNK_BYTES = 16 << 20, /* any ancillary chunk held in memory */
    CIMAGEIO_JPEG_MAX_SCANS = 1000       /* progressive JPEG scans read */
};

/* A decoded or to-be-encoded image: interleaved samples, rows top to bottom. */
typedef struct {
    uint32_t width;
    uint32_t height;
    int bit_depth;   /* 8 or 16 */
    int channels;    /* 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA */
    /* width*height*channels samples: uint8_t for 8-bit, native-endian uint16_t for 16-bit. */
    void *samples;
} cimageio_image;

/* Decodes a whole PNG held in memory into 8- or 16-bit samples. Palettes become RGB
   (RGBA with tRNS), gray below 8 bits becomes 8-bit, any tRNS becomes an alpha channel,
   interlaced images are de-interlaced. In two calls, so that the pixels go straight into
   memory the caller owns: with `samples` NULL only the header is read and checked against
   the limits, and `image` gets the size, bit depth and channels the pixels will have; with
   `samples` pointing to `capacity` >= width*height*channels*bit_depth/8 bytes the pixels
   are decoded into it and `image->samples` is set to it. On failure `message` holds a
   sentence. */
cimageio_status cimageio_png_decode(const uint8_t *data, size_t size, cimageio_image *image,
                                    void *samples, size_t capacity, char *message, size_t message_capacity);

/* Encodes `image` (8/16 bit, 1-4 channels) as a non-interlaced PNG in a buffer the
   caller releases with cimageio_free. */
cimageio_status cimageio_png_encode(const cimageio_image *image, uint8_t **encoded,
                                    size_t *encoded_size, char *message, size_t message_capacity);

/* Decodes a baseline or progressive JPEG held in memory into 8-bit gray (1 channel) or
   RGB (3 channels), in the same two calls as cimageio_png_decode. CMYK is refused. */
cimageio_status cimageio_jpeg_decode(const uint8_t *data, size_t size, cimageio_image *image,
                                     void *samples, size_t capacity, char *message, size_t message_capacity);

/* Encodes an 8-bit gray or RGB `image` as a baseline JPEG of `quality` (1-100), without
   chroma subsampling, in a buffer the caller releases with cimageio_free. */
cimageio_status cimageio_jpeg_encode(const cimageio_image *image, int quality, uint8_t **encoded,
                                     size_t *encoded_size, char *message, size_t message_capacity);

void cimageio_free(void *pointer);

#endif
