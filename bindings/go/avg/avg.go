// Package avg is the Go interface to libavg, generative text-to-image retrieval.
//
// It wraps the C ABI of libavg (avg.h) with cgo and finds the installed library
// through pkg-config: build and install libavg first (cargo build --release, then
// scripts/install.sh PREFIX at the repository root) and put PREFIX/lib/pkgconfig on
// PKG_CONFIG_PATH. Binaries then load libavg.so from PREFIX/lib.
//
// An *Index is safe for concurrent use by many goroutines. Errors are *Error values
// carrying libavg's status code and message.
package avg

/*
#cgo pkg-config: avg
#include <stdlib.h>
#include "avg.h"

extern bool avgGoProgress(void *user_data, AvgProgress *progress);
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/cgo"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// check turns a status and its error object (freed here) into a Go error.
func check(st C.enum_AvgStatus, err *C.AvgError) error {
	if st == C.AVG_STATUS_OK {
		return nil
	}
	return goError(err)
}

// goError converts an error object (freed here) into an *Error.
func goError(err *C.AvgError) *Error {
	e := &Error{Code: Status(C.avg_error_code(err)), Message: C.GoString(C.avg_error_message(err))}
	C.avg_error_free(err)
	return e
}

// Version is the library version.
func Version() string { return C.GoString(C.avg_version()) }

// ABIVersion is the C ABI version of the library linked at run time; HeaderABIVersion
// is the one this package was compiled against.
func ABIVersion() uint32 { return uint32(C.avg_abi_version()) }

// HeaderABIVersion is AVG_ABI_VERSION of the header this package was compiled against.
const HeaderABIVersion = uint32(C.AVG_ABI_VERSION)

// SetHeapTuning says whether trainings change glibc's malloc settings for the whole
// process while they run (on by default; see avg_set_heap_tuning in avg.h). Turn it off
// if the program tunes malloc itself.
func SetHeapTuning(enabled bool) { C.avg_set_heap_tuning(C.bool(enabled)) }

// SetThreads sets the threads a search uses, the calling goroutine's thread included:
// 0 (the default) is one per core, 1 keeps each search on its own thread (see
// avg_set_threads in avg.h). Negative values are 0.
func SetThreads(n int) { C.avg_set_threads(C.size_t(max(n, 0))) }

// Config fixes the shape of a new index and the device it computes on. Zero
// CodebookSize and VokenLen take the library's defaults (1024 and 4), as a zero
// SearchOptions does; a zero Dim is the image encoder's projection_dim (an error
// without ImageEncoderDir).
type Config struct {
	Dim          int    // vector length (0: the image encoder's)
	CodebookSize int    // N (0: 1024)
	VokenLen     int    // M (0: 4)
	Device       string // "cpu" (default), "cuda", "cuda:N"
	// ImageEncoderDir is a CLIP checkpoint directory (projection_dim = Dim) that turns
	// photos, captions and queries into vectors inside libavg; "" for none. The index
	// records the first one and refuses another checkpoint (StatusConfigMismatch).
	ImageEncoderDir string
	// SearchWeights: how the generator that answers searches keeps its weights, chosen
	// at each open (zero: the library's default).
	SearchWeights SearchWeights
	// VectorStorage: how image vectors are kept in memory for searching, chosen at each
	// open (zero: f32). The index stores f32 either way.
	VectorStorage VectorStorage
}

// VectorStorage says how an open index keeps image vectors in memory for searching.
type VectorStorage uint64

const (
	// VectorStorageF32 keeps the vectors as given.
	VectorStorageF32 VectorStorage = C.AVG_VECTOR_STORAGE_F32
	// VectorStorageF16 rounds them to f16: half the memory and of a dense scan's reading.
	VectorStorageF16 VectorStorage = C.AVG_VECTOR_STORAGE_F16
	// VectorStorageInt8 keeps int8 with a scale per vector: a quarter. Image and saves
	// still return and write the f32 vectors exactly.
	VectorStorageInt8 VectorStorage = C.AVG_VECTOR_STORAGE_INT8
)

// SearchWeights says how the generator that answers searches keeps its weights.
type SearchWeights uint64

const (
	// SearchWeightsDefault is the library's choice: int8 where the CPU has AVX2 and FMA.
	SearchWeightsDefault SearchWeights = C.AVG_SEARCH_WEIGHTS_DEFAULT
	// SearchWeightsF32 reads the weights as trained.
	SearchWeightsF32 SearchWeights = C.AVG_SEARCH_WEIGHTS_F32
	// SearchWeightsInt8 also keeps them as int8 with one scale per row: a quarter of the
	// bytes a search step reads, a quarter more memory for the model.
	SearchWeightsInt8 SearchWeights = C.AVG_SEARCH_WEIGHTS_INT8
)

// Index is an open libavg index. Close it when done; a finalizer closes a forgotten one.
type Index struct {
	mu sync.RWMutex // Close takes it exclusively; every other call shares it.
	c  *C.AvgIndex
	// closing is set by Close: new calls return ErrClosed at once and running
	// trainings stop at their next step, so Close never waits for a whole training.
	closing atomic.Bool
	// callbacks counts progress callbacks running now (a Close inside one cannot wait
	// for the call that runs it).
	callbacks atomic.Int32
	// active counts the calls on the handle running now.
	active atomic.Int32
}

// Open opens the index in dir, creating it when cfg is non-nil and dir holds none. A nil
// cfg opens the index as stored, with the image encoder it recorded where that
// directory still holds the same checkpoint.
func Open(dir string, cfg *Config) (*Index, error) {
	return open(dir, cfg, false)
}

// OpenReadOnly opens the existing index in dir for searching and reading, under a
// shared lock: many read-only handles (in any process) may hold it at once, and no
// writing one meanwhile. Adds, trainings and saves return a StatusWrongState error.
// cfg is as for Open (a read-only service names its ImageEncoderDir there to turn query
// texts into vectors); it never creates an index.
func OpenReadOnly(dir string, cfg *Config) (*Index, error) {
	return open(dir, cfg, true)
}

func open(dir string, cfg *Config, readOnly bool) (*Index, error) {
	if err := noNUL("dir", dir); err != nil {
		return nil, err
	}
	if cfg != nil {
		if err := errors.Join(noNUL("Device", cfg.Device), noNUL("ImageEncoderDir", cfg.ImageEncoderDir)); err != nil {
			return nil, err
		}
	}
	cdir := C.CString(dir)
	defer C.free(unsafe.Pointer(cdir))
	var ccfg *C.AvgIndexConfig
	if cfg != nil {
		dev := cfg.Device
		if dev == "" {
			dev = "cpu"
		}
		cdev := C.CString(dev)
		defer C.free(unsafe.Pointer(cdev))
		ccfg = &C.AvgIndexConfig{}
		C.avg_index_config_default(ccfg, C.size_t(unsafe.Sizeof(*ccfg)), nil) // cannot fail: pointer and size are valid
		ccfg.dim, ccfg.device = C.size_t(cfg.Dim), cdev
		ccfg.search_weights = C.uint64_t(cfg.SearchWeights)
		ccfg.vector_storage = C.uint64_t(cfg.VectorStorage)
		if cfg.CodebookSize != 0 {
			ccfg.codebook_size = C.size_t(cfg.CodebookSize)
		}
		if cfg.VokenLen != 0 {
			ccfg.voken_len = C.size_t(cfg.VokenLen)
		}
		if cfg.ImageEncoderDir != "" {
			cenc := C.CString(cfg.ImageEncoderDir)
			defer C.free(unsafe.Pointer(cenc))
			ccfg.image_encoder_dir = cenc
		}
	}
	var h *C.AvgIndex
	var cerr *C.AvgError
	var st C.enum_AvgStatus
	if readOnly {
		st = C.avg_index_open_read_only(cdir, ccfg, &h, &cerr)
	} else {
		st = C.avg_index_open(cdir, ccfg, &h, &cerr)
	}
	return wrap(h, check(st, cerr))
}

// wrap makes an opened handle an *Index that a finalizer closes if the host forgets.
func wrap(h *C.AvgIndex, err error) (*Index, error) {
	if err != nil {
		return nil, err
	}
	ix := &Index{c: h}
	runtime.SetFinalizer(ix, func(ix *Index) { _ = ix.Close() })
	return ix, nil
}

// Close frees the index; unsaved adds are discarded. Closing twice is a no-op. Calls
// made after Close return ErrClosed at once; a running training or photo add stops at
// its next step (its error wraps ErrClosed), and Close returns when it has. Close
// called while a progress callback of this index or a log callback runs (from the
// callback itself, say) returns at once: the index is freed when the calls running on
// it return.
func (ix *Index) Close() error {
	ix.closing.Store(true)
	if ix.callbacks.Load() > 0 || (logging.Load() > 0 && ix.active.Load() > 0) {
		return nil
	}
	ix.free()
	return nil
}

func (ix *Index) free() {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.c != nil {
		C.avg_index_free(ix.c)
		ix.c = nil
		runtime.SetFinalizer(ix, nil)
	}
}

// with runs f on the live handle, under the shared lock. A Close made meanwhile from a
// callback could not free the handle: the call frees it when it returns.
func (ix *Index) with(f func(h *C.AvgIndex) error) error {
	ix.active.Add(1)
	defer ix.active.Add(-1)
	if ix.closing.Load() {
		return ErrClosed
	}
	err := ix.shared(f)
	if ix.closing.Load() {
		ix.free()
	}
	return err
}

func (ix *Index) shared(f func(h *C.AvgIndex) error) error {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.c == nil {
		return ErrClosed
	}
	return f(ix.c)
}

// noNUL refuses a string that C would cut at its first NUL byte.
func noNUL(what, s string) error {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return &Error{Code: StatusInvalidArgument, Message: fmt.Sprintf("%s contains a NUL byte at %d", what, i)}
	}
	return nil
}

// cStrings copies strs to C memory; free releases it.
func cStrings(what string, strs []string) (ptrs **C.char, free func(), err error) {
	for _, s := range strs {
		if err := noNUL(what, s); err != nil {
			return nil, nil, err
		}
	}
	if len(strs) == 0 {
		return nil, func() {}, nil
	}
	arr := (*[1 << 28]*C.char)(C.malloc(C.size_t(len(strs)) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))[:len(strs):len(strs)]
	for i, s := range strs {
		arr[i] = C.CString(s)
	}
	return &arr[0], func() {
		for _, p := range arr {
			C.free(unsafe.Pointer(p))
		}
		C.free(unsafe.Pointer(&arr[0]))
	}, nil
}

func floatPtr(v []float32) *C.float {
	if len(v) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&v[0]))
}

// AddImages adds images: ids[i] with the dim floats at vectors[i*dim:], and keys[i]
// when keys is non-nil. All or none.
func (ix *Index) AddImages(ids []uint64, keys []string, vectors []float32, dim int) error {
	if keys != nil && len(keys) != len(ids) {
		return &Error{Code: StatusInvalidArgument, Message: fmt.Sprintf("%d ids but %d keys", len(ids), len(keys))}
	}
	if len(vectors) != len(ids)*dim {
		return &Error{Code: StatusDimensionMismatch, Message: fmt.Sprintf("%d floats for %d vectors of %d", len(vectors), len(ids), dim)}
	}
	return ix.with(func(h *C.AvgIndex) error {
		var idp *C.uint64_t
		if len(ids) > 0 {
			idp = (*C.uint64_t)(unsafe.Pointer(&ids[0]))
		}
		kp, free, err := cStrings("key", keys)
		if err != nil {
			return err
		}
		defer free()
		var cerr *C.AvgError
		return check(C.avg_index_add_images(h, idp, kp, floatPtr(vectors), C.size_t(len(ids)), C.size_t(dim), &cerr), cerr)
	})
}

// AddCaptions appends captions to image id; vectors (len(texts)*dim floats) may be nil.
func (ix *Index) AddCaptions(id uint64, texts []string, vectors []float32, dim int) error {
	if vectors != nil && len(vectors) != len(texts)*dim {
		return &Error{Code: StatusDimensionMismatch, Message: fmt.Sprintf("%d floats for %d vectors of %d", len(vectors), len(texts), dim)}
	}
	return ix.with(func(h *C.AvgIndex) error {
		tp, free, err := cStrings("caption", texts)
		if err != nil {
			return err
		}
		defer free()
		var cerr *C.AvgError
		return check(C.avg_index_add_captions(h, C.uint64_t(id), tp, floatPtr(vectors), C.size_t(len(texts)), C.size_t(dim), &cerr), cerr)
	})
}

// AttachTexts attaches texts that describe image id (tags, an album or file name, its
// own caption); TrainGenerator learns them as pseudo-queries of the image, so that
// photos without captions are found by text.
func (ix *Index) AttachTexts(id uint64, texts []string) error {
	return ix.with(func(h *C.AvgIndex) error {
		tp, free, err := cStrings("text", texts)
		if err != nil {
			return err
		}
		defer free()
		var cerr *C.AvgError
		return check(C.avg_index_attach_texts(h, C.uint64_t(id), tp, C.size_t(len(texts)), &cerr), cerr)
	})
}

// AddImageFiles adds photos from files (JPEG, PNG, WebP), embedded by the index's
// image encoder. Each photo succeeds or fails alone: itemErrs[i] is nil or its *Error
// (naming the file). err is non-nil when the call failed as a whole (no image encoder,
// bad arguments) or was stopped by progress or ctx, which is then wrapped.
func (ix *Index) AddImageFiles(ctx context.Context, ids []uint64, paths []string, progress func(Progress) bool) (itemErrs []error, err error) {
	if len(paths) != len(ids) {
		return nil, &Error{Code: StatusInvalidArgument, Message: fmt.Sprintf("%d ids but %d paths", len(ids), len(paths))}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	pp, free, err := cStrings("path", paths)
	if err != nil {
		return nil, err
	}
	defer free()
	return ix.addPhotos(ctx, ids, progress, func(h *C.AvgIndex, statuses *C.enum_AvgStatus, errs **C.AvgError, fn C.AvgProgressFn, ud unsafe.Pointer, cerr **C.AvgError) C.enum_AvgStatus {
		idp := (*C.uint64_t)(unsafe.Pointer(&ids[0]))
		return C.avg_index_add_image_files(h, idp, nil, pp, C.size_t(len(ids)), statuses, errs, nil, fn, ud, cerr)
	})
}

// addPhotos runs one of the photo-adding calls with a status and an error slot per
// photo, and turns the errors into itemErrs.
func (ix *Index) addPhotos(ctx context.Context, ids []uint64, progress func(Progress) bool,
	call func(h *C.AvgIndex, statuses *C.enum_AvgStatus, errs **C.AvgError, fn C.AvgProgressFn, ud unsafe.Pointer, cerr **C.AvgError) C.enum_AvgStatus) (itemErrs []error, err error) {
	n := C.size_t(len(ids))
	statuses := (*C.enum_AvgStatus)(C.malloc(n * C.size_t(unsafe.Sizeof(C.enum_AvgStatus(0)))))
	defer C.free(unsafe.Pointer(statuses))
	errs := (**C.AvgError)(C.calloc(n, C.size_t(unsafe.Sizeof((*C.AvgError)(nil)))))
	defer C.free(unsafe.Pointer(errs))
	err = ix.withProgress(ctx, progress, func(h *C.AvgIndex, fn C.AvgProgressFn, ud unsafe.Pointer, cerr **C.AvgError) C.enum_AvgStatus {
		return call(h, statuses, errs, fn, ud, cerr)
	})
	itemErrs = make([]error, len(ids))
	for i, e := range unsafe.Slice(errs, len(ids)) {
		if e != nil {
			itemErrs[i] = goError(e)
		}
	}
	return itemErrs, err
}

// Save makes everything added so far durable.
func (ix *Index) Save() error {
	return ix.with(func(h *C.AvgIndex) error {
		var cerr *C.AvgError
		return check(C.avg_index_save(h, &cerr), cerr)
	})
}

// ImageCount is the number of images in the index.
func (ix *Index) ImageCount() (int, error) {
	var n C.size_t
	err := ix.with(func(h *C.AvgIndex) error {
		var cerr *C.AvgError
		return check(C.avg_index_image_count(h, &n, &cerr), cerr)
	})
	return int(n), err
}

// Progress is one report of a training (after every optimiser step) or of a photo
// add (after every batch of photos: Step counts batches, no losses).
type Progress struct {
	Generator                   bool // false: the tokenizer is training
	Images                      bool // adding photos
	Epoch, Epochs               int
	Step, StepsPerEpoch         int
	Loss, LossGen, LossDis      float32
	LossRecon, LossCommit       float32
	LossAlign, SamplesPerSecond float32
}

// progressState travels to the C callback through a cgo.Handle.
type progressState struct {
	ctx context.Context
	fn  func(Progress) bool
	ix  *Index
}

//export avgGoProgress
func avgGoProgress(userData unsafe.Pointer, p *C.AvgProgress) C.bool {
	s := cgo.Handle(*(*C.uintptr_t)(userData)).Value().(*progressState)
	if s.ctx.Err() != nil || s.ix.closing.Load() {
		return false
	}
	if s.fn == nil {
		return true
	}
	s.ix.callbacks.Add(1)
	defer s.ix.callbacks.Add(-1)
	return C.bool(s.fn(Progress{
		Generator: p.stage == C.AVG_STAGE_GENERATOR, Images: p.stage == C.AVG_STAGE_IMAGES,
		Epoch: int(p.epoch), Epochs: int(p.epochs), Step: int(p.step), StepsPerEpoch: int(p.steps_per_epoch),
		Loss: float32(p.loss), LossGen: float32(p.loss_gen), LossDis: float32(p.loss_dis),
		LossRecon: float32(p.loss_recon), LossCommit: float32(p.loss_commit), LossAlign: float32(p.loss_align),
		SamplesPerSecond: float32(p.samples_per_second),
	}))
}

// withProgress runs a long call with a progress callback bound to ctx: cancelling ctx
// stops the call at its next step, and the error then wraps ctx.Err().
func (ix *Index) withProgress(ctx context.Context, progress func(Progress) bool, call func(h *C.AvgIndex, fn C.AvgProgressFn, ud unsafe.Pointer, cerr **C.AvgError) C.enum_AvgStatus) error {
	handle := cgo.NewHandle(&progressState{ctx: ctx, fn: progress, ix: ix})
	defer handle.Delete()
	// C keeps no Go pointer: it gets C memory holding the handle's number.
	ud := C.malloc(C.size_t(unsafe.Sizeof(C.uintptr_t(0))))
	defer C.free(ud)
	*(*C.uintptr_t)(ud) = C.uintptr_t(handle)
	err := ix.with(func(h *C.AvgIndex) error {
		var cerr *C.AvgError
		return check(call(h, C.AvgProgressFn(unsafe.Pointer(C.avgGoProgress)), ud, &cerr), cerr)
	})
	var e *Error
	switch {
	case ix.closing.Load():
		// Closed meanwhile, perhaps from the callback (with has freed the index).
		if errors.As(err, &e) && e.Code == StatusCancelled {
			return fmt.Errorf("%w: %w", err, ErrClosed)
		}
	case errors.As(err, &e) && e.Code == StatusCancelled && ctx.Err() != nil:
		return fmt.Errorf("%w: %w", err, ctx.Err())
	}
	return err
}

// TokenizerConfig is how to train the tokenizer. A zero field takes libavg's default
// (DefaultTokenizerConfig shows them), so TokenizerConfig{Epochs: 5} changes the epochs
// alone; the switches are named so that false is the default.
type TokenizerConfig struct {
	Epochs       int
	BatchSize    int
	LearningRate float64
	ReconWeight  float32 // weight of L_recon
	CommitWeight float32 // weight of the commitment term
	NoAlign      bool    // L_align off (the ablation)
	AlignWeight  float32
	// PerLevelCodebooks: one codebook per level instead of one for all M levels.
	PerLevelCodebooks bool
	Hidden            int // width of the encoder and decoder MLPs
	KMeansIterations  int
	Seed              uint64
}

// DefaultTokenizerConfig is libavg's default tokenizer training.
func DefaultTokenizerConfig() TokenizerConfig {
	var c C.AvgTokenizerTrainConfig
	C.avg_tokenizer_train_config_default(&c, C.size_t(unsafe.Sizeof(c)), nil)
	return TokenizerConfig{Epochs: int(c.epochs), BatchSize: int(c.batch_size), LearningRate: float64(c.learning_rate),
		ReconWeight: float32(c.recon_weight), CommitWeight: float32(c.commit_weight), NoAlign: !bool(c.align),
		AlignWeight: float32(c.align_weight), PerLevelCodebooks: !bool(c.shared_codebook), Hidden: int(c.hidden),
		KMeansIterations: int(c.kmeans_iterations), Seed: uint64(c.seed)}
}

// TrainTokenizer trains the tokenizer on the index's images and captions.
func (ix *Index) TrainTokenizer(ctx context.Context, cfg TokenizerConfig, progress func(Progress) bool) error {
	if cfg.Epochs < 0 || cfg.BatchSize < 0 || cfg.Hidden < 0 || cfg.KMeansIterations < 0 {
		return &Error{Code: StatusInvalidArgument, Message: "TokenizerConfig: Epochs, BatchSize, Hidden and KMeansIterations must not be negative"}
	}
	var c C.AvgTokenizerTrainConfig
	C.avg_tokenizer_train_config_default(&c, C.size_t(unsafe.Sizeof(c)), nil)
	set(&c.epochs, cfg.Epochs)
	set(&c.batch_size, cfg.BatchSize)
	set(&c.learning_rate, cfg.LearningRate)
	set(&c.recon_weight, cfg.ReconWeight)
	set(&c.commit_weight, cfg.CommitWeight)
	set(&c.align_weight, cfg.AlignWeight)
	set(&c.hidden, cfg.Hidden)
	set(&c.kmeans_iterations, cfg.KMeansIterations)
	set(&c.seed, cfg.Seed)
	c.align, c.shared_codebook = C.bool(!cfg.NoAlign), C.bool(!cfg.PerLevelCodebooks)
	return ix.withProgress(ctx, progress, func(h *C.AvgIndex, fn C.AvgProgressFn, ud unsafe.Pointer, cerr **C.AvgError) C.enum_AvgStatus {
		return C.avg_train_tokenizer(h, &c, fn, ud, cerr)
	})
}

// set writes a Go value over a C default unless it is zero (the default's stand-in).
func set[T interface {
	~uint64 | ~float64 | ~float32
}, V interface {
	~int | ~uint64 | ~float64 | ~float32
}](c *T, v V) {
	if v != 0 {
		*c = T(v)
	}
}

// GeneratorConfig is how to train the generator. A zero field takes libavg's default
// (DefaultGeneratorConfig shows them); the switches are named so that false is the
// default.
type GeneratorConfig struct {
	ModelDir      string // checkpoint directory: a T5, or a BERT-family encoder
	Epochs        int
	BatchSize     int
	LearningRate  float64
	BeamSize      int
	NoDis         bool // L_dis off (the ablation)
	DecoderLayers int
	DecoderDModel int
	Seed          uint64
	// NoIndexTexts leaves the texts attached to images (AttachTexts) unlearned;
	// NoIndexVectors gives the generator no vector slot, through which images without
	// any text are learned from their own vectors.
	NoIndexTexts, NoIndexVectors bool
	// Incremental runs an indexing pass: the trained generator learns the pairs it has
	// not (images added, or removed and added again, texts attached since), replaying
	// earlier ones, for Epochs (ModelDir may then be "").
	Incremental bool
	// Resume goes on with a training that was cut short (killed, cancelled) from its
	// last completed epoch; a finished one trains no more (see avg.h).
	Resume bool
	// BalanceImages: whether images with fewer pairs than the median (one attached
	// text beside photos with four captions) have them repeated up to it.
	BalanceImages BalanceImages
}

// BalanceImages says whether a generator training repeats the pairs of thinner images.
type BalanceImages uint64

const (
	// BalanceImagesDefault is the library's choice (off for now).
	BalanceImagesDefault BalanceImages = C.AVG_BALANCE_IMAGES_DEFAULT
	// BalanceImagesOff learns every pair once.
	BalanceImagesOff BalanceImages = C.AVG_BALANCE_IMAGES_OFF
	// BalanceImagesToMedian repeats the pairs of images with fewer than the median
	// number per image up to it.
	BalanceImagesToMedian BalanceImages = C.AVG_BALANCE_IMAGES_TO_MEDIAN
)

// DefaultGeneratorConfig is libavg's default generator training on modelDir.
func DefaultGeneratorConfig(modelDir string) GeneratorConfig {
	var c C.AvgGeneratorTrainConfig
	C.avg_generator_train_config_default(&c, C.size_t(unsafe.Sizeof(c)), nil)
	return GeneratorConfig{ModelDir: modelDir, Epochs: int(c.epochs), BatchSize: int(c.batch_size), LearningRate: float64(c.learning_rate),
		BeamSize: int(c.beam_size), NoDis: !bool(c.dis), DecoderLayers: int(c.decoder_layers), DecoderDModel: int(c.decoder_d_model), Seed: uint64(c.seed),
		NoIndexTexts: !bool(c.index_texts), NoIndexVectors: !bool(c.index_vectors)}
}

// TrainGenerator trains the generator on every caption in the index.
func (ix *Index) TrainGenerator(ctx context.Context, cfg GeneratorConfig, progress func(Progress) bool) error {
	var c C.AvgGeneratorTrainConfig
	C.avg_generator_train_config_default(&c, C.size_t(unsafe.Sizeof(c)), nil)
	if err := noNUL("ModelDir", cfg.ModelDir); err != nil {
		return err
	}
	if cfg.ModelDir != "" || !cfg.Incremental {
		dir := C.CString(cfg.ModelDir)
		defer C.free(unsafe.Pointer(dir))
		c.model_dir = dir
	}
	if cfg.Epochs < 0 || cfg.BatchSize < 0 || cfg.BeamSize < 0 || cfg.DecoderLayers < 0 || cfg.DecoderDModel < 0 {
		return &Error{Code: StatusInvalidArgument, Message: "GeneratorConfig: Epochs, BatchSize, BeamSize and the decoder sizes must not be negative"}
	}
	set(&c.epochs, cfg.Epochs)
	set(&c.batch_size, cfg.BatchSize)
	set(&c.learning_rate, cfg.LearningRate)
	set(&c.beam_size, cfg.BeamSize)
	set(&c.seed, cfg.Seed)
	set(&c.decoder_layers, cfg.DecoderLayers)
	set(&c.decoder_d_model, cfg.DecoderDModel)
	c.dis, c.index_texts, c.index_vectors = C.bool(!cfg.NoDis), C.bool(!cfg.NoIndexTexts), C.bool(!cfg.NoIndexVectors)
	c.incremental = C.bool(cfg.Incremental)
	c.resume, c.balance_images = C.bool(cfg.Resume), C.uint64_t(cfg.BalanceImages)
	return ix.withProgress(ctx, progress, func(h *C.AvgIndex, fn C.AvgProgressFn, ud unsafe.Pointer, cerr **C.AvgError) C.enum_AvgStatus {
		return C.avg_train_generator(h, &c, fn, ud, cerr)
	})
}
