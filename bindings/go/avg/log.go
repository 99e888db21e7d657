package avg

/*
#include "avg.h"

extern void avgGoLog(void *user_data, AvgLogLevel level, char *message);
*/
import "C"

import (
	"sync/atomic"
	"unsafe"
)

// LogLevel is how much a log message matters.
type LogLevel int

// Log levels; see AvgLogLevel in avg.h.
const (
	LogDebug LogLevel = C.AVG_LOG_LEVEL_DEBUG // each search's time
	LogInfo  LogLevel = C.AVG_LOG_LEVEL_INFO  // opens, saves, trainings finished
	LogWarn  LogLevel = C.AVG_LOG_LEVEL_WARN  // something libavg worked around
)

var logger atomic.Pointer[func(LogLevel, string)]

// logging counts log callbacks running now: a Close inside one cannot wait for the call
// that logs.
var logging atomic.Int32

//export avgGoLog
func avgGoLog(_ unsafe.Pointer, level C.AvgLogLevel, message *C.char) {
	if f := logger.Load(); f != nil {
		logging.Add(1)
		defer logging.Add(-1)
		(*f)(LogLevel(level), C.GoString(message))
	}
}

// SetLogger sends libavg's log messages of min and above to f, on the goroutine whose
// call did the work; nil turns logging off (the default). Process-wide. f must not call
// SetLogger; it may Close an index (the one whose call logs, too: see Close).
func SetLogger(f func(level LogLevel, message string), min LogLevel) {
	if f == nil {
		C.avg_set_log_callback(nil, C.enum_AvgLogLevel(min), nil)
		logger.Store(nil)
		return
	}
	logger.Store(&f)
	C.avg_set_log_callback(C.AvgLogFn(unsafe.Pointer(C.avgGoLog)), C.enum_AvgLogLevel(min), nil)
}
