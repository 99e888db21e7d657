package avg

import (
	"context"
	"fmt"
	"os"
)

// exampleIndex opens a new index of dimension 2 in a temporary directory with four
// images: 1 and 2 point one way, 3 and 4 the other.
func exampleIndex(cfg *Config) (*Index, func()) {
	dir, _ := os.MkdirTemp("", "avg-example")
	ix, err := Open(dir, cfg)
	if err != nil {
		panic(err)
	}
	_ = ix.AddImages([]uint64{1, 2, 3, 4}, nil, []float32{1, 0, 0.9, 0.1, 0, 1, 0.1, 0.9}, 2)
	return ix, func() { ix.Close(); os.RemoveAll(dir) }
}

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "avg-example")
	defer os.RemoveAll(dir)
	// Zero CodebookSize and VokenLen take the defaults; with ImageEncoderDir set, a
	// zero Dim would take the encoder's.
	ix, err := Open(dir, &Config{Dim: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ix.Close()
	info, _ := ix.Info()
	fmt.Println(info.Dim, info.CodebookSize, info.VokenLen, info.Images)
	// Output: 2 1024 4 0
}

func ExampleIndex_Search() {
	ix, done := exampleIndex(&Config{Dim: 2})
	defer done()
	// Without an image encoder the host brings the query's vector; the default mode
	// scans every image.
	hits, err := ix.Search(context.Background(), "a red car", SearchOptions{K: 2, QueryVector: []float32{0, 1}})
	fmt.Println(hits[0].ID, hits[1].ID, err)
	// Output: 3 4 <nil>
}

func ExampleIndex_SearchByImage() {
	ix, done := exampleIndex(&Config{Dim: 2})
	defer done()
	hits, err := ix.SearchByImage(context.Background(), 1, SearchOptions{K: 1}) // image 1 itself left out
	fmt.Println(hits[0].ID, err)
	// Output: 2 <nil>
}

func ExampleIndex_TrainTokenizer() {
	ix, done := exampleIndex(&Config{Dim: 2, CodebookSize: 4, VokenLen: 1})
	defer done()
	cfg := DefaultTokenizerConfig()
	cfg.Epochs = 2
	err := ix.TrainTokenizer(context.Background(), cfg, nil)
	vokens, _ := ix.ImageVokens(1)
	fmt.Println(err, len(vokens)) // M codes and the disambiguator
	// Output: <nil> 2
}

// TrainGenerator needs a checkpoint directory (a T5, or a BERT-family encoder such as
// all-MiniLM-L6-v2); progress reports every step, and returning false stops.
func ExampleIndex_TrainGenerator() {
	ix, done := exampleIndex(&Config{Dim: 2, CodebookSize: 4, VokenLen: 1})
	defer done()
	ctx := context.Background()
	if err := ix.TrainTokenizer(ctx, DefaultTokenizerConfig(), nil); err != nil {
		fmt.Println(err)
		return
	}
	cfg := DefaultGeneratorConfig("models/all-MiniLM-L6-v2")
	err := ix.TrainGenerator(ctx, cfg, func(p Progress) bool {
		fmt.Printf("epoch %d/%d loss %.3f\n", p.Epoch+1, p.Epochs, p.Loss)
		return true
	})
	if err != nil {
		fmt.Println(err)
	}
}

// AddImageFiles needs an index opened with an image encoder (Config.ImageEncoderDir);
// each photo succeeds or fails alone.
func ExampleIndex_AddImageFiles() {
	dir, _ := os.MkdirTemp("", "avg-example")
	defer os.RemoveAll(dir)
	ix, err := Open(dir, &Config{ImageEncoderDir: "models/clip-vit-base-patch32"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ix.Close()
	photoErrs, err := ix.AddImageFiles(context.Background(), []uint64{1, 2}, []string{"beach.jpg", "dog.jpg"}, nil)
	for i, e := range photoErrs {
		if e != nil {
			fmt.Println("photo", i, "skipped:", e)
		}
	}
	if err != nil {
		fmt.Println(err)
	}
}
