/* Hello, libavg: no model at all. Open an index, add 1,000 vectors, and search with a
 * query vector near image 123's: the default mode (AVG_SEARCH_MODE_AUTO) answers with
 * the exact dense scan. Your vectors would come from an image encoder such as CLIP.
 * usage: hello INDEX_DIR */
#include <avg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define DIM 64
#define COUNT 1000

/* Prints a failed call's error and exits. */
static void check(AvgStatus status, AvgError *err, const char *what) {
    if (status == AVG_STATUS_OK) return;
    fprintf(stderr, "%s: %s (%s)\n", what, avg_error_message(err), avg_status_string(status));
    avg_error_free(err);
    exit(1);
}

/* A made-up number in [-0.5, 0.5): xorshift keeps the example alone. */
static float random_float(void) {
    static uint64_t state = 0x2545f4914f6cdd1dULL;
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (float)(state >> 40) / (float)(1 << 24) - 0.5f;
}

static void to_unit(float *v) {
    float norm = 0;
    for (int i = 0; i < DIM; i++) norm += v[i] * v[i];
    norm = sqrtf(norm);
    for (int i = 0; i < DIM; i++) v[i] /= norm;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: hello INDEX_DIR\n");
        return 2;
    }
    AvgError *err = NULL;
    AvgIndexConfig config;
    check(avg_index_config_default(&config, sizeof config, &err), err, "config");
    config.dim = DIM;
    AvgIndex *index = NULL;
    check(avg_index_open(argv[1], &config, &index, &err), err, "open");

    static float vectors[COUNT * DIM];
    uint64_t ids[COUNT];
    for (int n = 0; n < COUNT; n++) {
        ids[n] = (uint64_t)n;
        for (int i = 0; i < DIM; i++) vectors[n * DIM + i] = random_float();
        to_unit(vectors + n * DIM);
    }
    check(avg_index_add_images(index, ids, NULL, vectors, COUNT, DIM, &err), err, "add");
    check(avg_index_save(index, &err), err, "save");

    /* A query near image 123: its vector plus a little noise. */
    float query[DIM];
    for (int i = 0; i < DIM; i++) query[i] = vectors[123 * DIM + i] + 0.05f * random_float();
    to_unit(query);
    AvgSearchOptions options;
    check(avg_search_options_default(&options, sizeof options, &err), err, "options");
    options.query_vectors = query;
    options.dim = DIM;
    AvgHit hits[10];
    size_t found = 0;
    check(avg_search(index, "", &options, hits, 10, &found, &err), err, "search");
    for (size_t h = 0; h < 3 && h < found; h++) printf("image %llu score %.3f\n", (unsigned long long)hits[h].id, hits[h].score);
    avg_index_free(index);
    if (found == 0 || hits[0].id != 123) {
        fprintf(stderr, "the nearest image did not come first\n");
        return 1;
    }
    printf("found image 123 first\n");
    return 0;
}
