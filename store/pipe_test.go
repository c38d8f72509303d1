package store

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestChunkPipe(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 10000)
	p := newChunkPipe(4, 1000)
	go func() {
		for i := 0; i < len(data); i += 777 {
			if _, err := p.Write(data[i:min(i+777, len(data))]); err != nil {
				p.CloseWithError(err)
				return
			}
		}
		p.CloseWithError(nil)
	}()
	got, err := io.ReadAll(p)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, err %v", len(got), err)
	}

	// A writer's error reaches the reader after the buffered bytes.
	boom := errors.New("boom")
	p = newChunkPipe(4, 1000)
	p.Write([]byte("abc"))
	p.CloseWithError(boom)
	got, err = io.ReadAll(p)
	if string(got) != "abc" || !errors.Is(err, boom) {
		t.Fatalf("got %q, %v", got, err)
	}

	// A stopped reader unblocks a writer waiting on a full buffer.
	p = newChunkPipe(1, 10)
	stop := errors.New("importer failed")
	done := make(chan error)
	go func() {
		_, err := p.Write(make([]byte, 100))
		done <- err
	}()
	p.CloseRead(stop)
	if err := <-done; !errors.Is(err, stop) {
		t.Fatalf("writer got %v", err)
	}
}
