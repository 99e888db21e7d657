package avg

import (
	"errors"
	"strings"
	"sync"
	"testing"
)

func TestSetLoggerHearsSavesUntilRemoved(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var heard []string
	SetLogger(func(level LogLevel, message string) {
		if level >= LogInfo && strings.Contains(message, dir) {
			mu.Lock()
			heard = append(heard, message)
			mu.Unlock()
		}
	}, LogInfo)
	ix, err := Open(dir, &Config{Dim: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if err := ix.Save(); err != nil {
		t.Fatal(err)
	}
	SetLogger(nil, LogInfo)
	if err := ix.Save(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	saves := 0
	for _, m := range heard {
		if strings.HasPrefix(m, "saved ") {
			saves++
		}
	}
	// The open creates the index (a first save) and Save saves again; the last is unheard.
	if saves != 2 {
		t.Fatalf("heard %q", heard)
	}
}

func TestCloseInsideALogCallbackReturns(t *testing.T) {
	dir := t.TempDir()
	ix, err := Open(dir, &Config{Dim: 2})
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{}, 1)
	SetLogger(func(level LogLevel, message string) {
		if strings.HasPrefix(message, "saved "+dir) {
			ix.Close() // used to wait forever for the Save that logs
			closed <- struct{}{}
		}
	}, LogInfo)
	defer SetLogger(nil, LogInfo)
	if err := ix.Save(); err != nil {
		t.Fatal(err)
	}
	<-closed
	if _, err := ix.ImageCount(); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	again, err := Open(dir, nil) // the directory lock went with the handle
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	again.Close()
}
