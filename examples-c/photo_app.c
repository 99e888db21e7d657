/*
 * The whole job of a photo app: open an index, add photos (vectors) with captions,
 * train the tokenizer, train the generator, search, print hits.
 *
 * The photos here are synthetic: 60 vectors of dimension 16 in 6 topics, each with two
 * captions whose words name its topic and the photo itself. MODEL_DIR is a BERT-family
 * checkpoint whose vocabulary has those words (the tests write a tiny one).
 *
 * usage: photo_app INDEX_DIR MODEL_DIR [GENERATOR_EPOCHS (default 80)]
 */
#include <avg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define N_IMAGES 60
#define TOPICS 6
#define DIM 16

static uint64_t state = 21;
static float next(void) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((state >> 40) / (double)(1 << 24)) * 2.0f - 1.0f;
}

static void normalize(float *v) {
    float n = 0;
    for (int i = 0; i < DIM; i++) n += v[i] * v[i];
    n = sqrtf(n);
    for (int i = 0; i < DIM; i++) v[i] /= n;
}

static void caption(char *buf, size_t cap, int topic, int id, int variant) {
    if (variant == 0) snprintf(buf, cap, "a photo of t%da t%db item%d", topic, topic, id);
    else snprintf(buf, cap, "item%d seen with t%db", id, topic);
}

static void check(AvgStatus st, AvgError *err, const char *what) {
    if (st == AVG_STATUS_OK) return;
    fprintf(stderr, "%s failed (%d): %s\n", what, (int)st, avg_error_message(err));
    avg_error_free(err);
    exit(1);
}

struct progress_state { const char *name; size_t last_epoch; };

static bool on_progress(void *user_data, const AvgProgress *p) {
    struct progress_state *s = user_data;
    if (p->step + 1 == p->steps_per_epoch && ((p->epoch + 1) % 10 == 0 || p->epoch + 1 == p->epochs))
        printf("%s epoch %zu/%zu loss %.4f\n", s->name, p->epoch + 1, p->epochs, p->loss);
    s->last_epoch = p->epoch;
    return true;
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s INDEX_DIR MODEL_DIR [GENERATOR_EPOCHS]\n", argv[0]);
        return 2;
    }
    AvgError *err = NULL;
    AvgIndex *index = NULL;
    AvgIndexConfig cfg;
    check(avg_index_config_default(&cfg, sizeof cfg, &err), err, "config");
    cfg.dim = DIM;
    cfg.codebook_size = 32;
    cfg.voken_len = 3;
    check(avg_index_open(argv[1], &cfg, &index, &err), err, "open");

    float centres[TOPICS][DIM], vectors[N_IMAGES * DIM], caption_vectors[2 * DIM];
    uint64_t ids[N_IMAGES];
    for (int t = 0; t < TOPICS; t++)
        for (int i = 0; i < DIM; i++) centres[t][i] = next();
    for (int n = 0; n < N_IMAGES; n++) {
        ids[n] = (uint64_t)n;
        for (int i = 0; i < DIM; i++) vectors[n * DIM + i] = centres[n % TOPICS][i] + next() * 0.5f;
        normalize(vectors + n * DIM);
    }
    check(avg_index_add_images(index, ids, NULL, vectors, N_IMAGES, DIM, &err), err, "add_images");
    for (int n = 0; n < N_IMAGES; n++) {
        char texts[2][64];
        const char *ptrs[2] = {texts[0], texts[1]};
        for (int k = 0; k < 2; k++) {
            caption(texts[k], sizeof texts[k], n % TOPICS, n, k);
            for (int i = 0; i < DIM; i++) caption_vectors[k * DIM + i] = centres[n % TOPICS][i] + next() * 0.1f;
            normalize(caption_vectors + k * DIM);
        }
        check(avg_index_add_captions(index, ids[n], ptrs, caption_vectors, 2, DIM, &err), err, "add_captions");
    }

    AvgTokenizerTrainConfig tcfg;
    check(avg_tokenizer_train_config_default(&tcfg, sizeof tcfg, &err), err, "tokenizer config");
    tcfg.epochs = 10;
    tcfg.batch_size = 64;
    tcfg.hidden = 64;
    struct progress_state ps = {"tokenizer", 0};
    check(avg_train_tokenizer(index, &tcfg, on_progress, &ps, &err), err, "train_tokenizer");
    AvgTokenizerStats stats;
    check(avg_index_tokenizer_stats(index, &stats, sizeof stats, &err), err, "tokenizer_stats");
    printf("tokenizer: level-1 usage %.2f, %zu images share their codes\n", stats.usage_per_level[0], stats.collided_images);

    AvgGeneratorTrainConfig gcfg;
    check(avg_generator_train_config_default(&gcfg, sizeof gcfg, &err), err, "generator config");
    gcfg.model_dir = argv[2];
    gcfg.epochs = argc == 4 ? (size_t)atoi(argv[3]) : 80;
    gcfg.batch_size = 32;
    gcfg.learning_rate = 3e-3;
    gcfg.decoder_layers = 1;
    gcfg.decoder_d_model = 64;
    gcfg.beam_size = 4;
    ps.name = "generator";
    check(avg_train_generator(index, &gcfg, on_progress, &ps, &err), err, "train_generator");

    AvgSearchOptions opts;
    check(avg_search_options_default(&opts, sizeof opts, &err), err, "search options");
    opts.k = 3;
    opts.beam_size = 10;
    int right = 0;
    for (int n = 0; n < N_IMAGES; n++) {
        char q[64];
        AvgHit hits[3];
        size_t found = 0;
        caption(q, sizeof q, n % TOPICS, n, 0);
        check(avg_search(index, q, &opts, hits, 3, &found, &err), err, "search");
        right += found > 0 && hits[0].id == (uint64_t)n;
        if (n < 3) {
            printf("query \"%s\":", q);
            for (size_t h = 0; h < found; h++) printf(" %llu (%.3f)", (unsigned long long)hits[h].id, hits[h].score);
            printf("\n");
        }
    }
    printf("top-1: %d/%d\n", right, N_IMAGES);

    /* The photos found by their own vectors: under the tokenizer's codes for the vector
       (no generator needed), and by the exact dense scan (no training needed). */
    const uint64_t modes[2] = {AVG_SEARCH_MODE_QUANTIZER, AVG_SEARCH_MODE_DENSE};
    const char *names[2] = {"quantiser's codes", "dense scan"};
    opts.dim = DIM;
    for (int c = 0; c < 2; c++) {
        opts.mode = modes[c];
        int own = 0;
        for (int n = 0; n < N_IMAGES; n++) {
            AvgHit hits[3];
            size_t found = 0;
            opts.query_vectors = vectors + n * DIM;
            check(avg_search(index, "", &opts, hits, 3, &found, &err), err, names[c]);
            own += found > 0 && hits[0].id == (uint64_t)n;
        }
        printf("found by their own vectors, %s: %d/%d\n", names[c], own, N_IMAGES);
    }
    avg_index_free(index);
    return 0;
}
