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
	var key string
	err := ix.with(func(h *C.AvgIndex) error {
		for room := C.size_t(256); ; {
			buf := make([]byte, room)
			var n C.size_t
			var cerr *C.AvgError
			st := C.avg_index_image_key(h, C.uint64_t(id), (*C.char)(unsafe.Pointer(&buf[0])), room, &n, &cerr)
			if st == C.AVG_STATUS_BUFFER_TOO_SMALL {
				C.avg_error_free(cerr)
				room = n + 1
				continue
			}
			key = string(buf[:min(n, room)])
			return check(st, cerr)
		}
	})
	return key, err
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
