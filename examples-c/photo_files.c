/*
 * A photo app that hands libavg its photo files: the index's image encoder (a CLIP
 * checkpoint directory) decodes, preprocesses and embeds them, and turns typed
 * captions into text vectors. A file that cannot be read fails alone.
 *
 * usage: photo_files INDEX_DIR CLIP_DIR DIM PHOTO...
 */
#include <avg.h>
#include <stdio.h>
#include <stdlib.h>

static bool report(void *user_data, const AvgProgress *p) {
    (void)user_data;
    if (p->stage == AVG_STAGE_IMAGES)
        printf("batch %zu/%zu, %.1f photos/s\n", p->step + 1, p->steps_per_epoch, p->samples_per_second);
    return true;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: photo_files INDEX_DIR CLIP_DIR DIM PHOTO...\n");
        return 2;
    }
    size_t n = (size_t)(argc - 4);
    AvgIndexConfig cfg;
    AvgError *err = NULL;
    AvgIndex *index = NULL;
    avg_index_config_default(&cfg, NULL);
    cfg.dim = (size_t)strtoul(argv[3], NULL, 10);
    cfg.codebook_size = 16;
    cfg.image_encoder_dir = argv[2];
    if (avg_index_open(argv[1], &cfg, &index, &err) != AVG_STATUS_OK) {
        fprintf(stderr, "open: %s\n", avg_error_message(err));
        avg_error_free(err);
        return 1;
    }
    uint64_t *ids = malloc(n * sizeof *ids);
    AvgStatus *statuses = malloc(n * sizeof *statuses);
    AvgError **item_errors = malloc(n * sizeof *item_errors);
    for (size_t i = 0; i < n; i++) ids[i] = i + 1;
    size_t added = 0;
    AvgStatus st = avg_index_add_image_files(index, ids, NULL, (const char *const *)(argv + 4), n, statuses, item_errors,
                                             &added, report, NULL, &err);
    if (st != AVG_STATUS_OK) {
        fprintf(stderr, "add: %s\n", avg_error_message(err));
        avg_error_free(err);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        if (statuses[i] == AVG_STATUS_OK) {
            const char *caption[] = {"a photo on the street"};
            /* No vector: the encoder's text tower computes it. */
            st = avg_index_add_captions(index, ids[i], caption, NULL, 1, 0, &err);
            if (st != AVG_STATUS_OK) {
                fprintf(stderr, "caption: %s\n", avg_error_message(err));
                avg_error_free(err);
                return 1;
            }
            printf("photo %llu: added\n", (unsigned long long)ids[i]);
        } else {
            printf("photo %llu: status %d: %s\n", (unsigned long long)ids[i], (int)statuses[i], avg_error_message(item_errors[i]));
            avg_error_free(item_errors[i]);
        }
    }
    float *vector = malloc(cfg.dim * sizeof *vector);
    bool has_vector = false;
    if (added > 0 && avg_index_caption_vector(index, ids[0], 0, vector, cfg.dim, &has_vector, NULL) == AVG_STATUS_OK)
        printf("caption of photo 1 has a text vector: %s\n", has_vector ? "yes" : "no");
    printf("%zu of %zu photos added\n", added, n);
    free(vector);
    free(ids);
    free(statuses);
    free(item_errors);
    avg_index_free(index);
    return 0;
}
