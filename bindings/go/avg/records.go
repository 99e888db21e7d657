package avg

/*
#include <stdlib.h>
#include "avg.h"
*/
import "C"

import (
	"context"
	"fmt"
	"unsafe"
)

// RemoveImage removes an image and its captions (ErrUnknownID if there is none).
func (ix *Index) RemoveImage(id uint64) error {
	return ix.with(func(h *C.AvgIndex) error {
		var cerr *C.AvgError
		return check(C.avg_index_remove_image(h, C.uint64_t(id), &cerr), cerr)
	})
}

// ImageIDs lists the image ids in storage order.
func (ix *Index) ImageIDs() ([]uint64, error) {
	var ids []uint64
	err := ix.with(func(h *C.AvgIndex) error {
		// Images may be added between the count and the copy: grow and retry.
		for room := C.size_t(1024); ; {
			ids = make([]uint64, room)
			var n C.size_t
			var cerr *C.AvgError
			st := C.avg_index_image_ids(h, (*C.uint64_t)(unsafe.Pointer(&ids[0])), room, &n, &cerr)
			if st == C.AVG_STATUS_BUFFER_TOO_SMALL {
				C.avg_error_free(cerr)
				room = n + n/8 + 1
				continue
			}
			ids = ids[:min(n, room)]
			return check(st, cerr)
		}
	})
	return ids, err
}

// ImageKey is the external key of an image ("" if it has none).
func (ix *Index) ImageKey(id uint64) (string, error) {
	return ix.readString(func(h *C.AvgIndex, buf *C.char, room C.size_t, n *C.size_t, cerr **C.AvgError) C.enum_AvgStatus {
		return C.avg_index_image_key(h, C.uint64_t(id), buf, room, n, cerr)
	})
}

// readString reads a string the C convention's way: into a buffer grown and retried
// while the call answers BUFFER_TOO_SMALL with the length it needs.
func (ix *Index) readString(call func(h *C.AvgIndex, buf *C.char, room C.size_t, n *C.size_t, cerr **C.AvgError) C.enum_AvgStatus) (string, error) {
	var s string
	err := ix.with(func(h *C.AvgIndex) error {
		for room := C.size_t(256); ; {
			buf := make([]byte, room)
			var n C.size_t
			var cerr *C.AvgError
			st := call(h, (*C.char)(unsafe.Pointer(&buf[0])), room, &n, &cerr)
			if st == C.AVG_STATUS_BUFFER_TOO_SMALL {
				C.avg_error_free(cerr)
				room = n + 1
				continue
			}
			s = string(buf[:min(n, room)])
			return check(st, cerr)
		}
	})
	return s, err
}

// CaptionCount is the number of training captions in the index.
func (ix *Index) CaptionCount() (int, error) {
	var n C.size_t
	err := ix.with(func(h *C.AvgIndex) error {
		var cerr *C.AvgError
		return check(C.avg_index_caption_count(h, &n, &cerr), cerr)
	})
	return int(n), err
}

// ImageCaptionCount is the number of training captions of one image.
func (ix *Index) ImageCaptionCount(id uint64) (int, error) {
	var n C.size_t
	err := ix.with(func(h *C.AvgIndex) error {
		var cerr *C.AvgError
		return check(C.avg_index_image_caption_count(h, C.uint64_t(id), &n, &cerr), cerr)
	})
	return int(n), err
}

// CaptionText is the text of caption i of an image.
func (ix *Index) CaptionText(id uint64, i int) (string, error) {
	if i < 0 {
		return "", &Error{Code: StatusInvalidArgument, Message: fmt.Sprintf("caption index %d is negative", i)}
	}
	return ix.readString(func(h *C.AvgIndex, buf *C.char, room C.size_t, n *C.size_t, cerr **C.AvgError) C.enum_AvgStatus {
		return C.avg_index_caption_text(h, C.uint64_t(id), C.size_t(i), buf, room, n, cerr)
	})
}

// CaptionVector is the text vector of caption i of an image (dim floats), or nil when
// the caption was added without one.
func (ix *Index) CaptionVector(id uint64, i int, dim int) ([]float32, error) {
	if dim <= 0 || i < 0 {
		return nil, &Error{Code: StatusInvalidArgument, Message: fmt.Sprintf("caption %d, dim %d: both must be non-negative and dim positive", i, dim)}
	}
	v := make([]float32, dim)
	var has C.bool
	err := ix.with(func(h *C.AvgIndex) error {
		var cerr *C.AvgError
		return check(C.avg_index_caption_vector(h, C.uint64_t(id), C.size_t(i), floatPtr(v), C.size_t(dim), &has, &cerr), cerr)
	})
	if err != nil || !bool(has) {
		return nil, err
	}
	return v, nil
}

// ImageVokens is an image's voken sequence: its M codes, then its disambiguator
// (ErrWrongState before the tokenizer is trained).
func (ix *Index) ImageVokens(id uint64) ([]uint32, error) {
	var out []uint32
	err := ix.with(func(h *C.AvgIndex) error {
		// The sequence is M+1 long; the index's M is at most AVG_MAX_VOKEN_LEN.
		out = make([]uint32, C.AVG_MAX_VOKEN_LEN+1)
		var n C.size_t
		var cerr *C.AvgError
		st := C.avg_index_image_vokens(h, C.uint64_t(id), (*C.uint32_t)(unsafe.Pointer(&out[0])), C.size_t(len(out)), &n, &cerr)
		out = out[:min(int(n), len(out))]
		return check(st, cerr)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// HasPendingTokenizer reports whether a retrained tokenizer's vokens wait for a
// generator trained on them; searches use the previous vokens and generator until a
// full TrainGenerator ends.
func (ix *Index) HasPendingTokenizer() (bool, error) {
	var pending C.bool
	err := ix.with(func(h *C.AvgIndex) error {
		var cerr *C.AvgError
		return check(C.avg_index_has_pending_tokenizer(h, &pending, &cerr), cerr)
	})
	return bool(pending), err
}

// Info is an index's shape, counts and state (avg_index_info in avg.h).
type Info struct {
	Dim, CodebookSize, VokenLen int
	Images, Captions, Texts     int // Texts: attached texts, over all images
	TokenizerTrained            bool
	GeneratorTrained            bool
	PendingTokenizer            bool // a retrained tokenizer waits for its generator
	ImageEncoderOpen            bool // photos can be added and query vectors computed
	ImageEncoderDir             string
	ReadOnly                    bool
	VectorBytes                 int // memory the image vectors take in the open form
}

// Info reads what the index holds and can do now; ImageEncoderDir is the encoder the
// index records ("" for none), open or not.
func (ix *Index) Info() (Info, error) {
	var ci C.AvgIndexInfo
	err := ix.with(func(h *C.AvgIndex) error {
		var cerr *C.AvgError
		return check(C.avg_index_info(h, &ci, C.size_t(unsafe.Sizeof(ci)), &cerr), cerr)
	})
	if err != nil {
		return Info{}, err
	}
	dir, err := ix.readString(func(h *C.AvgIndex, buf *C.char, room C.size_t, n *C.size_t, cerr **C.AvgError) C.enum_AvgStatus {
		return C.avg_index_image_encoder_dir(h, buf, room, n, cerr)
	})
	return Info{
		Dim: int(ci.dim), CodebookSize: int(ci.codebook_size), VokenLen: int(ci.voken_len),
		Images: int(ci.images), Captions: int(ci.captions), Texts: int(ci.texts),
		TokenizerTrained: bool(ci.tokenizer_trained), GeneratorTrained: bool(ci.generator_trained),
		PendingTokenizer: bool(ci.pending_tokenizer), ImageEncoderOpen: bool(ci.image_encoder_open),
		ImageEncoderDir: dir, ReadOnly: bool(ci.read_only), VectorBytes: int(ci.vector_bytes),
	}, err
}

// TokenizerStats describes the current vokens: how much of the codebook each level
// uses and how many images share their M codes with another.
type TokenizerStats struct {
	// UsagePerLevel is the fraction of the N codes used at each of the M levels.
	UsagePerLevel []float32
	// CollidedImages share their M codes with another image (told apart by the
	// disambiguator); LargestCollisionGroup is the most images sharing one sequence of
	// M codes (1 when none collide, 0 without images).
	CollidedImages        int
	LargestCollisionGroup int
}

// TokenizerStats reads the current vokens' statistics (ErrWrongState before the
// tokenizer is trained).
func (ix *Index) TokenizerStats() (TokenizerStats, error) {
	var cs C.AvgTokenizerStats
	err := ix.with(func(h *C.AvgIndex) error {
		var cerr *C.AvgError
		return check(C.avg_index_tokenizer_stats(h, &cs, C.size_t(unsafe.Sizeof(cs)), &cerr), cerr)
	})
	if err != nil {
		return TokenizerStats{}, err
	}
	usage := make([]float32, int(cs.voken_len))
	for i := range usage {
		usage[i] = float32(cs.usage_per_level[i])
	}
	return TokenizerStats{UsagePerLevel: usage, CollidedImages: int(cs.collided_images), LargestCollisionGroup: int(cs.largest_collision_group)}, nil
}

// ImageVector is an image's vector (dim floats).
func (ix *Index) ImageVector(id uint64, dim int) ([]float32, error) {
	if dim <= 0 {
		return nil, &Error{Code: StatusInvalidArgument, Message: fmt.Sprintf("dim %d must be positive", dim)}
	}
	v := make([]float32, dim)
	err := ix.with(func(h *C.AvgIndex) error {
		var cerr *C.AvgError
		return check(C.avg_index_image_vector(h, C.uint64_t(id), floatPtr(v), C.size_t(dim), &cerr), cerr)
	})
	return v, err
}

// AddImageBytes adds photos from encoded bytes (JPEG, PNG, WebP), as AddImageFiles
// does from files: itemErrs[i] is nil or the *Error of photo i.
func (ix *Index) AddImageBytes(ctx context.Context, ids []uint64, photos [][]byte, progress func(Progress) bool) (itemErrs []error, err error) {
	if len(photos) != len(ids) {
		return nil, &Error{Code: StatusInvalidArgument, Message: fmt.Sprintf("%d ids but %d photos", len(ids), len(photos))}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	// C memory for the pointer and length arrays and the bytes: cgo lets C hold no Go
	// pointers inside other memory.
	n := C.size_t(len(ids))
	data := unsafe.Slice((**C.uint8_t)(C.malloc(n*C.size_t(unsafe.Sizeof((*C.uint8_t)(nil))))), len(ids))
	lens := unsafe.Slice((*C.size_t)(C.malloc(n*C.size_t(unsafe.Sizeof(C.size_t(0))))), len(ids))
	defer C.free(unsafe.Pointer(&data[0]))
	defer C.free(unsafe.Pointer(&lens[0]))
	for i, p := range photos {
		data[i], lens[i] = (*C.uint8_t)(C.CBytes(p)), C.size_t(len(p))
		defer C.free(unsafe.Pointer(data[i]))
	}
	return ix.addPhotos(ctx, ids, progress, func(h *C.AvgIndex, statuses *C.enum_AvgStatus, errs **C.AvgError, fn C.AvgProgressFn, ud unsafe.Pointer, cerr **C.AvgError) C.enum_AvgStatus {
		idp := (*C.uint64_t)(unsafe.Pointer(&ids[0]))
		return C.avg_index_add_image_bytes(h, idp, nil, &data[0], &lens[0], n, statuses, errs, nil, fn, ud, cerr)
	})
}
