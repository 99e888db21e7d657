// Hello, libavg: no model at all. Open an index, add 1,000 vectors, and search with a
// query vector near image 123's: the default mode (AVG_SEARCH_MODE_AUTO) answers with
// the exact dense scan. Your vectors would come from an image encoder such as CLIP.
// usage: hello_cpp INDEX_DIR
#include <avg.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: hello_cpp INDEX_DIR\n");
        return 2;
    }
    constexpr std::size_t dim = 64, count = 1000;
    try {
        AvgIndexConfig config = avg::default_index_config();
        config.dim = dim;
        avg::Index index(argv[1], &config);

        std::mt19937 rng(7);
        std::uniform_real_distribution<float> random(-0.5f, 0.5f);
        auto to_unit = [](float* v) {
            float norm = 0;
            for (std::size_t i = 0; i < dim; ++i) norm += v[i] * v[i];
            for (std::size_t i = 0; i < dim; ++i) v[i] /= std::sqrt(norm);
        };
        std::vector<float> vectors(count * dim);
        std::vector<std::uint64_t> ids(count);
        for (std::size_t n = 0; n < count; ++n) {
            ids[n] = n;
            for (std::size_t i = 0; i < dim; ++i) vectors[n * dim + i] = random(rng);
            to_unit(&vectors[n * dim]);
        }
        index.add_images(ids, vectors, dim);
        index.save();

        // A query near image 123: its vector plus a little noise.
        std::vector<float> query(vectors.begin() + 123 * dim, vectors.begin() + 124 * dim);
        for (auto& x : query) x += 0.05f * random(rng);
        to_unit(query.data());
        AvgSearchOptions options = avg::default_search_options();
        options.query_vectors = query.data();
        options.dim = dim;
        auto hits = index.search("", options);
        for (std::size_t h = 0; h < 3 && h < hits.size(); ++h) {
            std::printf("image %llu score %.3f\n", static_cast<unsigned long long>(hits[h].id), hits[h].score);
        }
        if (hits.empty() || hits[0].id != 123) {
            std::fprintf(stderr, "the nearest image did not come first\n");
            return 1;
        }
        std::printf("found image 123 first\n");
    } catch (const avg::Error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    return 0;
}
