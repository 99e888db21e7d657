// Quickstart in C++: index photos by file with a CLIP checkpoint, give each its file
// name as its words, and search them.
// usage: quickstart_cpp INDEX_DIR CLIP_DIR QUERY PHOTO...
#include <avg.hpp>
#include <cstdio>
#include <filesystem>
#include <vector>

int main(int argc, char** argv) try {
    if (argc < 5) {
        std::fprintf(stderr, "usage: %s INDEX_DIR CLIP_DIR QUERY PHOTO...\n", argv[0]);
        return 2;
    }
    const std::filesystem::path index_dir = argv[1];
    const char* query = argv[3];
    const std::vector<std::filesystem::path> paths(argv + 4, argv + argc);

    // The default shape (N 1024, M 4) holds libraries of any size; dim 0 takes the
    // encoder's.
    avg::IndexConfig config;
    config.c.dim = 0;
    config.image_encoder_dir = argv[2];
    avg::Index index(index_dir, config);

    // Each photo's id is its position; one that cannot be read is reported, not fatal.
    std::vector<std::uint64_t> ids;
    for (std::uint64_t i = 0; i < paths.size(); ++i) ids.push_back(i);
    const auto results = index.add_image_files(ids, paths);
    std::size_t added = 0;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (results[i].status != AVG_STATUS_OK) {
            std::fprintf(stderr, "skipped: %s\n", results[i].message.c_str());
            continue;
        }
        // Its words: an app attaches a title, tags or an album name.
        index.attach_texts(ids[i], {paths[i].stem().string()});
        ++added;
    }
    index.save();
    std::printf("%zu photos added, %zu in the index\n", added, index.image_count());

    // The default mode picks the route: the dense scan for a library this size.
    for (const auto& hit : index.search(query)) std::printf("%.3f  %s\n", hit.score, paths[hit.id].c_str());
    return 0;
} catch (const avg::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
