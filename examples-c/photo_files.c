/*
 * A photo app that hands libavg its photo files: the index's image encoder (a CLIP
 * checkpoint directory) decodes, preprocesses and embeds them. Each photo's file name
 * is attached as its text, which avg_train_generator learns as a query of that photo
 * (no captions needed). A file that cannot be read fails alone.
 *
 * usage: photo_files INDEX_DIR CLIP_DIR DIM PHOTO...
 */
#include <avg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "photos/red_car-2019.jpg" -> "red car 2019": the words a user may search for. */
static void name_words(const char *path, char *out, size_t cap) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strcspn(base, ".");
    if (n >= cap) n = cap - 1;
    for (size_t i = 0; i < n; i++) out[i] = (base[i] == '_' || base[i] == '-') ? ' ' : base[i];
    out[n] = '\0';
}

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
    avg_index_config_default(&cfg, sizeof cfg, NULL);
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
            char words[256];
            name_words(argv[4 + i], words, sizeof words);
            const char *texts[] = {words};
            st = avg_index_attach_texts(index, ids[i], texts, 1, &err);
            if (st != AVG_STATUS_OK) {
                fprintf(stderr, "attach: %s\n", avg_error_message(err));
                avg_error_free(err);
                return 1;
            }
            printf("photo %llu: added, text \"%s\"\n", (unsigned long long)ids[i], words);
        } else {
            printf("photo %llu: status %d: %s\n", (unsigned long long)ids[i], (int)statuses[i], avg_error_message(item_errors[i]));
            avg_error_free(item_errors[i]);
        }
    }
    printf("%zu of %zu photos added\n", added, n);
    free(ids);
    free(statuses);
    free(item_errors);
    avg_index_free(index);
    return 0;
}
