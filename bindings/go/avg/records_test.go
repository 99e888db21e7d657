package avg

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRecordsReadBackAndRemove(t *testing.T) {
	ix, err := Open(t.TempDir(), &Config{Dim: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if err := ix.AddImages([]uint64{7, 3}, []string{"a.jpg", ""}, []float32{1, 0, 0.5, -2}, 2); err != nil {
		t.Fatal(err)
	}
	ids, err := ix.ImageIDs()
	if err != nil || fmt.Sprint(ids) != "[7 3]" {
		t.Fatalf("ids %v, %v", ids, err)
	}
	if key, err := ix.ImageKey(7); err != nil || key != "a.jpg" {
		t.Fatalf("key %q, %v", key, err)
	}
	if v, err := ix.ImageVector(3, 2); err != nil || fmt.Sprint(v) != "[0.5 -2]" {
		t.Fatalf("vector %v, %v", v, err)
	}
	if _, err := ix.ImageVector(3, 5); !errors.Is(err, ErrDimensionMismatch) {
		t.Fatalf("dim 5: %v", err)
	}
	if err := ix.AddImages([]uint64{7}, nil, []float32{0, 1}, 2); !errors.Is(err, ErrDuplicateID) || errors.Is(err, ErrUnknownID) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := ix.RemoveImage(7); err != nil {
		t.Fatal(err)
	}
	if err := ix.RemoveImage(7); !errors.Is(err, ErrUnknownID) {
		t.Fatalf("removed twice: %v", err)
	}
	if _, err := ix.ImageKey(7); !errors.Is(err, ErrUnknownID) {
		t.Fatalf("key of a removed image: %v", err)
	}
	if _, err := Open(t.TempDir(), &Config{}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Dim 0: %v", err)
	}
}

func TestSearchBatchAnswersAsSearchDoes(t *testing.T) {
	ix := trainedIndex(t)
	queries := make([]string, 20) // more than one chunk
	for i := range queries {
		queries[i] = caption(i%topics, i, 1)
	}
	opts := SearchOptions{K: 5, BeamSize: 8}
	batch, err := ix.SearchBatch(context.Background(), queries, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	// The same hits; scores to rounding (a batch multiplies other matrix shapes).
	for i, q := range queries {
		one, err := ix.Search(ctx, q, opts)
		same := err == nil && len(one) == len(batch[i])
		for j := 0; same && j < len(one); j++ {
			same = one[j].ID == batch[i][j].ID && math.Abs(float64(one[j].Score-batch[i][j].Score)) < 1e-4
		}
		if !same {
			t.Fatalf("query %d: %v alone, %v in the batch (%v)", i, one, batch[i], err)
		}
	}
	// Query vectors: rerank orders by the dot product, so the image's own vector comes first.
	v, err := ix.ImageVector(4, dim)
	if err != nil {
		t.Fatal(err)
	}
	hits, err := ix.Search(ctx, caption(4%topics, 4, 1), SearchOptions{K: 5, BeamSize: 20, Mode: ModeRerank, QueryVector: v})
	if err != nil || len(hits) == 0 || hits[0].ID != 4 {
		t.Fatalf("rerank by the image's own vector: %v, %v", hits, err)
	}
	if _, err := ix.SearchBatch(context.Background(), queries[:2], v, opts); !errors.Is(err, ErrDimensionMismatch) {
		t.Fatalf("one vector for two queries: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ix.SearchBatch(ctx, queries, nil, opts); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if _, err := ix.Search(ctx, queries[0], opts); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled search: %v", err)
	}
}

func TestAddImageBytesReportsEachPhoto(t *testing.T) {
	clip := testDir(t, "AVG_TEST_CLIP", "a tiny CLIP checkpoint: cargo run --release --example tiny_checkpoint -- DIR CLIP_DIR")
	good, err := os.ReadFile(filepath.Join("..", "..", "..", "tests", "data", "images", "rgba.png"))
	if err != nil {
		t.Fatal(err)
	}
	ix, err := Open(t.TempDir(), &Config{Dim: dim, CodebookSize: 32, VokenLen: 3, ImageEncoderDir: clip})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	itemErrs, err := ix.AddImageBytes(context.Background(), []uint64{1, 2}, [][]byte{good, []byte("not a photo")}, nil)
	if err != nil || itemErrs[0] != nil || !errors.Is(itemErrs[1], ErrInvalidImage) {
		t.Fatalf("%v, %v", itemErrs, err)
	}
	if n, _ := ix.ImageCount(); n != 1 {
		t.Fatalf("%d images", n)
	}
}

// An index of two images given as vectors, read back; no model is needed.
func ExampleIndex_ImageIDs() {
	dir, _ := os.MkdirTemp("", "avg-example")
	defer os.RemoveAll(dir)
	ix, err := Open(dir, &Config{Dim: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ix.Close()
	_ = ix.AddImages([]uint64{10, 11}, []string{"beach.jpg", "dog.jpg"}, []float32{1, 0, 0, 1}, 2)
	ids, _ := ix.ImageIDs()
	key, _ := ix.ImageKey(11)
	err = ix.AddImages([]uint64{10}, nil, []float32{0, 0}, 2)
	fmt.Println(ids, key, errors.Is(err, ErrDuplicateID))
	// Output: [10 11] dog.jpg true
}

func TestCaptionsReadBackAndVokensWaitForTheTokenizer(t *testing.T) {
	ix, err := Open(t.TempDir(), &Config{Dim: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if err := ix.AddImages([]uint64{5}, nil, []float32{1, 0}, 2); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("a long caption ", 40) // past the first buffer's 256 bytes
	if err := ix.AddCaptions(5, []string{"a dog", long}, nil, 2); err != nil {
		t.Fatal(err)
	}
	if err := ix.AddCaptions(5, []string{"with a vector"}, []float32{0, 1}, 2); err != nil {
		t.Fatal(err)
	}
	if n, err := ix.CaptionCount(); err != nil || n != 3 {
		t.Fatalf("CaptionCount %d, %v", n, err)
	}
	if n, err := ix.ImageCaptionCount(5); err != nil || n != 3 {
		t.Fatalf("ImageCaptionCount %d, %v", n, err)
	}
	if s, err := ix.CaptionText(5, 1); err != nil || s != long {
		t.Fatalf("CaptionText %q, %v", s, err)
	}
	if v, err := ix.CaptionVector(5, 0, 2); err != nil || v != nil {
		t.Fatalf("a caption without a vector: %v, %v", v, err)
	}
	if v, err := ix.CaptionVector(5, 2, 2); err != nil || fmt.Sprint(v) != "[0 1]" {
		t.Fatalf("CaptionVector %v, %v", v, err)
	}
	if _, err := ix.CaptionText(5, 3); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("caption 3 of 3: %v", err)
	}
	if _, err := ix.ImageCaptionCount(6); !errors.Is(err, ErrUnknownID) {
		t.Fatalf("unknown image: %v", err)
	}
	if _, err := ix.ImageVokens(5); !errors.Is(err, ErrWrongState) {
		t.Fatalf("vokens before the tokenizer: %v", err)
	}
	if _, err := ix.TokenizerStats(); !errors.Is(err, ErrWrongState) {
		t.Fatalf("stats before the tokenizer: %v", err)
	}
}

func TestVokensAndTokenizerStatsAfterTraining(t *testing.T) {
	ix := trainedIndex(t)
	cfg := smallConfig()
	v, err := ix.ImageVokens(3)
	if err != nil || len(v) != cfg.VokenLen+1 {
		t.Fatalf("vokens %v, %v", v, err)
	}
	for level, code := range v[:cfg.VokenLen] {
		if code >= uint32(cfg.CodebookSize) {
			t.Fatalf("code %d at level %d is not below N %d", code, level, cfg.CodebookSize)
		}
	}
	s, err := ix.TokenizerStats()
	if err != nil || len(s.UsagePerLevel) != cfg.VokenLen {
		t.Fatalf("stats %+v, %v", s, err)
	}
	for _, u := range s.UsagePerLevel {
		if u <= 0 || u > 1 {
			t.Fatalf("usage %v out of (0, 1]", s.UsagePerLevel)
		}
	}
	// No image shares its codes (group 1), or the largest group is among the collided.
	if s.CollidedImages > nImages || s.LargestCollisionGroup < 1 || s.LargestCollisionGroup > max(s.CollidedImages, 1) {
		t.Fatalf("collisions %+v", s)
	}
	if pending, err := ix.HasPendingTokenizer(); err != nil || pending {
		t.Fatalf("pending tokenizer %v, %v", pending, err)
	}
}
