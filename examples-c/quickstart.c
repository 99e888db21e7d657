/* Quickstart: index photos by file with a CLIP checkpoint, give each its file name as
 * its words, and search them.
 * usage: quickstart INDEX_DIR CLIP_DIR QUERY PHOTO... */
#include <avg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prints a failed call's message, frees the error, and returns the exit status. */
static int fail(AvgError *err) {
    fprintf(stderr, "%s\n", avg_error_message(err));
    avg_error_free(err);
    return 1;
}

/* The file name without folder and extension: "photos/beach.jpg" gives "beach". */
static void file_stem(const char *path, char *out, size_t cap) {
    const char *name = strrchr(path, '/');
    name = name ? name + 1 : path;
    snprintf(out, cap, "%s", name);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = '\0';
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s INDEX_DIR CLIP_DIR QUERY PHOTO...\n", argv[0]);
        return 2;
    }
    const char *index_dir = argv[1];
    const char *query = argv[3];
    const char *const *paths = (const char *const *)argv + 4;
    size_t count = (size_t)(argc - 4);
    AvgError *err = NULL;

    /* The default shape (N 1024, M 4) holds libraries of any size; dim 0 takes the
     * encoder's. */
    AvgIndexConfig config;
    avg_index_config_default(&config, sizeof config, NULL);
    config.dim = 0;
    config.image_encoder_dir = argv[2];
    AvgIndex *index = NULL;
    if (avg_index_open(index_dir, &config, &index, &err) != AVG_STATUS_OK) return fail(err);

    /* A status and an error per photo: one that cannot be read is reported, not fatal.
     * Each photo's path is its key and its id its position. */
    uint64_t *ids = malloc(count * sizeof *ids);
    AvgStatus *statuses = malloc(count * sizeof *statuses);
    AvgError **item_errors = malloc(count * sizeof *item_errors);
    if (!ids || !statuses || !item_errors) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < count; i++) ids[i] = i;
    AvgPhotoBatch batch = {0};
    batch.struct_size = sizeof batch;
    batch.count = count;
    batch.ids = ids;
    batch.keys = paths;
    batch.paths = paths;
    batch.statuses = statuses;
    batch.item_errors = item_errors;
    if (avg_index_add_photos(index, &batch, &err) != AVG_STATUS_OK) return fail(err);
    for (size_t i = 0; i < count; i++) {
        if (statuses[i] != AVG_STATUS_OK) {
            fprintf(stderr, "skipped: %s\n", avg_error_message(item_errors[i]));
            avg_error_free(item_errors[i]);
            continue;
        }
        /* Its words: an app attaches a title, tags or an album name. */
        char stem[256];
        file_stem(paths[i], stem, sizeof stem);
        const char *texts[1] = {stem};
        if (avg_index_attach_texts(index, ids[i], texts, 1, &err) != AVG_STATUS_OK) return fail(err);
    }
    if (avg_index_save(index, &err) != AVG_STATUS_OK) return fail(err);
    size_t total = 0;
    if (avg_index_image_count(index, &total, &err) != AVG_STATUS_OK) return fail(err);
    printf("%zu photos added, %zu in the index\n", batch.added, total);

    /* The default mode picks the route: the dense scan for a library this size. */
    AvgSearchOptions options;
    avg_search_options_default(&options, sizeof options, NULL);
    AvgHit hits[10];
    size_t found = 0;
    if (avg_search(index, query, &options, hits, 10, &found, &err) != AVG_STATUS_OK) return fail(err);
    for (size_t i = 0; i < found; i++) printf("%.3f  %s\n", hits[i].score, paths[hits[i].id]);

    free(ids);
    free(statuses);
    free(item_errors);
    avg_index_free(index);
    return 0;
}
