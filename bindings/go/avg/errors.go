package avg

/*
#include <stdlib.h>
#include "avg.h"
*/
import "C"

import (
	"errors"
	"fmt"
)

// Status is libavg's status code (AvgStatus).
type Status int

// Status codes; see include/avg.h.
const (
	StatusOK                 Status = C.AVG_STATUS_OK
	StatusNullPointer        Status = C.AVG_STATUS_NULL_POINTER
	StatusInvalidUTF8        Status = C.AVG_STATUS_INVALID_UTF8
	StatusInvalidArgument    Status = C.AVG_STATUS_INVALID_ARGUMENT
	StatusDimensionMismatch  Status = C.AVG_STATUS_DIMENSION_MISMATCH
	StatusNonFinite          Status = C.AVG_STATUS_NON_FINITE
	StatusDuplicateID        Status = C.AVG_STATUS_DUPLICATE_ID
	StatusUnknownID          Status = C.AVG_STATUS_UNKNOWN_ID
	StatusIO                 Status = C.AVG_STATUS_IO
	StatusCorrupt            Status = C.AVG_STATUS_CORRUPT
	StatusUnsupportedVersion Status = C.AVG_STATUS_UNSUPPORTED_VERSION
	StatusConfigMismatch     Status = C.AVG_STATUS_CONFIG_MISMATCH
	StatusLocked             Status = C.AVG_STATUS_LOCKED
	StatusWrongState         Status = C.AVG_STATUS_WRONG_STATE
	StatusDevice             Status = C.AVG_STATUS_DEVICE
	StatusModel              Status = C.AVG_STATUS_MODEL
	StatusBufferTooSmall     Status = C.AVG_STATUS_BUFFER_TOO_SMALL
	StatusLimit              Status = C.AVG_STATUS_LIMIT
	StatusCancelled          Status = C.AVG_STATUS_CANCELLED
	StatusInvalidImage       Status = C.AVG_STATUS_INVALID_IMAGE
	StatusPanic              Status = C.AVG_STATUS_PANIC
)

// Error is a failed libavg call: its status code and message.
type Error struct {
	Code    Status
	Message string
}

// String is the status's meaning in a few words ("locked", "invalid image").
func (s Status) String() string { return C.GoString(C.avg_status_string(C.int(s))) }

func (e *Error) Error() string { return fmt.Sprintf("avg: %s (status %d)", e.Message, int(e.Code)) }

// ErrClosed is returned by calls on a closed Index.
var ErrClosed = errors.New("avg: index is closed")

// Is makes errors.Is(err, ErrLocked) and the like true for an *Error of that status.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Code == e.Code
}

// Sentinels for errors.Is, one per status a host may act on; the *Error returned also
// carries the message.
var (
	ErrInvalidArgument    = &Error{Code: StatusInvalidArgument}
	ErrDimensionMismatch  = &Error{Code: StatusDimensionMismatch}
	ErrNonFinite          = &Error{Code: StatusNonFinite}
	ErrDuplicateID        = &Error{Code: StatusDuplicateID}
	ErrUnknownID          = &Error{Code: StatusUnknownID}
	ErrIO                 = &Error{Code: StatusIO}
	ErrCorrupt            = &Error{Code: StatusCorrupt}
	ErrUnsupportedVersion = &Error{Code: StatusUnsupportedVersion}
	ErrConfigMismatch     = &Error{Code: StatusConfigMismatch}
	ErrLocked             = &Error{Code: StatusLocked}
	ErrWrongState         = &Error{Code: StatusWrongState}
	ErrDevice             = &Error{Code: StatusDevice}
	ErrModel              = &Error{Code: StatusModel}
	ErrLimit              = &Error{Code: StatusLimit}
	ErrCancelled          = &Error{Code: StatusCancelled}
	ErrInvalidImage       = &Error{Code: StatusInvalidImage}
)
