package keyshare

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// A session's cache of opened envelopes: listing fills it and later
// listings use it, but what the account may read is decided afresh every
// time (a revocation takes effect with the cache warm), and locking drops
// it and closes it to a copy of the keys still in use.
func TestSessionCacheOfOpenedEnvelopes(t *testing.T) {
	ctx := context.Background()
	patient := newParty(t, "Pat", protocol.RolePatient)
	doctor := newParty(t, "Dr Who", protocol.RoleClinician)
	var prof bytes.Buffer
	if err := doctor.repo.ExportProfile(ctx, &prof, doctor.keys.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := patient.repo.ImportCAR(ctx, &prof); err != nil {
		t.Fatal(err)
	}
	rec, err := patient.repo.AddRecord(ctx, patient.keys, NewRecord{Title: "X-ray report", Kind: protocol.KindNote,
		MediaType: "text/plain", Body: strings.NewReader("no fracture")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := patient.repo.Grant(ctx, patient.keys, []cid.Cid{rec}, doctor.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	send(t, patient, doctor)

	s := NewSessions(doctor.repo)
	defer s.Close()
	if _, err := s.Unlock(ctx, doctor.keys.ID, nil, 0); err != nil {
		t.Fatal(err)
	}
	k, err := s.Keys(doctor.keys.ID)
	if err != nil {
		t.Fatal(err)
	}
	titles := func(k *Keys) []string {
		t.Helper()
		l, err := doctor.repo.List(ctx, k, false)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range l {
			out = append(out, r.Title)
		}
		return out
	}
	if got := titles(k); len(got) != 1 || got[0] != "X-ray report" {
		t.Fatalf("doctor lists %q", got)
	}
	if n := k.opened.len(); n != 1 {
		t.Fatalf("%d envelopes cached after one listing, want 1", n)
	}
	// The next listing opens from the cache: keys of the session whose
	// age identity is another's (so nothing could be decrypted) still
	// list the title.
	other, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	wrong := k.clone()
	wrong.Age = other
	if got := titles(wrong); len(got) != 1 || got[0] != "X-ray report" {
		t.Fatalf("listing from the cache gives %q", got)
	}
	if l, err := doctor.repo.List(ctx, &Keys{ID: wrong.ID, Sign: wrong.Sign, Age: other}, false); err != nil || len(l) != 1 || l[0].Title != "" || l[0].Error == "" {
		t.Fatalf("without the session's cache the other identity lists %+v (%v)", l, err)
	}

	// Revoked: gone from the doctor's list and unreadable, with the
	// cache warm.
	if _, err := patient.repo.Revoke(ctx, patient.keys, []cid.Cid{rec}, doctor.keys.ID); err != nil {
		t.Fatal(err)
	}
	send(t, patient, doctor)
	if got := titles(k); len(got) != 0 {
		t.Fatalf("after the revocation the doctor lists %q", got)
	}
	if _, _, err := doctor.repo.OpenRecord(ctx, k, rec); !errors.Is(err, ErrNoAccess) {
		t.Fatalf("open after the revocation: %v", err)
	}
	l, err := doctor.repo.List(ctx, k, true)
	if err != nil || len(l) != 1 || l[0].Status != "revoked" || l[0].Readable || l[0].Title != "" {
		t.Fatalf("list --all after the revocation: %+v %v", l, err)
	}

	// Lock drops the cache; the copy of the keys still held works and
	// caches nothing; a new session starts empty.
	if !s.Lock(doctor.keys.ID) {
		t.Fatal("no session to lock")
	}
	if n := k.opened.len(); n != 0 {
		t.Fatalf("%d envelopes cached after lock", n)
	}
	if _, err := patient.repo.Grant(ctx, patient.keys, []cid.Cid{rec}, doctor.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	send(t, patient, doctor)
	if got := titles(k); len(got) != 1 || k.opened.len() != 0 {
		t.Fatalf("after lock the held keys list %q and cache %d", got, k.opened.len())
	}
	if _, err := s.Unlock(ctx, doctor.keys.ID, nil, 0); err != nil {
		t.Fatal(err)
	}
	k2, err := s.Keys(doctor.keys.ID)
	if err != nil {
		t.Fatal(err)
	}
	if k2.opened == k.opened || k2.opened.len() != 0 {
		t.Fatal("a new session shares the old session's cache")
	}
}

// A full cache drops half its entries and keeps taking new ones.
func TestOpenedCacheBound(t *testing.T) {
	c := newOpenedCache()
	for i := range maxOpened + 1 {
		c.put(openedKey([]byte{byte(i), byte(i >> 8), byte(i >> 16)}, nil), &opened{})
	}
	if n := c.len(); n != maxOpened/2+1 {
		t.Fatalf("%d entries after %d puts, want %d", n, maxOpened+1, maxOpened/2+1)
	}
	if openedKey([]byte("ab"), []byte("c")) == openedKey([]byte("a"), []byte("bc")) {
		t.Fatal("the cache key does not separate the wrapped key from the envelope")
	}
}
