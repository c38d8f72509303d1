package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

func testKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func testAccount(t testing.TB) protocol.AccountID {
	return protocol.AccountIDFromKey(testKey(t).Public().(ed25519.PublicKey))
}

func testCID(t testing.TB, s string) cid.Cid {
	t.Helper()
	sum, err := mh.Sum([]byte(s), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, sum)
}

// fill opens a log in dir and appends n read events with reasons
// "reason-0" … and returns the log, open.
func fill(t *testing.T, dir string, priv ed25519.PrivateKey, n int) *Log {
	t.Helper()
	l, err := Open(dir, priv, Options{})
	if err != nil {
		t.Fatal(err)
	}
	subject := testAccount(t)
	for i := range n {
		if _, err := l.Append(context.Background(), Event{Kind: keyshare.AuditRead, Account: subject, Subject: subject,
			Records: []cid.Cid{testCID(t, fmt.Sprint(i))}, Rule: keyshare.RuleReadSubject, Reason: fmt.Sprintf("reason-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func TestLogAppendListReopen(t *testing.T) {
	dir, priv := t.TempDir(), testKey(t)
	l := fill(t, dir, priv, 3)
	ctx := context.Background()
	all, err := l.List(ctx, Filter{})
	if err != nil || len(all) != 3 {
		t.Fatalf("List: %d entries, %v", len(all), err)
	}
	for i, e := range all {
		if e.Seq != uint64(i) || e.Reason != fmt.Sprintf("reason-%d", i) || e.Kind != keyshare.AuditRead {
			t.Fatalf("entry %d: %+v", i, e)
		}
	}
	one, err := l.List(ctx, Filter{Record: testCID(t, "1")})
	if err != nil || len(one) != 1 || one[0].Seq != 1 {
		t.Fatalf("List by record: %+v, %v", one, err)
	}
	if none, _ := l.List(ctx, Filter{Since: time.Now().Add(time.Hour)}); len(none) != 0 {
		t.Fatalf("List since the future: %+v", none)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, Event{Kind: keyshare.AuditRead}); err == nil {
		t.Fatal("Append after Close succeeded")
	}
	// Reopened, it continues the chain.
	l = fill(t, dir, priv, 2)
	defer l.Close()
	rep, err := l.Verify(ctx)
	if err != nil || rep.Entries != 5 {
		t.Fatalf("Verify after reopen: %+v, %v", rep, err)
	}
	all, _ = l.List(ctx, Filter{})
	if all[4].Seq != 4 {
		t.Fatalf("last entry after reopen: %+v", all[4])
	}
}

// frames returns the log file's frames.
func frames(t *testing.T, dir string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, Folder, LogFile))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	br := bufio.NewReader(bytes.NewReader(data))
	for {
		b, err := protocol.ReadFrame(br, protocol.MaxAuditEntrySize)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
}

func writeFrames(t *testing.T, dir string, fs [][]byte) {
	t.Helper()
	var buf bytes.Buffer
	for _, f := range fs {
		if err := protocol.WriteFrame(&buf, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, Folder, LogFile), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyTampering tampers with a closed log in every way Verify must
// catch and checks the line it reports.
func TestVerifyTampering(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(t *testing.T, dir string, fs [][]byte)
		want   string
	}{
		{"edited", func(t *testing.T, dir string, fs [][]byte) {
			fs[2] = bytes.Replace(fs[2], []byte("reason-2"), []byte("reason-X"), 1)
			writeFrames(t, dir, fs)
		}, "entry 2 was edited: its signature does not verify"},
		{"removed", func(t *testing.T, dir string, fs [][]byte) {
			writeFrames(t, dir, append(fs[:2:2], fs[3:]...))
		}, "entries 2 are missing (entry 3 follows entry 1): entries were removed"},
		{"reordered", func(t *testing.T, dir string, fs [][]byte) {
			fs[1], fs[2] = fs[2], fs[1]
			writeFrames(t, dir, fs)
		}, "entry 2 comes before entry 1: entries were reordered"},
		{"cut off the end", func(t *testing.T, dir string, fs [][]byte) {
			writeFrames(t, dir, fs[:3])
		}, "entries 3-4 were removed from the end (the signed head names entry 4)"},
		{"head removed", func(t *testing.T, dir string, fs [][]byte) {
			if err := os.Remove(filepath.Join(dir, Folder, HeadFile)); err != nil {
				t.Fatal(err)
			}
		}, "its head (head) is missing"},
		{"replaced by another key's entries", func(t *testing.T, dir string, fs [][]byte) {
			other := t.TempDir()
			o := fill(t, other, testKey(t), 5)
			o.Close()
			writeFrames(t, dir, frames(t, other))
		}, "entry 0 was signed by another node's key"},
		{"overwritten", func(t *testing.T, dir string, fs [][]byte) {
			path := filepath.Join(dir, Folder, LogFile)
			data, _ := os.ReadFile(path)
			copy(data[len(data)/2:], bytes.Repeat([]byte{0xff}, 16))
			os.WriteFile(path, data, 0o600)
		}, "audit log:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, priv := t.TempDir(), testKey(t)
			l := fill(t, dir, priv, 5)
			if rep, err := l.Verify(context.Background()); err != nil || len(rep.Problems) != 0 {
				t.Fatalf("intact log: %+v, %v", rep, err)
			}
			l.Close()
			c.tamper(t, dir, frames(t, dir))
			l, err := Open(dir, priv, Options{})
			if err != nil {
				t.Fatalf("Open after tampering: %v", err)
			}
			defer l.Close()
			rep, err := l.Verify(context.Background())
			if !errors.Is(err, ErrTampered) {
				t.Fatalf("Verify: %v (report %+v), want ErrTampered", err, rep)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Verify: %q, want it to say %q", err, c.want)
			}
		})
	}
}

// TestTornTail: a frame cut short by a crash is dropped at Open, and the
// log stays intact.
func TestTornTail(t *testing.T) {
	dir, priv := t.TempDir(), testKey(t)
	l := fill(t, dir, priv, 3)
	l.Close()
	path := filepath.Join(dir, Folder, LogFile)
	data, _ := os.ReadFile(path)
	fs := frames(t, dir)
	os.WriteFile(path, data[:len(data)-len(fs[2])/2], 0o600) // entry 2 half written…
	head := filepath.Join(dir, Folder, HeadFile)
	var buf bytes.Buffer
	buf.Write(fs[1])
	os.WriteFile(head, buf.Bytes(), 0o600) // …and its head never written
	l, err := Open(dir, priv, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if rep, err := l.Verify(context.Background()); err != nil || rep.Entries != 2 {
		t.Fatalf("Verify after a torn tail: %+v, %v", rep, err)
	}
	if e, err := l.Append(context.Background(), Event{Kind: keyshare.AuditRead}); err != nil || e.Seq != 2 {
		t.Fatalf("Append after a torn tail: %+v, %v", e, err)
	}
}

func TestDecodeAuditEntryRefuses(t *testing.T) {
	priv := testKey(t)
	e := &protocol.AuditEntry{Version: protocol.AuditVersion, Time: 1, Kind: "read"}
	enc, err := e.Sign(priv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := protocol.DecodeAuditEntry(enc); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]byte{
		"truncated": enc[:len(enc)-1],
		"too large": make([]byte, protocol.MaxAuditEntrySize+1),
		"flipped":   append(append([]byte{}, enc[:len(enc)-1]...), enc[len(enc)-1]^1),
	} {
		if _, err := protocol.DecodeAuditEntry(bad); err == nil {
			t.Errorf("%s entry decoded", name)
		}
	}
	long := &protocol.AuditEntry{Version: protocol.AuditVersion, Time: 1, Kind: strings.Repeat("k", protocol.MaxAuditText+1)}
	if _, err := long.Sign(priv); err == nil {
		t.Error("an entry with an overlong kind was signed")
	}
}
