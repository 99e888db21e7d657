// Quickstart in Go: index photos by file with a CLIP checkpoint, give each its file name
// as its words, and search them.
// usage: go run ./examples/quickstart INDEX_DIR CLIP_DIR QUERY PHOTO...
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"libavg/avg"
)

func main() {
	if len(os.Args) < 5 {
		log.Fatal("usage: quickstart INDEX_DIR CLIP_DIR QUERY PHOTO...")
	}
	indexDir, clipDir, query, paths := os.Args[1], os.Args[2], os.Args[3], os.Args[4:]
	ctx := context.Background()

	// The default shape (N 1024, M 4) holds libraries of any size; a zero Dim takes the
	// encoder's.
	ix, err := avg.Open(indexDir, &avg.Config{ImageEncoderDir: clipDir})
	if err != nil {
		log.Fatal(err)
	}
	defer ix.Close()

	// Each photo's id is its position; one that cannot be read is reported, not fatal.
	ids := make([]uint64, len(paths))
	for i := range paths {
		ids[i] = uint64(i)
	}
	photoErrs, err := ix.AddImageFiles(ctx, ids, paths, nil)
	if err != nil {
		log.Fatal(err)
	}
	added := 0
	for i, photoErr := range photoErrs {
		if photoErr != nil {
			fmt.Fprintln(os.Stderr, "skipped:", photoErr)
			continue
		}
		// Its words: an app attaches a title, tags or an album name.
		stem := strings.TrimSuffix(filepath.Base(paths[i]), filepath.Ext(paths[i]))
		if err := ix.AttachTexts(ids[i], []string{stem}); err != nil {
			log.Fatal(err)
		}
		added++
	}
	if err := ix.Save(); err != nil {
		log.Fatal(err)
	}
	total, err := ix.ImageCount()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d photos added, %d in the index\n", added, total)

	// The default mode picks the route: the dense scan for a library this size.
	hits, err := ix.Search(ctx, query, avg.SearchOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for _, h := range hits {
		fmt.Printf("%.3f  %s\n", h.Score, paths[h.ID])
	}
}
