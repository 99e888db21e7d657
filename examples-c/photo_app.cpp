// The whole job of a photo app in C++ with bindings/cpp/avg.hpp: open, add, train the
// tokenizer and the generator, search, print hits; and an error as an exception.
// Same synthetic photos as photo_app.c. usage: photo_app_cpp INDEX_DIR MODEL_DIR
#include <avg.hpp>

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace {
constexpr int kImages = 60, kTopics = 6, kDim = 16;
std::uint64_t state = 21;
float next() {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<float>((state >> 40) / static_cast<double>(1 << 24)) * 2.0f - 1.0f;
}
void normalize(float* v) {
    float n = 0;
    for (int i = 0; i < kDim; i++) n += v[i] * v[i];
    for (int i = 0; i < kDim; i++) v[i] /= std::sqrt(n);
}
std::string caption(int topic, int id, int variant) {
    char buf[64];
    if (variant == 0) std::snprintf(buf, sizeof buf, "a photo of t%da t%db item%d", topic, topic, id);
    else std::snprintf(buf, sizeof buf, "item%d seen with t%db", id, topic);
    return buf;
}
}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s INDEX_DIR MODEL_DIR\n", argv[0]);
        return 2;
    }
    try {
        if (avg::abi_version() != AVG_ABI_VERSION) throw std::runtime_error("libavg " + std::string(avg::version()) + " has another C ABI");
        int saves_heard = 0;  // the log, as a host would forward it to its own
        avg::set_log([&](AvgLogLevel, std::string_view message) { saves_heard += message.rfind("saved ", 0) == 0; });
        // The C++ configs own their strings; the numbers are the C struct's, in `c`.
        avg::IndexConfig config;
        config.c.dim = kDim;
        config.c.codebook_size = 32;
        config.c.voken_len = 3;
        const AvgIndexConfig& cfg = config.c;
        avg::Index index(argv[1], config);

        std::vector<std::vector<float>> centres(kTopics, std::vector<float>(kDim));
        for (auto& c : centres)
            for (auto& x : c) x = next();
        std::vector<std::uint64_t> ids(kImages);
        std::vector<float> vectors(kImages * kDim);
        for (int n = 0; n < kImages; n++) {
            ids[n] = n;
            for (int i = 0; i < kDim; i++) vectors[n * kDim + i] = centres[n % kTopics][i] + next() * 0.5f;
            normalize(&vectors[n * kDim]);
        }
        index.add_images(ids, vectors, kDim);
        for (int n = 0; n < kImages; n++) {
            std::vector<float> cv(2 * kDim);
            for (int k = 0; k < 2; k++) {
                for (int i = 0; i < kDim; i++) cv[k * kDim + i] = centres[n % kTopics][i] + next() * 0.1f;
                normalize(&cv[k * kDim]);
            }
            index.add_captions(n, {caption(n % kTopics, n, 0), caption(n % kTopics, n, 1)}, cv, kDim);
        }
        try {
            index.add_images({0}, std::vector<float>(kDim, 0.5f), kDim);
        } catch (const avg::Error& e) {
            std::printf("duplicate add throws: status %d: %s\n", static_cast<int>(e.code()), e.what());
        }
        // A keyed image, read back and removed.
        index.add_images({1000}, std::vector<float>(vectors.begin(), vectors.begin() + kDim), kDim, {"holiday/beach.jpg"});
        std::printf("image 1000: key %s, %zu images\n", index.image_key(1000).c_str(), index.image_ids().size());
        bool same_vector = index.image_vector(1000, kDim) == std::vector<float>(vectors.begin(), vectors.begin() + kDim);
        // Its captions read back: a long one (past the first buffer), without a vector.
        std::string long_caption(300, 'x');
        index.add_captions(1000, {long_caption}, {}, kDim);
        bool captions_back = index.caption_count() == 2 * kImages + 1 && index.image_caption_count(1000) == 1 &&
                             index.caption_text(1000, 0) == long_caption && !index.caption_vector(1000, 0, kDim) &&
                             index.caption_vector(0, 0, kDim)->size() == kDim && index.caption_text(0, 1) == caption(0, 0, 1);
        std::printf("captions read back: %s\n", captions_back ? "yes" : "NO");
        try {
            index.image_vokens(1000);
        } catch (const avg::Error& e) {
            std::printf("vokens before the tokenizer: %s\n", e.code() == AVG_STATUS_WRONG_STATE ? "wrong state" : e.what());
        }
        index.remove_image(1000);
        std::printf("read back %s, removed: %zu images\n", same_vector ? "bit for bit" : "CHANGED", index.image_count());

        AvgTokenizerTrainConfig tcfg = avg::default_tokenizer_config();
        tcfg.epochs = 10;
        tcfg.batch_size = 64;
        tcfg.hidden = 64;
        // An exception thrown by a progress callback stops the training and reaches the
        // caller as itself; the index keeps what it had.
        try {
            index.train_tokenizer(tcfg, [](const AvgProgress&) -> bool { throw std::runtime_error("stop here"); });
        } catch (const std::runtime_error& e) {
            std::printf("callback exception rethrown: %s (avg::Error: %s)\n", e.what(),
                        dynamic_cast<const avg::Error*>(&e) ? "yes" : "no");
        }
        index.train_tokenizer(tcfg);
        auto vokens = index.image_vokens(0);
        AvgTokenizerStats stats = index.tokenizer_stats();
        bool codes_ok = vokens.size() == cfg.voken_len + 1 && stats.voken_len == cfg.voken_len;
        for (std::size_t level = 0; level < cfg.voken_len; level++)
            codes_ok = codes_ok && vokens[level] < cfg.codebook_size && stats.usage_per_level[level] > 0;
        std::printf("vokens: %zu per image, codes %s, %zu images collided\n", vokens.size(), codes_ok ? "in range" : "OUT OF RANGE",
                    stats.collided_images);
        avg::GeneratorConfig gcfg;
        gcfg.model_dir = std::string(argv[2]);  // owned: a temporary is safe
        gcfg.c.epochs = 80;
        gcfg.c.batch_size = 32;
        gcfg.c.learning_rate = 3e-3;
        gcfg.c.decoder_layers = 1;
        gcfg.c.decoder_d_model = 64;
        gcfg.c.beam_size = 4;
        std::size_t epochs = 0;
        index.train_generator(gcfg, [&](const AvgProgress& p) {
            if (p.step + 1 == p.steps_per_epoch) epochs++;
            return true;
        });
        std::printf("generator trained for %zu epochs%s\n", epochs, index.has_pending_tokenizer() ? ", tokenizer PENDING" : "");
        avg::set_log({});
        std::printf("log: %d saves heard\n", saves_heard);

        AvgSearchOptions opts = avg::default_search_options();
        opts.k = 3;
        opts.beam_size = 10;
        int right = 0;
        for (int n = 0; n < kImages; n++) {
            auto hits = index.search(caption(n % kTopics, n, 0), opts);
            right += !hits.empty() && hits[0].id == static_cast<std::uint64_t>(n);
        }
        std::printf("top-1: %d/%d\n", right, kImages);

        // The same queries in one batch find the same first hits.
        std::vector<std::string> queries;
        for (int n = 0; n < kImages; n++) queries.push_back(caption(n % kTopics, n, 0));
        int batch_right = 0;
        auto batch = index.search_batch(queries, opts);
        for (int n = 0; n < kImages; n++) batch_right += !batch[n].empty() && batch[n][0].id == static_cast<std::uint64_t>(n);
        std::printf("top-1 in one batch: %d/%d\n", batch_right, kImages);

        // Each search on the calling thread alone answers the same.
        avg::set_threads(1);
        int same = 0;
        for (int n = 0; n < kImages; n++) {
            auto a = index.search(caption(n % kTopics, n, 0), opts);
            same += !a.empty() && a[0].id == static_cast<std::uint64_t>(n);
        }
        avg::set_threads(0);
        std::printf("top-1 with one search thread: %d/%d\n", same, kImages);

        // More like image 7: the nearest others by its own vector, itself left out.
        AvgSearchOptions like = avg::default_search_options();
        like.mode = AVG_SEARCH_MODE_DENSE;
        like.k = 5;
        auto similar = index.search_by_image(7, like);
        bool itself = false;
        for (const auto& h : similar) itself = itself || h.id == 7;
        std::printf("more like image 7: %zu hits, itself %s\n", similar.size(), itself ? "included" : "left out");
    } catch (const avg::Error& e) {
        std::fprintf(stderr, "libavg error %d: %s\n", static_cast<int>(e.code()), e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    return 0;
}
