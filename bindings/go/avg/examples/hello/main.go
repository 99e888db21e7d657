// Hello, libavg: no model at all. Open an index, add 1,000 vectors, and search with a
// query vector near image 123's: the default mode (ModeAuto) answers with the exact
// dense scan. Your vectors would come from an image encoder such as CLIP.
//
// usage: go run ./examples/hello INDEX_DIR
package main

import (
	"context"
	"fmt"
	"log"
	"math"
	"math/rand"
	"os"

	"libavg/avg"
)

const dim, count = 64, 1000

func toUnit(v []float32) {
	var norm float64
	for _, x := range v {
		norm += float64(x * x)
	}
	for i := range v {
		v[i] /= float32(math.Sqrt(norm))
	}
}

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: hello INDEX_DIR")
	}
	index, err := avg.Open(os.Args[1], &avg.Config{Dim: dim})
	if err != nil {
		log.Fatal(err)
	}
	defer index.Close()

	rng := rand.New(rand.NewSource(7))
	vectors := make([]float32, count*dim)
	ids := make([]uint64, count)
	for n := range ids {
		ids[n] = uint64(n)
		for i := 0; i < dim; i++ {
			vectors[n*dim+i] = rng.Float32() - 0.5
		}
		toUnit(vectors[n*dim : (n+1)*dim])
	}
	if err := index.AddImages(ids, nil, vectors, dim); err != nil {
		log.Fatal(err)
	}
	if err := index.Save(); err != nil {
		log.Fatal(err)
	}

	// A query near image 123: its vector plus a little noise.
	query := make([]float32, dim)
	for i := range query {
		query[i] = vectors[123*dim+i] + 0.05*(rng.Float32()-0.5)
	}
	toUnit(query)
	hits, err := index.Search(context.Background(), "", avg.SearchOptions{QueryVector: query})
	if err != nil {
		log.Fatal(err)
	}
	for _, h := range hits[:3] {
		fmt.Printf("image %d score %.3f\n", h.ID, h.Score)
	}
	if hits[0].ID != 123 {
		log.Fatal("the nearest image did not come first")
	}
	fmt.Println("found image 123 first")
}
