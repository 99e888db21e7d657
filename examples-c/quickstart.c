/* Quickstart: index photos by file, learn them by their file names, search.
 * usage: quickstart INDEX_DIR CLIP_DIR DIM TEXT_MODEL_DIR PHOTO... */
#include <avg.h>
#include <stdio.h>
#include <stdlib.h>
/* Each call gets the error object `e`; on failure print its message and stop. */
#define CHECK(call) do { AvgError *e = NULL; if ((call) != AVG_STATUS_OK) { fprintf(stderr, "%s\n", avg_error_message(e)); avg_error_free(e); return 1; } } while (0)

int main(int argc, char **argv) {
    if (argc < 6 || argc > 5 + 64) return fprintf(stderr, "usage: quickstart INDEX_DIR CLIP_DIR DIM TEXT_MODEL_DIR PHOTO... (at most 64)\n"), 2;
    AvgIndexConfig cfg; AvgTokenizerTrainConfig t; AvgGeneratorTrainConfig g; AvgSearchOptions o;
    AvgIndex *index = NULL; AvgHit hits[10]; size_t n = 0, count = (size_t)(argc - 5), added = 0;
    CHECK(avg_index_config_default(&cfg, sizeof cfg, &e));
    cfg.image_encoder_dir = argv[2]; cfg.dim = strtoul(argv[3], NULL, 10); cfg.codebook_size = 16; cfg.voken_len = 2;
    CHECK(avg_index_open(argv[1], &cfg, &index, &e));
    uint64_t ids[64]; AvgStatus statuses[64];
    for (size_t i = 0; i < count; i++) ids[i] = i;
    CHECK(avg_index_add_image_files(index, ids, NULL, (const char *const *)argv + 5, count, statuses, NULL, &added, NULL, NULL, &e));
    for (size_t i = 0; i < count; i++)  /* its path as its text (an app: title, tags) */
        if (statuses[i] == AVG_STATUS_OK) CHECK(avg_index_attach_texts(index, ids[i], (const char *const *)argv + 5 + i, 1, &e));
    CHECK(avg_tokenizer_train_config_default(&t, sizeof t, &e)); t.epochs = 5;
    CHECK(avg_train_tokenizer(index, &t, NULL, NULL, &e));
    CHECK(avg_generator_train_config_default(&g, sizeof g, &e)); g.model_dir = argv[4]; g.epochs = 20;
    CHECK(avg_train_generator(index, &g, NULL, NULL, &e));
    CHECK(avg_search_options_default(&o, sizeof o, &e)); o.mode = AVG_SEARCH_MODE_FUSED;  /* query vector from CLIP */
    CHECK(avg_search(index, "rotated", &o, hits, 10, &n, &e));
    for (size_t i = 0; i < n; i++) printf("%.3f  %s\n", hits[i].score, argv[5 + hits[i].id]);
    avg_index_free(index);
}
