// libavg for C++17: a header-only wrapper over include/avg.h.
//
// Errors are exceptions: every failed call throws avg::Error, which carries libavg's
// status code and message. avg::Index owns its handle (RAII, move-only) and may be
// shared by reference between threads, as the C handle may.
#pragma once

#include <avg.h>

#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace avg {

// Called after every step of a training or batch of photos; returning false stops it.
using Progress = std::function<bool(const AvgProgress&)>;

class Error : public std::runtime_error {
public:
    Error(AvgStatus code, const std::string& message) : std::runtime_error(message), code_(code) {}
    AvgStatus code() const noexcept { return code_; }

private:
    AvgStatus code_;
};

namespace detail {
inline void check(AvgStatus status, AvgError* err) {
    if (status == AVG_STATUS_OK) return;
    std::string message = avg_error_message(err);
    avg_error_free(err);
    throw Error(status, message);
}

// Calls f(err) and throws on failure.
template <typename F>
void call(F&& f) {
    AvgError* err = nullptr;
    AvgStatus status = f(&err);  // before reading err: argument order is unspecified
    check(status, err);
}

// What a progress callback's C user_data points at: the callback and, once it has thrown,
// its exception, rethrown to the caller when the library call returns.
struct ProgressState {
    avg::Progress* fn;
    std::exception_ptr thrown;
};

inline bool progress_trampoline(void* user_data, const AvgProgress* p) {
    auto* state = static_cast<ProgressState*>(user_data);
    try {
        return (*state->fn)(*p);
    } catch (...) {
        state->thrown = std::current_exception();
        return false;  // an exception must not cross into the library: stop, rethrow after
    }
}
}  // namespace detail

using Hit = AvgHit;

namespace detail {
// A struct filled with its defaults by one of the C ABI's *_default functions.
template <typename T>
T defaults(AvgStatus (*fill)(T*, size_t, AvgError**)) {
    T value;
    call([&](AvgError** e) { return fill(&value, sizeof value, e); });
    return value;
}
}  // namespace detail

inline AvgIndexConfig default_index_config() { return detail::defaults(avg_index_config_default); }
inline AvgTokenizerTrainConfig default_tokenizer_config() { return detail::defaults(avg_tokenizer_train_config_default); }
inline AvgGeneratorTrainConfig default_generator_config() { return detail::defaults(avg_generator_train_config_default); }
inline AvgSearchOptions default_search_options() { return detail::defaults(avg_search_options_default); }

// An index config that owns its strings: the numbers in `c` (avg.h documents each
// field; `c.dim` 0 takes the image encoder's), the strings here (`c`'s are ignored).
struct IndexConfig {
    AvgIndexConfig c = default_index_config();
    std::string device = "cpu";
    std::filesystem::path image_encoder_dir;  // empty: none

    // The C struct, pointing into this object: valid while it lives unchanged.
    const AvgIndexConfig* get() {
        c.device = device.c_str();
        c.image_encoder_dir = image_encoder_dir.empty() ? nullptr : image_encoder_dir.c_str();
        return &c;
    }
};

// A generator training config that owns its model directory; the rest in `c`.
struct GeneratorConfig {
    AvgGeneratorTrainConfig c = default_generator_config();
    std::filesystem::path model_dir;

    const AvgGeneratorTrainConfig* get() {
        c.model_dir = model_dir.c_str();
        return &c;
    }
};

// The library linked at run time: its version ("0.1.0") and the C ABI it implements,
// to compare with AVG_ABI_VERSION from the header this code was compiled against.
inline std::string_view version() { return avg_version(); }
inline std::uint32_t abi_version() { return avg_abi_version(); }

// Process-wide settings (avg_set_threads, avg_set_heap_tuning in avg.h).
inline void set_threads(size_t threads) { avg_set_threads(threads); }
inline void set_heap_tuning(bool enabled) { avg_set_heap_tuning(enabled); }

using LogFn = std::function<void(AvgLogLevel, std::string_view)>;

namespace detail {
inline LogFn& log_fn() {
    static LogFn fn;
    return fn;
}
inline void log_trampoline(void*, AvgLogLevel level, const char* message) {
    try {
        log_fn()(level, message);
    } catch (...) {
        // An exception must not cross into the library; a log line is not worth more.
    }
}
}  // namespace detail

// Sends libavg's log messages of min_level and above to fn (empty: off), on whichever
// thread did the work (avg_set_log_callback). Process-wide; fn must not call set_log.
inline void set_log(LogFn fn, AvgLogLevel min_level = AVG_LOG_LEVEL_INFO) {
    avg_set_log_callback(nullptr, min_level, nullptr);  // returns once no message is in flight
    detail::log_fn() = std::move(fn);
    if (detail::log_fn()) avg_set_log_callback(detail::log_trampoline, min_level, nullptr);
}

class Index {
public:
    // Opens (or, with a config, creates) the index in directory `path`. Without a
    // config it opens as stored, with the image encoder it recorded.
    explicit Index(const std::filesystem::path& path, const AvgIndexConfig* config = nullptr) {
        detail::call([&](AvgError** e) { return avg_index_open(path.c_str(), config, &handle_, e); });
    }
    Index(const std::filesystem::path& path, IndexConfig config) : Index(path, config.get()) {}

    // Opens an existing index for searching and reading only, under a shared lock.
    static Index open_read_only(const std::filesystem::path& path, const AvgIndexConfig* config = nullptr) {
        Index index;
        detail::call([&](AvgError** e) { return avg_index_open_read_only(path.c_str(), config, &index.handle_, e); });
        return index;
    }
    static Index open_read_only(const std::filesystem::path& path, IndexConfig config) {
        return open_read_only(path, config.get());
    }
    Index(const Index&) = delete;
    Index& operator=(const Index&) = delete;
    Index(Index&& other) noexcept : handle_(other.handle_) { other.handle_ = nullptr; }
    Index& operator=(Index&& other) noexcept {
        if (this != &other) {
            avg_index_free(handle_);
            handle_ = other.handle_;
            other.handle_ = nullptr;
        }
        return *this;
    }
    ~Index() { avg_index_free(handle_); }

    // Images with their vectors (ids.size() * dim floats) and, when `keys` is not
    // empty, an external key each. All or none.
    void add_images(const std::vector<std::uint64_t>& ids, const std::vector<float>& vectors, std::size_t dim,
                    const std::vector<std::string>& keys = {}) {
        if (vectors.size() != ids.size() * dim) throw Error(AVG_STATUS_DIMENSION_MISMATCH, "vectors.size() != ids.size() * dim");
        if (!keys.empty() && keys.size() != ids.size()) throw Error(AVG_STATUS_INVALID_ARGUMENT, "keys.size() != ids.size()");
        std::vector<const char*> key_ptrs;
        for (const auto& k : keys) key_ptrs.push_back(k.c_str());
        detail::call([&](AvgError** e) {
            return avg_index_add_images(handle_, ids.data(), keys.empty() ? nullptr : key_ptrs.data(), vectors.data(), ids.size(), dim, e);
        });
    }

    void remove_image(std::uint64_t id) {
        detail::call([&](AvgError** e) { return avg_index_remove_image(handle_, id, e); });
    }

    // Captions as text, with their text vectors (texts.size() * dim floats) or none.
    void add_captions(std::uint64_t id, const std::vector<std::string>& texts, const std::vector<float>& vectors, std::size_t dim) {
        std::vector<const char*> ptrs;
        for (const auto& t : texts) ptrs.push_back(t.c_str());
        detail::call([&](AvgError** e) {
            return avg_index_add_captions(handle_, id, ptrs.data(), vectors.empty() ? nullptr : vectors.data(), ptrs.size(), dim, e);
        });
    }

    // Texts that describe image id (tags, album or file name, its own caption), learned
    // by the generator as pseudo-queries of it: photos without captions become findable.
    void attach_texts(std::uint64_t id, const std::vector<std::string>& texts) {
        std::vector<const char*> ptrs;
        for (const auto& t : texts) ptrs.push_back(t.c_str());
        detail::call([&](AvgError** e) { return avg_index_attach_texts(handle_, id, ptrs.data(), ptrs.size(), e); });
    }

    // The outcome of one photo of add_image_files: AVG_STATUS_OK, or its status and message.
    struct PhotoResult {
        AvgStatus status;
        std::string message;
    };

    // Photos from files (JPEG, PNG, WebP), embedded by the index's image encoder
    // (IndexConfig::image_encoder_dir). Each photo succeeds or fails alone; the call
    // throws only when it fails as a whole (no encoder, bad arguments, an exception
    // thrown by `progress`). `progress` is called after every batch of 32; when it
    // returns false, the photos not reached get AVG_STATUS_CANCELLED and the results
    // of those added are returned all the same.
    std::vector<PhotoResult> add_image_files(const std::vector<std::uint64_t>& ids,
                                             const std::vector<std::filesystem::path>& paths, Progress progress = {}) {
        if (ids.size() != paths.size()) throw Error(AVG_STATUS_INVALID_ARGUMENT, "ids.size() != paths.size()");
        std::vector<const char*> ptrs;
        for (const auto& p : paths) ptrs.push_back(p.c_str());
        AvgPhotoBatch batch{};
        batch.paths = ptrs.data();
        return add_photos(ids, batch, progress);
    }

    // Photos from encoded bytes, as add_image_files does from files.
    std::vector<PhotoResult> add_image_bytes(const std::vector<std::uint64_t>& ids, const std::vector<std::vector<std::uint8_t>>& photos,
                                             Progress progress = {}) {
        if (ids.size() != photos.size()) throw Error(AVG_STATUS_INVALID_ARGUMENT, "ids.size() != photos.size()");
        std::vector<const std::uint8_t*> data;
        std::vector<std::size_t> lens;
        for (const auto& p : photos) {
            data.push_back(p.data());
            lens.push_back(p.size());
        }
        AvgPhotoBatch batch{};
        batch.data = data.data();
        batch.lens = lens.data();
        return add_photos(ids, batch, progress);
    }

    void save() {
        detail::call([&](AvgError** e) { return avg_index_save(handle_, e); });
    }

    // Groups of near-duplicate images, ids ascending: images linked by pairs whose
    // vectors have a dot product of at least min_similarity, found by hashing (a pair at
    // the threshold with probability 0.99), not by comparing every pair.
    std::vector<std::vector<std::uint64_t>> near_duplicates(float min_similarity) const {
        AvgGroups* found = nullptr;
        detail::call([&](AvgError** e) { return avg_index_near_duplicates(handle_, min_similarity, &found, e); });
        std::unique_ptr<AvgGroups, decltype(&avg_groups_free)> owned(found, avg_groups_free);
        std::vector<std::vector<std::uint64_t>> out(avg_groups_count(found));
        for (std::size_t i = 0; i < out.size(); ++i) {
            std::size_t len = 0;
            const std::uint64_t* ids = avg_groups_get(found, i, &len);
            out[i].assign(ids, ids + len);
        }
        return out;
    }

    std::size_t image_count() const {
        std::size_t n = 0;
        detail::call([&](AvgError** e) { return avg_index_image_count(handle_, &n, e); });
        return n;
    }

    // Image ids in storage order.
    std::vector<std::uint64_t> image_ids() const {
        std::vector<std::uint64_t> ids(image_count());
        for (;;) {  // images added meanwhile: grow and retry
            std::size_t n = 0;
            AvgError* err = nullptr;
            AvgStatus st = avg_index_image_ids(handle_, ids.data(), ids.size(), &n, &err);
            if (st == AVG_STATUS_BUFFER_TOO_SMALL) {
                avg_error_free(err);
                ids.resize(n + n / 8 + 1);
                continue;
            }
            detail::check(st, err);
            ids.resize(n);
            return ids;
        }
    }

    // The external key of an image ("" when it has none).
    std::string image_key(std::uint64_t id) const {
        return read_string([&](char* buf, std::size_t cap, std::size_t* n, AvgError** e) {
            return avg_index_image_key(handle_, id, buf, cap, n, e);
        });
    }

    // Captions of all images, and of one.
    std::size_t caption_count() const {
        std::size_t n = 0;
        detail::call([&](AvgError** e) { return avg_index_caption_count(handle_, &n, e); });
        return n;
    }

    std::size_t image_caption_count(std::uint64_t id) const {
        std::size_t n = 0;
        detail::call([&](AvgError** e) { return avg_index_image_caption_count(handle_, id, &n, e); });
        return n;
    }

    // The text of caption i of an image.
    std::string caption_text(std::uint64_t id, std::size_t i) const {
        return read_string([&](char* buf, std::size_t cap, std::size_t* n, AvgError** e) {
            return avg_index_caption_text(handle_, id, i, buf, cap, n, e);
        });
    }

    // The text vector of caption i of an image; empty when it was added without one.
    std::optional<std::vector<float>> caption_vector(std::uint64_t id, std::size_t i, std::size_t dim) const {
        std::vector<float> v(dim);
        bool has = false;
        detail::call([&](AvgError** e) { return avg_index_caption_vector(handle_, id, i, v.data(), dim, &has, e); });
        if (!has) return std::nullopt;
        return v;
    }

    std::vector<float> image_vector(std::uint64_t id, std::size_t dim) const {
        std::vector<float> v(dim);
        detail::call([&](AvgError** e) { return avg_index_image_vector(handle_, id, v.data(), dim, e); });
        return v;
    }

    // An image's M codes, then its disambiguator (AVG_STATUS_WRONG_STATE before the
    // tokenizer is trained).
    std::vector<std::uint32_t> image_vokens(std::uint64_t id) const {
        std::vector<std::uint32_t> v(AVG_MAX_VOKEN_LEN + 1);
        std::size_t n = 0;
        detail::call([&](AvgError** e) { return avg_index_image_vokens(handle_, id, v.data(), v.size(), &n, e); });
        v.resize(n);
        return v;
    }

    // Codebook usage per level (the first voken_len entries) and collisions of the
    // current vokens (AVG_STATUS_WRONG_STATE before the tokenizer is trained).
    AvgTokenizerStats tokenizer_stats() const {
        AvgTokenizerStats stats;
        detail::call([&](AvgError** e) { return avg_index_tokenizer_stats(handle_, &stats, sizeof stats, e); });
        return stats;
    }

    // The index's shape, counts and state (avg_index_info in avg.h).
    AvgIndexInfo info() const {
        AvgIndexInfo out{};
        detail::call([&](AvgError** e) { return avg_index_info(handle_, &out, sizeof out, e); });
        return out;
    }

    // The image encoder directory the index records, open or not; "" for none.
    std::string image_encoder_dir() const {
        return read_string([&](char* buf, std::size_t cap, std::size_t* len, AvgError** e) {
            return avg_index_image_encoder_dir(handle_, buf, cap, len, e);
        });
    }

    // Whether a retrained tokenizer's vokens wait for a generator trained on them (searches
    // use the previous ones until a full train_generator ends).
    bool has_pending_tokenizer() const {
        bool pending = false;
        detail::call([&](AvgError** e) { return avg_index_has_pending_tokenizer(handle_, &pending, e); });
        return pending;
    }

    // `progress` is called after every step; returning false stops the training (avg::Error
    // with AVG_STATUS_CANCELLED), and an exception it throws stops it and is rethrown.
    void train_tokenizer(const AvgTokenizerTrainConfig& config, Progress progress = {}) {
        with_progress([&](AvgProgressFn fn, void* ud, AvgError** e) { return avg_train_tokenizer(handle_, &config, fn, ud, e); }, progress);
    }

    void train_generator(const AvgGeneratorTrainConfig& config, Progress progress = {}) {
        with_progress([&](AvgProgressFn fn, void* ud, AvgError** e) { return avg_train_generator(handle_, &config, fn, ud, e); }, progress);
    }
    void train_generator(GeneratorConfig config, Progress progress = {}) { train_generator(*config.get(), std::move(progress)); }

    // Query vectors, if any, come through options.query_vectors (one per query).
    std::vector<Hit> search(std::string_view query, const AvgSearchOptions& options = default_search_options()) const {
        std::string q(query);  // the C ABI takes NUL-terminated strings
        return search_one(options, [&](Hit* out, std::size_t cap, std::size_t* n, AvgError** e) {
            return avg_search(handle_, q.c_str(), &options, out, cap, n, e);
        });
    }

    // "More like this photo": the images nearest indexed image `id` (its stored vector,
    // no text), the image itself left out. Every mode but AVG_SEARCH_MODE_BEAM;
    // options.query_vectors is not read.
    std::vector<Hit> search_by_image(std::uint64_t id, const AvgSearchOptions& options = default_search_options()) const {
        return search_one(options, [&](Hit* out, std::size_t cap, std::size_t* n, AvgError** e) {
            return avg_search_by_image(handle_, id, &options, out, cap, n, e);
        });
    }

    // search_by_image for a photo file, embedded by the index's image encoder.
    std::vector<Hit> search_by_photo(const std::string& path, const AvgSearchOptions& options = default_search_options()) const {
        return search_one(options, [&](Hit* out, std::size_t cap, std::size_t* n, AvgError** e) {
            return avg_search_by_photo_file(handle_, path.c_str(), &options, out, cap, n, e);
        });
    }

    // search_by_photo for a photo's encoded bytes.
    std::vector<Hit> search_by_photo_bytes(const std::vector<std::uint8_t>& photo,
                                           const AvgSearchOptions& options = default_search_options()) const {
        return search_one(options, [&](Hit* out, std::size_t cap, std::size_t* n, AvgError** e) {
            return avg_search_by_photo_bytes(handle_, photo.data(), photo.size(), &options, out, cap, n, e);
        });
    }

    // Queries answered together (faster than one by one).
    std::vector<std::vector<Hit>> search_batch(const std::vector<std::string>& queries,
                                               const AvgSearchOptions& options = default_search_options()) const {
        std::vector<const char*> ptrs;
        for (const auto& q : queries) ptrs.push_back(q.c_str());
        std::vector<Hit> flat(room(options) * queries.size());
        std::vector<std::size_t> counts(queries.size());
        detail::call([&](AvgError** e) {
            return avg_search_batch(handle_, ptrs.data(), ptrs.size(), &options, flat.data(), counts.data(), e);
        });
        std::vector<std::vector<Hit>> hits;
        for (std::size_t i = 0; i < queries.size(); ++i) {
            hits.emplace_back(flat.begin() + i * options.k, flat.begin() + i * options.k + counts[i]);
        }
        return hits;
    }

    AvgIndex* get() const noexcept { return handle_; }

private:
    Index() = default;

    // Runs a one-query search call with room for the hits it can return.
    template <typename F>
    static std::vector<Hit> search_one(const AvgSearchOptions& options, F&& f) {
        std::vector<Hit> hits(room(options));
        std::size_t n = 0;
        detail::call([&](AvgError** e) { return f(hits.data(), hits.size(), &n, e); });
        hits.resize(n);
        return hits;
    }

    // Hits one query can get: k (libavg refuses a k above the beam for the beam modes,
    // and above AVG_MAX_IMAGES for any, before writing any hit).
    static std::size_t room(const AvgSearchOptions& o) {
        std::size_t r = o.k < AVG_MAX_IMAGES ? o.k : AVG_MAX_IMAGES;
        return r > 0 ? r : 1;
    }

    // Reads a string the C convention's way: the buffer grows and the call is retried
    // while it answers BUFFER_TOO_SMALL with the length it needs.
    template <typename F>
    static std::string read_string(F&& f) {
        std::string s(64, '\0');
        for (;;) {
            std::size_t n = 0;
            AvgError* err = nullptr;
            AvgStatus st = f(s.data(), s.size(), &n, &err);
            if (st == AVG_STATUS_BUFFER_TOO_SMALL) {
                avg_error_free(err);
                s.resize(n + 1);
                continue;
            }
            detail::check(st, err);
            s.resize(n);
            return s;
        }
    }

    // Adds a batch whose sources are set, with a status and an error slot per photo.
    // Stopped by `progress`, it returns the results all the same.
    std::vector<PhotoResult> add_photos(const std::vector<std::uint64_t>& ids, AvgPhotoBatch& batch, Progress& progress) {
        std::vector<AvgStatus> statuses(ids.size(), AVG_STATUS_OK);
        std::vector<AvgError*> errors(ids.size(), nullptr);
        std::vector<PhotoResult> results;
        batch.struct_size = sizeof batch;
        batch.count = ids.size();
        batch.ids = ids.data();
        batch.statuses = statuses.data();
        batch.item_errors = errors.data();
        with_progress(
            [&](AvgProgressFn fn, void* ud, AvgError** e) {
                batch.progress = fn;
                batch.user_data = ud;
                AvgStatus st = avg_index_add_photos(handle_, &batch, e);
                for (std::size_t i = 0; i < ids.size(); ++i) {
                    results.push_back({statuses[i], errors[i] ? avg_error_message(errors[i]) : ""});
                    avg_error_free(errors[i]);
                }
                if (st == AVG_STATUS_CANCELLED) {
                    avg_error_free(*e);
                    *e = nullptr;
                    return AVG_STATUS_OK;
                }
                return st;
            },
            progress);
        return results;
    }

    // Runs a call that takes a progress callback. An exception thrown by `progress` stops
    // the call and is rethrown here, in place of the library's AVG_STATUS_CANCELLED.
    template <typename F>
    void with_progress(F&& f, Progress& progress) {
        detail::ProgressState state{&progress, nullptr};
        AvgError* err = nullptr;
        AvgStatus status = progress ? f(detail::progress_trampoline, &state, &err) : f(nullptr, nullptr, &err);
        if (state.thrown) {
            avg_error_free(err);
            std::rethrow_exception(state.thrown);
        }
        detail::check(status, err);
    }

    AvgIndex* handle_ = nullptr;
};

}  // namespace avg
