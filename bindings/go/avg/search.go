package avg

/*
#include <stdlib.h>
#include "avg.h"
*/
import "C"

import (
	"context"
	"fmt"
	"runtime"
	"unsafe"
)

// SearchOptions is how to answer a query; a zero field takes libavg's default. The
// options are documented on libavg's Rust SearchOptions; what differs is said here.
type SearchOptions struct {
	K        int // most hits (default 10); any number for the modes that rank images
	BeamSize int // default 20
	// Mode is the route that answers; the zero value, ModeAuto, takes the best the
	// index's state allows.
	Mode Mode
	// DenseWeight of a fused search: 0 takes the default (AVG_DEFAULT_DENSE_WEIGHT), a
	// negative value ranks by the codes alone.
	DenseWeight float32
	// MinCandidates widens a fused search whose best prefixes hold fewer images with
	// the prefixes the beam dropped, best first (prefix backoff); 0 takes the default
	// (AVG_DEFAULT_MIN_CANDIDATES), a negative value turns widening off.
	MinCandidates int
	// QueryVector (nil: none) is the query's vector for Search, needed by every mode
	// but ModeBeam when the index has no image encoder to compute it. SearchBatch takes
	// its vectors as an argument instead.
	QueryVector []float32
	// Allow, when non-nil, limits the search to the images with these ids (an album, a
	// date range): the filter works inside the search, which returns K hits whenever K
	// images are allowed. Unknown ids are skipped; an empty non-nil slice allows none.
	Allow []uint64
}

// emptyAllow is the non-NULL pointer of an empty allow-list (C memory: nothing is read).
var emptyAllow = (*C.uint64_t)(C.malloc(8))

// Mode is the route that answers a query (AVG_SEARCH_MODE_* in avg.h).
type Mode uint64

const (
	// ModeAuto: with a query vector, the exact dense scan up to
	// AVG_AUTO_DENSE_MAX_IMAGES images (and before any training), the quantiser's codes
	// beyond; without one, plain beam search once the generator is trained.
	ModeAuto Mode = C.AVG_SEARCH_MODE_AUTO
	// ModeBeam: the generator writes codes from the query text alone; K at most BeamSize.
	ModeBeam Mode = C.AVG_SEARCH_MODE_BEAM
	// ModeRerank: the beam's hits ordered by the dot product; K at most BeamSize.
	ModeRerank Mode = C.AVG_SEARCH_MODE_RERANK
	// ModeFused: every image under the generator's best code prefixes, ranked by code
	// log-probability + DenseWeight x (query vector . image vector).
	ModeFused Mode = C.AVG_SEARCH_MODE_FUSED
	// ModeQuantizer: as ModeFused, the prefixes from the tokenizer's quantisation of the
	// query vector: needs a trained tokenizer, no generator.
	ModeQuantizer Mode = C.AVG_SEARCH_MODE_QUANTIZER
	// ModeDense: the exact dense scan; needs no training.
	ModeDense Mode = C.AVG_SEARCH_MODE_DENSE
)

// Hit is an indexed image and its score, best first.
type Hit struct {
	ID    uint64
	Score float32
}

// cOptions is opts over libavg's defaults, reading dim floats per query at vectors; pin
// keeps the Go memory the options point to in place until the call returns.
func cOptions(opts SearchOptions, vectors []float32, dim int, pin *runtime.Pinner) (C.AvgSearchOptions, error) {
	var o C.AvgSearchOptions
	C.avg_search_options_default(&o, C.size_t(unsafe.Sizeof(o)), nil)
	if opts.K < 0 || opts.BeamSize < 0 {
		return o, &Error{Code: StatusInvalidArgument, Message: fmt.Sprintf("K %d and BeamSize %d must not be negative", opts.K, opts.BeamSize)}
	}
	// Each query's hits start K apart in what libavg writes, and callers make room for
	// them: a K above AVG_MAX_IMAGES, which libavg refuses, is refused before that.
	if opts.K > C.AVG_MAX_IMAGES {
		return o, &Error{Code: StatusLimit, Message: fmt.Sprintf("K %d exceeds the maximum %d", opts.K, C.AVG_MAX_IMAGES)}
	}
	if opts.K > 0 {
		o.k = C.size_t(opts.K)
	}
	if opts.BeamSize > 0 {
		o.beam_size = C.size_t(opts.BeamSize)
	}
	o.mode = C.uint64_t(opts.Mode)
	if opts.DenseWeight != 0 {
		o.dense_weight = C.float(max(opts.DenseWeight, 0))
	}
	if opts.MinCandidates != 0 {
		o.min_candidates = C.size_t(max(opts.MinCandidates, 0))
	}
	if len(vectors) > 0 {
		pin.Pin(&vectors[0])
		o.query_vectors, o.dim = floatPtr(vectors), C.size_t(dim)
	}
	switch {
	case opts.Allow == nil:
	case len(opts.Allow) == 0:
		o.allow_ids = emptyAllow
	default:
		pin.Pin(&opts.Allow[0])
		o.allow_ids, o.allow_count = (*C.uint64_t)(unsafe.Pointer(&opts.Allow[0])), C.size_t(len(opts.Allow))
	}
	return o, nil
}

// Search answers a text query. Safe to call from many goroutines at once. A ctx that is
// already done returns its error at once; once started, a search (one decoder pass per
// voken, tens of milliseconds) runs to its end.
func (ix *Index) Search(ctx context.Context, query string, opts SearchOptions) ([]Hit, error) {
	hits, err := ix.SearchBatch(ctx, []string{query}, opts.QueryVector, opts)
	if err != nil {
		return nil, err
	}
	return hits[0], nil
}

// batchChunk is how many queries go to libavg in one call: a cancelled context stops a
// batch between chunks.
const batchChunk = 16

// SearchBatch answers queries together (faster than one by one); vectors (nil: none)
// holds one query vector after another. Cancelling ctx stops it between chunks of 16
// queries, with an error wrapping ctx.Err().
func (ix *Index) SearchBatch(ctx context.Context, queries []string, vectors []float32, opts SearchOptions) ([][]Hit, error) {
	dim := 0
	if len(vectors) > 0 {
		if len(queries) == 0 || len(vectors)%len(queries) != 0 {
			return nil, &Error{Code: StatusDimensionMismatch, Message: fmt.Sprintf("%d floats for %d query vectors", len(vectors), len(queries))}
		}
		dim = len(vectors) / len(queries)
	}
	// The options C reads hold pointers into vectors and opts.Allow: pinned, as cgo
	// requires.
	var pin runtime.Pinner
	defer pin.Unpin()
	o, err := cOptions(opts, vectors, dim, &pin)
	if err != nil {
		return nil, err
	}
	room := int(o.k)
	out := make([][]Hit, 0, len(queries))
	for start := 0; start < len(queries); start += batchChunk {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("avg: search batch stopped after %d queries: %w", start, err)
		}
		part := queries[start:min(start+batchChunk, len(queries))]
		if len(vectors) > 0 {
			o.query_vectors = floatPtr(vectors[start*dim:])
		}
		hits, err := ix.searchChunk(part, &o, room)
		if err != nil {
			return nil, err
		}
		out = append(out, hits...)
	}
	return out, nil
}

func (ix *Index) searchChunk(queries []string, o *C.AvgSearchOptions, room int) ([][]Hit, error) {
	qp, free, err := cStrings("query", queries)
	if err != nil {
		return nil, err
	}
	defer free()
	hits := make([]C.AvgHit, max(room, 1)*len(queries))
	counts := make([]C.size_t, len(queries))
	err = ix.with(func(h *C.AvgIndex) error {
		var cerr *C.AvgError
		return check(C.avg_search_batch(h, qp, C.size_t(len(queries)), o, &hits[0], &counts[0], &cerr), cerr)
	})
	if err != nil {
		return nil, err
	}
	out := make([][]Hit, len(queries))
	for i := range out {
		out[i] = make([]Hit, int(counts[i]))
		for j := range out[i] {
			c := hits[i*int(o.k)+j]
			out[i][j] = Hit{ID: uint64(c.id), Score: float32(c.score)}
		}
	}
	return out, nil
}

// SearchByImage answers "more like this photo": the images nearest indexed image id
// (its stored vector as the query vector, no text), the image itself left out. Every
// Mode but ModeBeam, which reads no vector; opts.QueryVector is not read.
func (ix *Index) SearchByImage(ctx context.Context, id uint64, opts SearchOptions) ([]Hit, error) {
	return ix.searchOne(ctx, opts, func(h *C.AvgIndex, o *C.AvgSearchOptions, out *C.AvgHit, room C.size_t, n *C.size_t, cerr **C.AvgError) C.enum_AvgStatus {
		return C.avg_search_by_image(h, C.uint64_t(id), o, out, room, n, cerr)
	})
}

// SearchByPhotoFile is SearchByImage for a photo file, embedded by the index's image
// encoder (an error without one); the file is read as AddImageFiles reads one.
func (ix *Index) SearchByPhotoFile(ctx context.Context, path string, opts SearchOptions) ([]Hit, error) {
	if err := noNUL("path", path); err != nil {
		return nil, err
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	return ix.searchOne(ctx, opts, func(h *C.AvgIndex, o *C.AvgSearchOptions, out *C.AvgHit, room C.size_t, n *C.size_t, cerr **C.AvgError) C.enum_AvgStatus {
		return C.avg_search_by_photo_file(h, cpath, o, out, room, n, cerr)
	})
}

// SearchByPhotoBytes is SearchByPhotoFile for a photo's encoded bytes.
func (ix *Index) SearchByPhotoBytes(ctx context.Context, photo []byte, opts SearchOptions) ([]Hit, error) {
	data := C.CBytes(photo) // C memory: libavg keeps no Go pointer
	defer C.free(data)
	return ix.searchOne(ctx, opts, func(h *C.AvgIndex, o *C.AvgSearchOptions, out *C.AvgHit, room C.size_t, n *C.size_t, cerr **C.AvgError) C.enum_AvgStatus {
		return C.avg_search_by_photo_bytes(h, (*C.uint8_t)(data), C.size_t(len(photo)), o, out, room, n, cerr)
	})
}

// searchOne runs a one-query search call with room for opts.K hits.
func (ix *Index) searchOne(ctx context.Context, opts SearchOptions, call func(*C.AvgIndex, *C.AvgSearchOptions, *C.AvgHit, C.size_t, *C.size_t, **C.AvgError) C.enum_AvgStatus) ([]Hit, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	o, err := cOptions(opts, nil, 0, &pin) // opts.QueryVector is not read: vectors come as an argument
	if err != nil {
		return nil, err
	}
	hits := make([]C.AvgHit, o.k)
	var n C.size_t
	err = ix.with(func(h *C.AvgIndex) error {
		var cerr *C.AvgError
		return check(call(h, &o, &hits[0], o.k, &n, &cerr), cerr)
	})
	if err != nil {
		return nil, err
	}
	out := make([]Hit, int(n))
	for i := range out {
		out[i] = Hit{ID: uint64(hits[i].id), Score: float32(hits[i].score)}
	}
	return out, nil
}

// NearDuplicates returns groups of near-duplicate images, each group's ids ascending:
// images linked by pairs whose vectors have a dot product of at least minSimilarity (in
// (0, 1]). Candidates come from hashing, not from comparing every pair: a pair exactly
// at the threshold is found with probability 0.99, more similar pairs more surely.
func (ix *Index) NearDuplicates(minSimilarity float32) ([][]uint64, error) {
	var found *C.AvgGroups
	err := ix.with(func(h *C.AvgIndex) error {
		var cerr *C.AvgError
		return check(C.avg_index_near_duplicates(h, C.float(minSimilarity), &found, &cerr), cerr)
	})
	if err != nil {
		return nil, err
	}
	defer C.avg_groups_free(found)
	out := make([][]uint64, int(C.avg_groups_count(found)))
	for i := range out {
		var n C.size_t
		ids := C.avg_groups_get(found, C.size_t(i), &n)
		out[i] = append([]uint64(nil), unsafe.Slice((*uint64)(unsafe.Pointer(ids)), int(n))...)
	}
	return out, nil
}
