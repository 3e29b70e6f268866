/*
 * CRC-64/XZ (schemas/rgraph.md §3) by carry-less multiplication: the checksum of an
 * .rgraph file's data section, several times faster than the slicing-by-8 tables of
 * Sources/Format/RGraphChecksum.swift, which stay the portable path and the reference.
 *
 * The maths. Let P be the ECMA-182 polynomial and M(x) the message with its first bit as
 * the highest power. With initial register value 0 the CRC register after M is
 * M(x)·x^64 mod P, so any message congruent to M modulo P (and of the same length) has
 * the same CRC. The reflected CRC reads each byte least significant bit first, so a
 * 16-byte block loaded little-endian into a 128-bit register holds, at bit j, the
 * coefficient of x^(127-j) of the block's polynomial A = A_hi·x^64 + A_lo (A_hi in the low
 * 64 bits). Moving A forward by T bits onto a later block B gives
 *     A·x^T = A_hi·x^(T+64) + A_lo·x^T ≡ A_hi·K_hi + A_lo·K_lo   (mod P),
 * two 64×64-bit carry-less products XORed into B. For bit-reversed operands a carry-less
 * product comes out one place short (the 127-bit product of two 64-bit reversed values
 * sits at bits 0...126, not 1...127), which taking K_hi = x^(T+63) mod P and
 * K_lo = x^(T-1) mod P (bit-reversed) makes up for. The register's initial value is XORed
 * into the first 8 bytes, which is what the table CRC does with them.
 *
 * LANES independent 16-byte accumulators each fold the block LANES·16 bytes ahead
 * (T = LANES·128 bits), so the multiplier's latency overlaps. What is left after the last
 * whole stride — the accumulators, which stand for everything read so far, as the last
 * LANES·16 bytes of an equivalent message, and the bytes past them — the caller's byte
 * table finishes, which costs ~0.1 µs per call and needs no Barrett reduction.
 */
#include "ckernels.h"

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

/* The ECMA-182 polynomial without its x^64 term, highest power in the top bit. */
static const uint64_t ecma182 = 0x42F0E1EBA9EA3693ull;

/* x^exponent mod P, bit-reversed (the reflected representation: bit i holds x^(63-i)). */
static uint64_t reflected_power(unsigned exponent) {
    uint64_t remainder = 1;
    for (unsigned step = 0; step < exponent; step++) {
        uint64_t carry = remainder >> 63;
        remainder = (remainder << 1) ^ (carry ? ecma182 : 0);
    }
    uint64_t reflected = 0;
    for (int bit = 0; bit < 64; bit++) reflected |= ((remainder >> bit) & 1) << (63 - bit);
    return reflected;
}

/* The byte-at-a-time step of the reflected CRC with the caller's 256-entry table. */
static uint64_t crc64_bytes(uint64_t crc, const uint8_t *bytes, size_t count, const uint64_t *table) {
    for (size_t index = 0; index < count; index++) crc = table[(crc ^ bytes[index]) & 0xFF] ^ (crc >> 8);
    return crc;
}

enum {
    /* 16-byte accumulators of the 128-bit kernel: 8 keep the multiplier (latency ~4-7
     * cycles, one per cycle) busy with 16 multiplies per stride. */
    LANES_128 = 8,
    /* 32-byte accumulators of the 256-bit kernel, each two 16-byte blocks: 8, as for the
     * 128-bit kernel, keep its multiplies' latency covered with the same stride in bytes as
     * the 512-bit kernel's (12 of 16 ymm registers in the loop). */
    LANES_256 = 8,
    /* 64-byte accumulators of the 512-bit kernel, each four 16-byte blocks. */
    LANES_512 = 4,
};

__attribute__((target("pclmul,sse4.1")))
static uint64_t crc64_clmul128(uint64_t crc, const uint8_t *bytes, size_t count, const uint64_t *table) {
    const size_t stride = LANES_128 * 16;
    if (count < 2 * stride) return crc64_bytes(crc, bytes, count, table);
    const unsigned distance = stride * 8;
    const __m128i constants = _mm_set_epi64x((long long)reflected_power(distance - 1),
                                             (long long)reflected_power(distance + 63));
    __m128i lanes[LANES_128];
    for (int lane = 0; lane < LANES_128; lane++) lanes[lane] = _mm_loadu_si128((const __m128i *)(bytes + 16 * lane));
    lanes[0] = _mm_xor_si128(lanes[0], _mm_set_epi64x(0, (long long)crc));
    size_t offset = stride;
    for (; offset + stride <= count; offset += stride) {
        for (int lane = 0; lane < LANES_128; lane++) {
            __m128i next = _mm_loadu_si128((const __m128i *)(bytes + offset + 16 * lane));
            __m128i high = _mm_clmulepi64_si128(lanes[lane], constants, 0x00);
            __m128i low = _mm_clmulepi64_si128(lanes[lane], constants, 0x11);
            lanes[lane] = _mm_xor_si128(_mm_xor_si128(high, low), next);
        }
    }
    uint8_t folded[LANES_128 * 16];
    for (int lane = 0; lane < LANES_128; lane++) _mm_storeu_si128((__m128i *)(folded + 16 * lane), lanes[lane]);
    crc = crc64_bytes(0, folded, sizeof folded, table);
    return crc64_bytes(crc, bytes + offset, count - offset, table);
}

/* VEX-encoded VPCLMULQDQ on 256-bit registers: what CPUs with AVX2 and VPCLMULQDQ but no
 * AVX-512 run (AMD Zen 3; Intel Alder Lake and later client cores), and the AVX2 path's
 * kernel on every CPU that has VPCLMULQDQ. */
__attribute__((target("avx2,vpclmulqdq")))
static uint64_t crc64_clmul256(uint64_t crc, const uint8_t *bytes, size_t count, const uint64_t *table) {
    const size_t stride = LANES_256 * 32;
    if (count < 2 * stride) return crc64_clmul128(crc, bytes, count, table);
    const unsigned distance = stride * 8;
    const __m128i pair = _mm_set_epi64x((long long)reflected_power(distance - 1), (long long)reflected_power(distance + 63));
    const __m256i constants = _mm256_broadcastsi128_si256(pair);
    __m256i lanes[LANES_256];
    for (int lane = 0; lane < LANES_256; lane++) lanes[lane] = _mm256_loadu_si256((const __m256i *)(bytes + 32 * lane));
    lanes[0] = _mm256_xor_si256(lanes[0], _mm256_set_epi64x(0, 0, 0, (long long)crc));
    size_t offset = stride;
    for (; offset + stride <= count; offset += stride) {
        for (int lane = 0; lane < LANES_256; lane++) {
            __m256i next = _mm256_loadu_si256((const __m256i *)(bytes + offset + 32 * lane));
            __m256i high = _mm256_clmulepi64_epi128(lanes[lane], constants, 0x00);
            __m256i low = _mm256_clmulepi64_epi128(lanes[lane], constants, 0x11);
            lanes[lane] = _mm256_xor_si256(_mm256_xor_si256(high, low), next);
        }
    }
    uint8_t folded[LANES_256 * 32];
    for (int lane = 0; lane < LANES_256; lane++) _mm256_storeu_si256((__m256i *)(folded + 32 * lane), lanes[lane]);
    crc = crc64_bytes(0, folded, sizeof folded, table);
    return crc64_bytes(crc, bytes + offset, count - offset, table);
}

__attribute__((target("avx512f,vpclmulqdq")))
static uint64_t crc64_clmul512(uint64_t crc, const uint8_t *bytes, size_t count, const uint64_t *table) {
    const size_t stride = LANES_512 * 64;
    if (count < 2 * stride) return crc64_clmul128(crc, bytes, count, table);
    const unsigned distance = stride * 8;
    const __m512i constants = _mm512_broadcast_i32x4(_mm_set_epi64x((long long)reflected_power(distance - 1),
                                                                    (long long)reflected_power(distance + 63)));
    __m512i lanes[LANES_512];
    for (int lane = 0; lane < LANES_512; lane++) lanes[lane] = _mm512_loadu_si512(bytes + 64 * lane);
    lanes[0] = _mm512_xor_si512(lanes[0], _mm512_set_epi64(0, 0, 0, 0, 0, 0, 0, (long long)crc));
    size_t offset = stride;
    for (; offset + stride <= count; offset += stride) {
        for (int lane = 0; lane < LANES_512; lane++) {
            __m512i next = _mm512_loadu_si512(bytes + offset + 64 * lane);
            __m512i high = _mm512_clmulepi64_epi128(lanes[lane], constants, 0x00);
            __m512i low = _mm512_clmulepi64_epi128(lanes[lane], constants, 0x11);
            lanes[lane] = _mm512_ternarylogic_epi64(high, low, next, 0x96); /* high ^ low ^ next */
        }
    }
    uint8_t folded[LANES_512 * 64];
    for (int lane = 0; lane < LANES_512; lane++) _mm512_storeu_si512(folded + 64 * lane, lanes[lane]);
    crc = crc64_bytes(0, folded, sizeof folded, table);
    return crc64_bytes(crc, bytes + offset, count - offset, table);
}

int restore_crc64_clmul_level(void) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("pclmul") || !__builtin_cpu_supports("sse4.1")) return RESTORE_CRC64_TABLE;
    if (__builtin_cpu_supports("vpclmulqdq")) {
        if (__builtin_cpu_supports("avx512f")) return RESTORE_CRC64_CLMUL512;
        if (__builtin_cpu_supports("avx2")) return RESTORE_CRC64_CLMUL256;
    }
    return RESTORE_CRC64_CLMUL128;
}

uint64_t restore_crc64_clmul(uint64_t crc, const void *bytes, size_t count, int variant, const uint64_t *table) {
    switch (variant) {
    case RESTORE_CRC64_CLMUL512: return crc64_clmul512(crc, bytes, count, table);
    case RESTORE_CRC64_CLMUL256: return crc64_clmul256(crc, bytes, count, table);
    case RESTORE_CRC64_CLMUL128: return crc64_clmul128(crc, bytes, count, table);
    default: return crc64_bytes(crc, bytes, count, table);
    }
}

/* a·b mod P, both with the highest power in the top bit (not reflected). */
static uint64_t multiply_modulo(uint64_t a, uint64_t b) {
    uint64_t product = 0;
    for (int bit = 63; bit >= 0; bit--) {
        uint64_t carry = product >> 63;
        product = (product << 1) ^ (carry ? ecma182 : 0);
        if ((a >> bit) & 1) product ^= b;
    }
    return product;
}

static uint64_t reverse_bits(uint64_t value) {
    uint64_t reversed = 0;
    for (int bit = 0; bit < 64; bit++) reversed |= ((value >> bit) & 1) << (63 - bit);
    return reversed;
}

/* Appending n bytes B to a message whose register is r gives the register
 * r·x^(8n) mod P ⊕ crc_0(B), crc_0 being B's register from 0 (the CRC is linear). The power
 * is made by squaring: ~2·log2(8n) products of 64 steps, microseconds. */
uint64_t restore_crc64_combine(uint64_t first, uint64_t second_from_zero, size_t second_count) {
    uint64_t shift = 1, square = 1ull << 8; /* x^0 and x^8: one byte */
    for (size_t bytes = second_count; bytes > 0; bytes >>= 1) {
        if (bytes & 1) shift = multiply_modulo(shift, square);
        square = multiply_modulo(square, square);
    }
    return reverse_bits(multiply_modulo(reverse_bits(first), shift)) ^ second_from_zero;
}
