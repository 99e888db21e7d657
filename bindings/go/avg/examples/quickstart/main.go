// Quickstart in Go: index photos by file, learn them by their paths as texts, search.
// usage: go run ./examples/quickstart INDEX_DIR CLIP_DIR DIM TEXT_MODEL_DIR PHOTO...
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"strconv"

	"libavg/avg"
)

func main() {
	ctx, paths, ids := context.Background(), os.Args[5:], []uint64{}
	dim := must(strconv.Atoi(os.Args[3]))
	ix := must(avg.Open(os.Args[1], &avg.Config{Dim: dim, CodebookSize: 16, VokenLen: 2, ImageEncoderDir: os.Args[2]}))
	defer ix.Close()
	for i := range paths {
		ids = append(ids, uint64(i))
	}
	for i, photoErr := range must(ix.AddImageFiles(ctx, ids, paths, nil)) {
		if photoErr == nil { // its path as its text (an app: title, tags)
			must(0, ix.AttachTexts(ids[i], paths[i:i+1]))
		}
	}
	must(0, ix.TrainTokenizer(ctx, avg.DefaultTokenizerConfig(), nil))
	g := avg.DefaultGeneratorConfig(os.Args[4])
	g.Epochs = 20
	must(0, ix.TrainGenerator(ctx, g, nil))
	for _, h := range must(ix.Search(ctx, "rotated", avg.SearchOptions{Mode: avg.ModeFused})) { // query vector from CLIP
		fmt.Printf("%.3f  %s\n", h.Score, paths[h.ID])
	}
}

// must stops the program on an error (a real program handles it).
func must[T any](v T, err error) T {
	if err != nil {
		log.Fatal(err)
	}
	return v
}
