/*
 * The foundation of a host: create an index, add 1,000 photo vectors (dim 512) with
 * five captions each, save, close, reopen and check that everything reads back
 * bit for bit. Also shows an error a host can act on.
 *
 * usage: roundtrip INDEX_DIR
 */
#include <avg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_IMAGES 1000
#define DIM 512
#define CAPTIONS 5

/* Deterministic pseudo-random floats, so the reader can regenerate what was written. */
static float value(uint64_t image, uint64_t slot, uint64_t i) {
    uint64_t x = image * 0x9E3779B97F4A7C15ull ^ (slot + 1) * 0xBF58476D1CE4E5B9ull ^ (i + 1) * 0x94D049BB133111EBull;
    x ^= x >> 31; x *= 0xD6E8FEB86659FD93ull; x ^= x >> 32;
    return (float)((double)(x >> 11) / (double)(1ull << 53) * 2.0 - 1.0);
}

static void fill(float *v, uint64_t image, uint64_t slot) {
    for (size_t i = 0; i < DIM; i++) v[i] = value(image, slot, i);
}

static int check(AvgStatus st, AvgError *err, const char *what) {
    if (st == AVG_STATUS_OK) return 0;
    fprintf(stderr, "%s failed: status %d: %s\n", what, (int)st, avg_error_message(err));
    avg_error_free(err);
    exit(1);
}

static void write_index(const char *dir) {
    AvgIndexConfig cfg;
    AvgError *err = NULL;
    AvgIndex *index = NULL;
    check(avg_index_config_default(&cfg, sizeof cfg, &err), err, "config_default");
    cfg.dim = DIM;
    check(avg_index_open(dir, &cfg, &index, &err), err, "open");

    uint64_t *ids = malloc(N_IMAGES * sizeof *ids);
    float *vectors = malloc((size_t)N_IMAGES * DIM * sizeof *vectors);
    char (*keys)[32] = malloc(N_IMAGES * sizeof *keys);
    const char **key_ptrs = malloc(N_IMAGES * sizeof *key_ptrs);
    for (size_t i = 0; i < N_IMAGES; i++) {
        ids[i] = 1000 + i;
        fill(vectors + i * DIM, ids[i], 0);
        snprintf(keys[i], sizeof keys[i], "photos/%zu.jpg", i);
        key_ptrs[i] = keys[i];
    }
    check(avg_index_add_images(index, ids, key_ptrs, vectors, N_IMAGES, DIM, &err), err, "add_images");

    float caption_vectors[CAPTIONS * DIM];
    char texts[CAPTIONS][64];
    const char *text_ptrs[CAPTIONS];
    for (size_t i = 0; i < N_IMAGES; i++) {
        for (size_t c = 0; c < CAPTIONS; c++) {
            snprintf(texts[c], sizeof texts[c], "caption %zu of photo %llu", c, (unsigned long long)ids[i]);
            text_ptrs[c] = texts[c];
            fill(caption_vectors + c * DIM, ids[i], c + 1);
        }
        check(avg_index_add_captions(index, ids[i], text_ptrs, caption_vectors, CAPTIONS, DIM, &err), err,
              "add_captions");
    }

    /* A duplicate id is refused with a code and a message, and nothing goes in. */
    AvgStatus st = avg_index_add_images(index, ids, NULL, vectors, 1, DIM, &err);
    printf("duplicate add: status %d (%s): %s\n", (int)st,
           st == AVG_STATUS_DUPLICATE_ID ? "AVG_STATUS_DUPLICATE_ID" : "unexpected", avg_error_message(err));
    avg_error_free(err);
    err = NULL;

    check(avg_index_save(index, &err), err, "save");
    avg_index_free(index);
    free(ids); free(vectors); free(keys); free(key_ptrs);
}

static void read_index(const char *dir) {
    AvgError *err = NULL;
    AvgIndex *index = NULL;
    check(avg_index_open(dir, NULL, &index, &err), err, "reopen");
    size_t n_images = 0, n_captions = 0;
    check(avg_index_image_count(index, &n_images, &err), err, "image_count");
    check(avg_index_caption_count(index, &n_captions, &err), err, "caption_count");

    uint64_t *ids = malloc(n_images * sizeof *ids);
    check(avg_index_image_ids(index, ids, n_images, &n_images, &err), err, "image_ids");
    float got[DIM], want[DIM];
    char buf[128], expect[128];
    size_t len, mismatches = 0;
    for (size_t i = 0; i < n_images; i++) {
        uint64_t id = ids[i];
        check(avg_index_image_vector(index, id, got, DIM, &err), err, "image_vector");
        fill(want, id, 0);
        mismatches += memcmp(got, want, sizeof got) != 0;
        check(avg_index_image_key(index, id, buf, sizeof buf, &len, &err), err, "image_key");
        snprintf(expect, sizeof expect, "photos/%llu.jpg", (unsigned long long)(id - 1000));
        mismatches += strcmp(buf, expect) != 0;
        size_t nc = 0;
        check(avg_index_image_caption_count(index, id, &nc, &err), err, "image_caption_count");
        mismatches += nc != CAPTIONS;
        for (size_t c = 0; c < nc; c++) {
            bool has = false;
            check(avg_index_caption_text(index, id, c, buf, sizeof buf, &len, &err), err, "caption_text");
            snprintf(expect, sizeof expect, "caption %zu of photo %llu", c, (unsigned long long)id);
            mismatches += strcmp(buf, expect) != 0;
            check(avg_index_caption_vector(index, id, c, got, DIM, &has, &err), err, "caption_vector");
            fill(want, id, c + 1);
            mismatches += !has || memcmp(got, want, sizeof got) != 0;
        }
    }
    printf("reopened: %zu images, %zu captions, %zu mismatches\n", n_images, n_captions, mismatches);
    free(ids);
    avg_index_free(index);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s INDEX_DIR\n", argv[0]);
        return 2;
    }
    printf("libavg %s (ABI %u)\n", avg_version(), avg_abi_version());
    write_index(argv[1]);
    read_index(argv[1]);
    return 0;
}
