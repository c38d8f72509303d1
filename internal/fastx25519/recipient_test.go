package fastx25519

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/cryptotest"

	"filippo.io/age"
	"golang.org/x/crypto/curve25519"

	"github.com/blockmrs/blockmrs/internal/stocktools"
)

// newIdentity returns a fresh age identity and both of our recipients
// for it (recipientsFor).
func newIdentity(tb testing.TB) (*age.X25519Identity, *Recipient, *Recipient) {
	tb.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		tb.Fatal(err)
	}
	pub, known := recipientsFor(tb, id)
	return id, pub, known
}

// recipientsFor returns our two recipients for id: from its public key
// only, and knowing its secret.
func recipientsFor(tb testing.TB, id *age.X25519Identity) (*Recipient, *Recipient) {
	tb.Helper()
	pub, err := FromAge(id.Recipient())
	if err != nil {
		tb.Fatal(err)
	}
	known, err := ForIdentity(id)
	if err != nil {
		tb.Fatal(err)
	}
	return pub, known
}

// TestExchangeMatchesX25519 checks both fast multiplications against the
// generic ladder for many random scalars: the share against
// X25519(e, basepoint), the shared secret (from the public key, and from
// the known secret) against X25519(e, K).
func TestExchangeMatchesX25519(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 300
	}
	e := make([]byte, curve25519.ScalarSize)
	for i := range n {
		_, pub, known := newIdentity(t)
		if _, err := rand.Read(e); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			clear(e) // the edges of the scalar range too
		} else if i == 1 {
			copy(e, bytes.Repeat([]byte{0xff}, len(e)))
		}
		wantShare, err := curve25519.X25519(e, curve25519.Basepoint)
		if err != nil {
			t.Fatal(err)
		}
		wantShared, err := curve25519.X25519(e, pub.pub[:])
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []*Recipient{pub, known} {
			share, shared, err := r.exchange(e)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(share, wantShare) || !bytes.Equal(shared, wantShared) {
				t.Fatalf("scalar %x (known secret %v): share %x shared %x, want %x and %x", e, r.secret != nil, share, shared, wantShare, wantShared)
			}
		}
	}
}

// TestWrapIsAgesStanza checks that, from the same random bytes, Wrap
// writes the very stanza age's X25519Recipient writes.
func TestWrapIsAgesStanza(t *testing.T) {
	for seed := range uint64(20) {
		_, pub, known := newIdentity(t)
		ageRcpt, err := age.ParseX25519Recipient(encodeBech32("age", pub.pub[:]))
		if err != nil {
			t.Fatal(err)
		}
		fileKey := bytes.Repeat([]byte{byte(seed)}, 16)
		cryptotest.SetGlobalRandom(t, seed)
		want, err := ageRcpt.Wrap(fileKey)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []*Recipient{pub, known} {
			cryptotest.SetGlobalRandom(t, seed)
			got, err := r.Wrap(fileKey)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].Type != want[0].Type || strings.Join(got[0].Args, " ") != strings.Join(want[0].Args, " ") || !bytes.Equal(got[0].Body, want[0].Body) {
				t.Fatalf("seed %d (known secret %v): stanza %+v, age's %+v", seed, r.secret != nil, got[0], want[0])
			}
		}
	}
}

// TestAgeDecrypts encrypts with each recipient and decrypts with
// filippo.io/age's X25519Identity; a different identity is refused.
func TestAgeDecrypts(t *testing.T) {
	id, pub, known := newIdentity(t)
	other, _, _ := newIdentity(t)
	msg := []byte("a sealed envelope")
	for _, r := range []*Recipient{pub, known} {
		ct := encrypt(t, r, msg)
		rd, err := age.Decrypt(bytes.NewReader(ct), id)
		if err != nil {
			t.Fatalf("known secret %v: %v", r.secret != nil, err)
		}
		if got, err := io.ReadAll(rd); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("known secret %v: decrypted %q, %v", r.secret != nil, got, err)
		}
		if _, err := age.Decrypt(bytes.NewReader(ct), other); err == nil {
			t.Fatal("another identity decrypted it")
		}
	}
}

// TestStockAgeDecrypts has the stock age tool decrypt what each recipient
// wrote, with the identity written by age-keygen.
func TestStockAgeDecrypts(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key.txt")
	stocktools.RunTool(t, nil, stocktools.AgeKeygen(t), "-o", keyFile)
	keyText, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	var id *age.X25519Identity
	for _, line := range strings.Split(string(keyText), "\n") {
		if strings.HasPrefix(line, "AGE-SECRET-KEY-1") {
			if id, err = age.ParseX25519Identity(line); err != nil {
				t.Fatal(err)
			}
		}
	}
	if id == nil {
		t.Fatalf("no identity in age-keygen's output:\n%s", keyText)
	}
	pub, known := recipientsFor(t, id)
	msg := stocktools.PseudoRandomBytes("fastx25519 stock age", 200<<10)
	for i, r := range []*Recipient{pub, known} {
		ctFile := filepath.Join(dir, "ct"+string(rune('0'+i)))
		if err := os.WriteFile(ctFile, encrypt(t, r, msg), 0o600); err != nil {
			t.Fatal(err)
		}
		got := stocktools.RunTool(t, nil, stocktools.Age(t), "-d", "-i", keyFile, ctFile)
		if !bytes.Equal(got, msg) {
			t.Fatalf("known secret %v: stock age decrypted %d bytes, not the %d written", r.secret != nil, len(got), len(msg))
		}
	}
}

// TestLowOrderRefused checks that Wrap refuses the low-order points (and
// their non-canonical encodings) that age refuses, with ErrLowOrder.
func TestLowOrderRefused(t *testing.T) {
	points := []string{
		"0000000000000000000000000000000000000000000000000000000000000000", // 0
		"0100000000000000000000000000000000000000000000000000000000000000", // 1
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", // order 8
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157", // order 8
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p-1
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p (0)
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p+1 (1)
	}
	for _, h := range points {
		p, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		s := encodeBech32("age", p)
		ageRcpt, err := age.ParseX25519Recipient(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ageRcpt.Wrap(make([]byte, 16)); err == nil {
			t.Fatalf("%s: age wrapped to it (not a low-order point?)", h)
		}
		r, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Wrap(make([]byte, 16)); !errors.Is(err, ErrLowOrder) {
			t.Fatalf("%s: Wrap = %v, want ErrLowOrder", h, err)
		}
	}
}

// encrypt age-encrypts msg to r.
func encrypt(t *testing.T, r age.Recipient, msg []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
