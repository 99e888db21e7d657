// A photo add stopped by its progress callback returns every photo's result, in C++ too;
// the index's info reads back, and the same photo's copies are near-duplicates, found
// among int8 vectors.
// usage: stopped_photo_add INDEX_DIR CLIP_DIR PHOTO  (the photo is added 40 times)
#include <avg.hpp>
#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) try {
    if (argc != 4) return 2;
    avg::IndexConfig config;
    config.c.dim = 0;
    config.c.vector_storage = AVG_VECTOR_STORAGE_INT8;
    config.image_encoder_dir = std::string(argv[2]);  // a temporary: the config owns it
    avg::Index index(argv[1], config);
    std::vector<std::uint64_t> ids;
    std::vector<std::filesystem::path> paths;
    for (std::uint64_t i = 0; i < 40; ++i) {
        ids.push_back(i);
        paths.push_back(argv[3]);
    }
    const auto results = index.add_image_files(ids, paths, [](const AvgProgress&) { return false; });
    std::size_t ok = 0, cancelled = 0;
    for (const auto& r : results) {
        ok += r.status == AVG_STATUS_OK;
        cancelled += r.status == AVG_STATUS_CANCELLED;
    }
    std::printf("%zu results: %zu added, %zu cancelled, %zu in the index\n", results.size(), ok, cancelled, index.image_count());
    const AvgIndexInfo info = index.info();
    std::printf("info: dim %zu, %zu images, encoder %s at %s\n", info.dim, info.images, info.image_encoder_open ? "open" : "closed",
                index.image_encoder_dir().c_str());
    std::printf("vector bytes per image: %zu\n", info.vector_bytes / info.images);
    // The photo added 32 times: one group of 32 near-duplicates (the same vector).
    const auto groups = index.near_duplicates(0.99f);
    std::printf("near-duplicates: %zu group(s), the first of %zu\n", groups.size(), groups.empty() ? 0 : groups[0].size());
    return 0;
} catch (const avg::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
