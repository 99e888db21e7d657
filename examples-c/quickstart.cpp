// Quickstart in C++: index photos by file, learn them by their file names, search.
// usage: quickstart_cpp INDEX_DIR CLIP_DIR DIM TEXT_MODEL_DIR PHOTO...
#include <avg.hpp>
#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) try {
    if (argc < 6) return std::fprintf(stderr, "usage: quickstart_cpp INDEX_DIR CLIP_DIR DIM TEXT_MODEL_DIR PHOTO...\n"), 2;
    AvgIndexConfig cfg = avg::default_index_config();
    cfg.image_encoder_dir = argv[2]; cfg.dim = std::stoul(argv[3]); cfg.codebook_size = 16; cfg.voken_len = 2;
    avg::Index index(argv[1], &cfg);
    std::vector<std::string> paths(argv + 5, argv + argc);
    std::vector<std::uint64_t> ids;
    for (std::uint64_t i = 0; i < paths.size(); ++i) ids.push_back(i);
    auto results = index.add_image_files(ids, paths);
    for (std::size_t i = 0; i < ids.size(); ++i)  // its path as its text (an app: title, tags)
        if (results[i].status == AVG_STATUS_OK) index.attach_texts(ids[i], {paths[i]});
    AvgTokenizerTrainConfig t = avg::default_tokenizer_config(); t.epochs = 5;
    index.train_tokenizer(t);
    AvgGeneratorTrainConfig g = avg::default_generator_config(); g.model_dir = argv[4]; g.epochs = 20;
    index.train_generator(g);
    AvgSearchOptions o = avg::default_search_options(); o.mode = AVG_SEARCH_MODE_FUSED;  // query vector from CLIP
    for (const auto& hit : index.search("rotated", o)) std::printf("%.3f  %s\n", hit.score, paths[hit.id].c_str());
    return 0;
} catch (const avg::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
