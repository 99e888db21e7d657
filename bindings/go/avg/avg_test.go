package avg

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	nImages = 60
	topics  = 6
	dim     = 16
)

// ctx is the tests' context where cancelling is not what a test is about.
var ctx = context.Background()

// The synthetic photos of examples-c/photo_app.c: 60 vectors in 6 topics, two captions
// each naming the topic and the photo. AVG_TEST_MODEL names a BERT checkpoint with
// those words (cargo run --release --example tiny_checkpoint -- DIR writes one).
type lcg uint64

func (s *lcg) next() float32 {
	*s = *s*6364136223846793005 + 1442695040888963407
	return float32(float64(uint64(*s)>>40)/float64(1<<24))*2 - 1
}

func normalize(v []float32) {
	var n float32
	for _, x := range v {
		n += x * x
	}
	n = float32(math.Sqrt(float64(n)))
	for i := range v {
		v[i] /= n
	}
}

func caption(topic, id, variant int) string {
	if variant == 0 {
		return fmt.Sprintf("a photo of t%da t%db item%d", topic, topic, id)
	}
	return fmt.Sprintf("item%d seen with t%db", id, topic)
}

func fill(t *testing.T, ix *Index) {
	rng := lcg(21)
	centres := make([][]float32, topics)
	for i := range centres {
		centres[i] = make([]float32, dim)
		for j := range centres[i] {
			centres[i][j] = rng.next()
		}
	}
	ids := make([]uint64, nImages)
	vectors := make([]float32, nImages*dim)
	for n := range ids {
		ids[n] = uint64(n)
		v := vectors[n*dim : (n+1)*dim]
		for j := range v {
			v[j] = centres[n%topics][j] + rng.next()*0.5
		}
		normalize(v)
	}
	if err := ix.AddImages(ids, nil, vectors, dim); err != nil {
		t.Fatal(err)
	}
	for n := 0; n < nImages; n++ {
		cv := make([]float32, 2*dim)
		for k := 0; k < 2; k++ {
			for j := 0; j < dim; j++ {
				cv[k*dim+j] = centres[n%topics][j] + rng.next()*0.1
			}
			normalize(cv[k*dim : (k+1)*dim])
		}
		texts := []string{caption(n%topics, n, 0), caption(n%topics, n, 1)}
		if err := ix.AddCaptions(uint64(n), texts, cv, dim); err != nil {
			t.Fatal(err)
		}
	}
}

func model(t *testing.T) string {
	return testDir(t, "AVG_TEST_MODEL", "a tiny BERT checkpoint: cargo run --release --example tiny_checkpoint -- DIR")
}

// testDir reads a checkpoint directory from the environment. Unset, the test is skipped
// with what it needs, except under CI, where a test that ran nothing must fail.
func testDir(t *testing.T, name, what string) string {
	d := os.Getenv(name)
	if d == "" {
		msg := fmt.Sprintf("set %s to %s", name, what)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return d
}

func smallConfig() *Config { return &Config{Dim: dim, CodebookSize: 32, VokenLen: 3} }

func tokenizerConfig() TokenizerConfig {
	c := DefaultTokenizerConfig()
	c.Epochs, c.BatchSize, c.Hidden = 10, 64, 64
	return c
}

func generatorConfig(m string) GeneratorConfig {
	g := DefaultGeneratorConfig(m)
	g.Epochs, g.BatchSize, g.LearningRate = 80, 32, 3e-3
	g.DecoderLayers, g.DecoderDModel, g.BeamSize = 1, 64, 4
	return g
}

var (
	trainedOnce sync.Once
	trained     *Index
	trainErr    error
)

// trainedIndex trains one index for the tests that search.
func trainedIndex(t *testing.T) *Index {
	m := model(t)
	trainedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "avg-go-test")
		if err != nil {
			trainErr = err
			return
		}
		ix, err := Open(filepath.Join(dir, "index"), smallConfig())
		if err != nil {
			trainErr = err
			return
		}
		fill(t, ix)
		if trainErr = ix.TrainTokenizer(context.Background(), tokenizerConfig(), nil); trainErr != nil {
			return
		}
		epochs := 0
		trainErr = ix.TrainGenerator(context.Background(), generatorConfig(m), func(p Progress) bool {
			if p.Generator && p.Step+1 == p.StepsPerEpoch {
				epochs++
			}
			return true
		})
		if trainErr == nil && epochs != 80 {
			trainErr = fmt.Errorf("progress saw %d epochs, want 80", epochs)
		}
		trained = ix
	})
	if trainErr != nil {
		t.Fatal(trainErr)
	}
	return trained
}

func TestOpenAddTrainSearchClose(t *testing.T) {
	ix := trainedIndex(t)
	n, err := ix.ImageCount()
	if err != nil || n != nImages {
		t.Fatalf("ImageCount = %d, %v", n, err)
	}
	right := 0
	for id := 0; id < nImages; id++ {
		hits, err := ix.Search(ctx, caption(id%topics, id, 0), SearchOptions{K: 3, BeamSize: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(hits) > 0 && hits[0].ID == uint64(id) {
			right++
		}
	}
	if right < 40 {
		t.Fatalf("top-1 %d/%d", right, nImages)
	}
	// Fused ranks by the query vector, which an index without an image encoder lacks.
	var e *Error
	if _, err := ix.Search(ctx, "a query", SearchOptions{Mode: ModeFused}); !errors.As(err, &e) || e.Code != StatusInvalidArgument {
		t.Fatalf("fused without a query vector: %v", err)
	}
	if err := ix.Save(); err != nil {
		t.Fatal(err)
	}
}

func TestQuantizerCodesAndDenseScanSearchWithNoGenerator(t *testing.T) {
	ix, err := Open(filepath.Join(t.TempDir(), "index"), smallConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	fill(t, ix)
	ownVectorFindsItself := func(opts SearchOptions) {
		for id := uint64(0); id < nImages; id++ {
			v, err := ix.ImageVector(id, dim)
			if err != nil {
				t.Fatal(err)
			}
			opts.QueryVector = v
			hits, err := ix.Search(ctx, "any text", opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(hits) != 3 || hits[0].ID != id {
				t.Fatalf("mode %v: image %d's own vector found %v", opts.Mode, id, hits)
			}
		}
	}
	// The dense scan before any training (also the default mode's pick here, with a
	// vector, and for any K); the quantiser's codes after the tokenizer's.
	ownVectorFindsItself(SearchOptions{K: 3, Mode: ModeDense})
	ownVectorFindsItself(SearchOptions{K: 3})
	v, err := ix.ImageVector(0, dim)
	if err != nil {
		t.Fatal(err)
	}
	if hits, err := ix.Search(ctx, "x", SearchOptions{K: 500, QueryVector: v}); err != nil || len(hits) != nImages {
		t.Fatalf("K 500 among %d images: %d hits, %v", nImages, len(hits), err)
	}
	if err := ix.TrainTokenizer(ctx, tokenizerConfig(), nil); err != nil {
		t.Fatal(err)
	}
	ownVectorFindsItself(SearchOptions{K: 3, Mode: ModeQuantizer})
	// More like image 4: the others, itself left out.
	like, err := ix.SearchByImage(ctx, 4, SearchOptions{K: 5, Mode: ModeDense})
	if err != nil || len(like) != 5 {
		t.Fatalf("SearchByImage: %v, %v", like, err)
	}
	for _, h := range like {
		if h.ID == 4 {
			t.Fatalf("SearchByImage found the image itself: %v", like)
		}
	}
	// Filtered: only allowed images, K of them when K are allowed, none for an empty list.
	allow := []uint64{2, 5, 7, 11, 99999}
	for _, mode := range []Mode{ModeDense, ModeQuantizer} {
		hits, err := ix.Search(ctx, "x", SearchOptions{K: 3, Mode: mode, QueryVector: v, Allow: allow})
		if err != nil || len(hits) != 3 {
			t.Fatalf("mode %v filtered: %v, %v", mode, hits, err)
		}
		for _, h := range hits {
			if h.ID != 2 && h.ID != 5 && h.ID != 7 && h.ID != 11 {
				t.Fatalf("mode %v: image %d is not allowed", mode, h.ID)
			}
		}
		if none, err := ix.Search(ctx, "x", SearchOptions{Mode: mode, QueryVector: v, Allow: []uint64{}}); err != nil || len(none) != 0 {
			t.Fatalf("mode %v, empty allow-list: %v, %v", mode, none, err)
		}
	}
	if like, err := ix.SearchByImage(ctx, 5, SearchOptions{K: 10, Mode: ModeDense, Allow: allow}); err != nil || len(like) != 3 {
		t.Fatalf("SearchByImage filtered: %v, %v", like, err)
	}
	// No two of these vectors are the same; a copy of image 0 is.
	if groups, err := ix.NearDuplicates(0.9999); err != nil || len(groups) != 0 {
		t.Fatalf("NearDuplicates before the copy: %v, %v", groups, err)
	}
	if err := ix.AddImages([]uint64{1000}, nil, v, dim); err != nil {
		t.Fatal(err)
	}
	if groups, err := ix.NearDuplicates(0.9999); err != nil || len(groups) != 1 || groups[0][0] != 0 || groups[0][1] != 1000 {
		t.Fatalf("NearDuplicates after adding a copy of image 0: %v, %v", groups, err)
	}
	if _, err := ix.NearDuplicates(1.5); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("NearDuplicates(1.5): %v", err)
	}
	if _, err := ix.SearchByPhotoBytes(ctx, []byte("not a photo"), SearchOptions{}); !errors.Is(err, ErrWrongState) {
		t.Fatalf("SearchByPhotoBytes without an image encoder: %v", err)
	}
	var e *Error
	if _, err := ix.Search(ctx, "x", SearchOptions{Mode: 7}); !errors.As(err, &e) || e.Code != StatusInvalidArgument {
		t.Fatalf("Mode 7: %v", err)
	}
	if _, err := ix.Search(ctx, "x", SearchOptions{Mode: ModeBeam}); !errors.As(err, &e) || e.Code != StatusWrongState {
		t.Fatalf("the generator's codes before it trained: %v", err)
	}
}

func TestBalanceImagesReachesTheLibrary(t *testing.T) {
	ix, err := Open(filepath.Join(t.TempDir(), "index"), smallConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	cfg := DefaultGeneratorConfig("unused")
	if cfg.BalanceImages != BalanceImagesDefault {
		t.Fatalf("default BalanceImages %d", cfg.BalanceImages)
	}
	var e *Error
	cfg.BalanceImages = 7
	if err := ix.TrainGenerator(ctx, cfg, nil); !errors.As(err, &e) || e.Code != StatusInvalidArgument {
		t.Fatalf("BalanceImages 7: %v", err)
	}
	// A named value passes the config check; the empty index then lacks a tokenizer.
	cfg.BalanceImages = BalanceImagesToMedian
	if err := ix.TrainGenerator(ctx, cfg, nil); !errors.As(err, &e) || e.Code != StatusWrongState {
		t.Fatalf("BalanceImagesToMedian before the tokenizer: %v", err)
	}
}

func TestErrorsCarryCodeAndMessage(t *testing.T) {
	dir := t.TempDir()
	ix, err := Open(dir, smallConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	err = ix.AddImages([]uint64{1}, nil, make([]float32, 3), 3)
	var e *Error
	if !errors.As(err, &e) || e.Code != StatusDimensionMismatch || !strings.Contains(e.Message, "expected 16, got 3") {
		t.Fatalf("got %v", err)
	}
	_, err = Open(dir, smallConfig())
	if !errors.As(err, &e) || e.Code != StatusLocked {
		t.Fatalf("second open: %v", err)
	}
	if _, err = ix.Search(ctx, "anything", SearchOptions{Mode: ModeBeam}); !errors.As(err, &e) || e.Code != StatusWrongState {
		t.Fatalf("search before training: %v", err)
	}
	if _, err = ix.Search(ctx, "anything", SearchOptions{K: -1}); !errors.As(err, &e) || e.Code != StatusInvalidArgument {
		t.Fatalf("negative K: %v", err)
	}
	// A K far above any index used to size a Go slice of K hits and crash the process.
	if _, err = ix.Search(ctx, "anything", SearchOptions{K: 1 << 40}); !errors.As(err, &e) || e.Code != StatusLimit {
		t.Fatalf("K 1<<40: %v", err)
	}
	// C would cut the query at the NUL and answer another question.
	if _, err = ix.Search(ctx, "a dog\x00 on a beach", SearchOptions{}); !errors.As(err, &e) || e.Code != StatusInvalidArgument {
		t.Fatalf("query with NUL: %v", err)
	}
	if err = ix.AddCaptions(1, []string{"ok", "cut\x00here"}, nil, dim); !errors.As(err, &e) || e.Code != StatusInvalidArgument {
		t.Fatalf("caption with NUL: %v", err)
	}
	nan := make([]float32, dim)
	nan[3] = float32(math.NaN())
	if err = ix.AddImages([]uint64{2}, []string{"k"}, nan, dim); !errors.As(err, &e) || e.Code != StatusNonFinite {
		t.Fatalf("NaN: %v", err)
	}
	ix.Close()
	if _, err := ix.ImageCount(); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// Zero CodebookSize and VokenLen mean the library's defaults: the index they create
// reopens with N 1024 and M 4 spelled out and refuses another shape.
func TestZeroConfigFieldsTakeTheDefaults(t *testing.T) {
	dir := t.TempDir()
	ix, err := Open(dir, &Config{Dim: dim})
	if err != nil {
		t.Fatal(err)
	}
	ix.Close()
	ix, err = Open(dir, &Config{Dim: dim, CodebookSize: 1024, VokenLen: 4})
	if err != nil {
		t.Fatalf("reopen with the defaults spelled out: %v", err)
	}
	ix.Close()
	ix, err = Open(dir, &Config{Dim: dim, SearchWeights: SearchWeightsF32})
	if err != nil {
		t.Fatalf("reopen with f32 search weights: %v", err)
	}
	ix.Close()
	var e *Error
	if _, err = Open(dir, &Config{Dim: dim, SearchWeights: 7}); !errors.As(err, &e) || e.Code != StatusInvalidArgument {
		t.Fatalf("SearchWeights 7: %v", err)
	}
	if _, err = Open(dir, &Config{Dim: dim, VectorStorage: 3}); !errors.As(err, &e) || e.Code != StatusInvalidArgument {
		t.Fatalf("VectorStorage 3: %v", err)
	}
	if _, err = Open(dir, smallConfig()); !errors.As(err, &e) || e.Code != StatusConfigMismatch {
		t.Fatalf("reopen with N 32, M 3: %v", err)
	}
	if _, err = Open(t.TempDir(), &Config{}); !errors.As(err, &e) || e.Code != StatusInvalidArgument {
		t.Fatalf("Dim 0: %v", err)
	}
}

func TestContextCancelsTraining(t *testing.T) {
	SetHeapTuning(false) // a host that tunes malloc itself; trainings work the same
	defer SetHeapTuning(true)
	ix, err := Open(t.TempDir(), smallConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	fill(t, ix)
	ctx, cancel := context.WithCancel(context.Background())
	steps := 0
	err = ix.TrainTokenizer(ctx, tokenizerConfig(), func(Progress) bool {
		steps++
		if steps == 2 {
			cancel()
		}
		return true
	})
	var e *Error
	if !errors.Is(err, context.Canceled) || !errors.As(err, &e) || e.Code != StatusCancelled {
		t.Fatalf("got %v", err)
	}
	if steps != 2 {
		t.Fatalf("training went on for %d steps after the cancel", steps-2)
	}
}

func TestReadOnlyHandlesShareAnIndex(t *testing.T) {
	dir := t.TempDir()
	ix, err := Open(dir, smallConfig())
	if err != nil {
		t.Fatal(err)
	}
	fill(t, ix)
	if err := ix.Save(); err != nil {
		t.Fatal(err)
	}
	ix.Close()
	a, err := OpenReadOnly(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenReadOnly(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if n, err := b.ImageCount(); err != nil || n != nImages {
		t.Fatalf("ImageCount = %d, %v", n, err)
	}
	// Int8 vectors in memory: a quarter of the values' bytes (at dimension 16, with a
	// scale and a file place per vector, under half in all); the stored f32 read back
	// exactly.
	cfg := smallConfig()
	cfg.VectorStorage = VectorStorageInt8
	c, err := OpenReadOnly(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ia, _ := a.Info()
	ic, _ := c.Info()
	if ic.VectorBytes*2 > ia.VectorBytes {
		t.Fatalf("int8 vectors take %d bytes, f32 %d", ic.VectorBytes, ia.VectorBytes)
	}
	va, _ := a.ImageVector(5, dim)
	vc, err := c.ImageVector(5, dim)
	if err != nil || !slices.Equal(va, vc) {
		t.Fatalf("image 5 from an int8 handle: %v %v vs %v", vc, err, va)
	}
	var e *Error
	if err := a.Save(); !errors.As(err, &e) || e.Code != StatusWrongState {
		t.Fatalf("save on a read-only handle: %v", err)
	}
	if _, err := Open(dir, nil); !errors.As(err, &e) || e.Code != StatusLocked {
		t.Fatalf("a writer beside readers: %v", err)
	}
}

func TestCloseInsideAProgressCallbackReturns(t *testing.T) {
	dir := t.TempDir()
	ix, err := Open(dir, smallConfig())
	if err != nil {
		t.Fatal(err)
	}
	fill(t, ix)
	closed := make(chan struct{})
	err = ix.TrainTokenizer(context.Background(), tokenizerConfig(), func(Progress) bool {
		ix.Close() // used to wait forever for the training that runs this callback
		close(closed)
		return true
	})
	<-closed
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("training after Close in its callback: %v", err)
	}
	if _, err := ix.ImageCount(); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	again, err := Open(dir, nil) // the directory lock went with the handle
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	again.Close()
}

func TestCloseStopsATrainingAndSearchesReturnAtOnce(t *testing.T) {
	ix, err := Open(t.TempDir(), smallConfig())
	if err != nil {
		t.Fatal(err)
	}
	fill(t, ix)
	started := make(chan struct{})
	var once sync.Once
	done := make(chan error)
	go func() {
		cfg := tokenizerConfig()
		cfg.Epochs = 100000
		done <- ix.TrainTokenizer(context.Background(), cfg, func(Progress) bool {
			once.Do(func() { close(started) })
			return true
		})
	}()
	<-started
	t0 := time.Now()
	ix.Close()
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("Close waited %v for the training", d)
	}
	t1 := time.Now()
	if _, err := ix.Search(ctx, "a query", SearchOptions{}); !errors.Is(err, ErrClosed) || time.Since(t1) > time.Second {
		t.Fatalf("search after Close: %v after %v", err, time.Since(t1))
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("training: %v", err)
	}
}

func TestSixteenGoroutinesSearchOneIndex(t *testing.T) {
	ix := trainedIndex(t)
	want := make([][]Hit, nImages)
	for id := range want {
		h, err := ix.Search(ctx, caption(id%topics, id, 1), SearchOptions{K: 5, BeamSize: 8})
		if err != nil {
			t.Fatal(err)
		}
		want[id] = h
	}
	// With a thread per core (the default) and with each search on its own thread.
	defer SetThreads(0)
	for _, threads := range []int{0, 1} {
		SetThreads(threads)
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for g := 0; g < 16; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := 0; i < 10; i++ {
					id := (g*7 + i) % nImages
					h, err := ix.Search(ctx, caption(id%topics, id, 1), SearchOptions{K: 5, BeamSize: 8})
					if err != nil {
						errs <- err
						return
					}
					if fmt.Sprint(h) != fmt.Sprint(want[id]) {
						errs <- fmt.Errorf("threads %d, goroutine %d query %d: %v, serially %v", threads, g, id, h, want[id])
						return
					}
				}
			}(g)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
}

// AVG_TEST_CLIP names the tiny CLIP checkpoint (projection 16) that
// cargo run --release --example tiny_checkpoint -- DIR CLIP_DIR writes.
func TestAddImageFilesReportsEachPhoto(t *testing.T) {
	clip := testDir(t, "AVG_TEST_CLIP", "a tiny CLIP checkpoint: cargo run --release --example tiny_checkpoint -- DIR CLIP_DIR")
	photos := filepath.Join("..", "..", "..", "tests", "data", "images")
	dir := t.TempDir()
	ix, err := Open(dir, &Config{ImageEncoderDir: clip}) // Dim 0: the encoder's
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	paths := []string{filepath.Join(photos, "rgba.png"), filepath.Join(photos, "missing.png"), filepath.Join(photos, "lossless.webp")}
	var batches int
	itemErrs, err := ix.AddImageFiles(context.Background(), []uint64{1, 2, 3}, paths, func(p Progress) bool {
		batches++
		return p.Images
	})
	if err != nil {
		t.Fatal(err)
	}
	var e *Error
	if itemErrs[0] != nil || itemErrs[2] != nil || !errors.As(itemErrs[1], &e) || e.Code != StatusIO || !strings.Contains(e.Message, "missing.png") {
		t.Fatalf("item errors: %v", itemErrs)
	}
	if n, _ := ix.ImageCount(); n != 2 || batches != 1 {
		t.Fatalf("%d images, %d progress reports", n, batches)
	}
	// A photo's words are matched by the dense scan, also through a read-only handle
	// that names the encoder (it turns the query text into a vector).
	if err := ix.AttachTexts(3, []string{"dog"}); err != nil {
		t.Fatal(err)
	}
	if err := ix.Save(); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenReadOnly(dir, &Config{ImageEncoderDir: clip})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if hits, err := ro.Search(context.Background(), "dog", SearchOptions{}); err != nil || len(hits) != 2 || hits[0].ID != 3 {
		t.Fatalf("read-only search by words: %v %v", hits, err)
	}
	info, err := ro.Info()
	if err != nil || info.Dim != dim || info.Images != 2 || info.Texts != 1 || !info.ImageEncoderOpen || !info.ReadOnly || info.ImageEncoderDir != clip {
		t.Fatalf("info: %+v %v", info, err)
	}
	plain, err := Open(t.TempDir(), smallConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.AddImageFiles(context.Background(), []uint64{1}, paths[:1], nil); !errors.As(err, &e) || e.Code != StatusWrongState {
		t.Fatalf("without an encoder: %v", err)
	}
}

func TestTheLinkedLibraryMatchesTheHeader(t *testing.T) {
	if ABIVersion() != HeaderABIVersion || !strings.HasPrefix(Version(), "0.") {
		t.Fatalf("library %s with ABI %d, header ABI %d", Version(), ABIVersion(), HeaderABIVersion)
	}
}

func TestZeroConfigFieldsTakeTheDefaultsAndStatusesHaveWords(t *testing.T) {
	ix, err := Open(filepath.Join(t.TempDir(), "index"), smallConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	fill(t, ix)
	// Epochs alone: batch size and learning rate used to go to libavg as 0, refused.
	if err := ix.TrainTokenizer(ctx, TokenizerConfig{Epochs: 1}, nil); err != nil {
		t.Fatalf("TokenizerConfig{Epochs: 1}: %v", err)
	}
	if got := StatusLocked.String(); got != "index locked by another handle" {
		t.Fatalf("StatusLocked.String() = %q", got)
	}
	if got := Status(1234).String(); got != "unknown status" {
		t.Fatalf("Status(1234).String() = %q", got)
	}
}
