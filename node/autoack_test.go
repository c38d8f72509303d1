package node

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

func ackParty(t *testing.T, name string, role protocol.Role, pass []byte) (*keyshare.Repo, *keyshare.Keys) {
	t.Helper()
	r, err := keyshare.Open(t.Context(), t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	k, err := r.CreateAccount(t.Context(), name, role, pass)
	if err != nil {
		t.Fatal(err)
	}
	return r, k
}

func carOf(t *testing.T, r *keyshare.Repo, id protocol.AccountID) *bytes.Buffer {
	t.Helper()
	var b bytes.Buffer
	if _, err := r.ExportCAR(t.Context(), &b, id); err != nil {
		t.Fatal(err)
	}
	return &b
}

// A record a clinician writes about a patient is acknowledged by her node
// as it arrives while she has a session open — not before, and not when
// she has none — and that background work does not keep her session
// open.
func TestRecordsAcknowledgedOnArrivalWhileUnlocked(t *testing.T) {
	ctx := t.Context()
	pat, pk := ackParty(t, "Pat", protocol.RolePatient, []byte("pw"))
	doc, dk := ackParty(t, "Doc", protocol.RoleClinician, nil)
	if _, err := doc.ImportCAR(ctx, carOf(t, pat, pk.ID)); err != nil {
		t.Fatal(err)
	}
	write := func(title string) cid.Cid {
		c, err := doc.AddRecord(ctx, dk, keyshare.NewRecord{Title: title, Kind: protocol.KindNote, MediaType: "text/plain", Subject: pk.ID, Body: strings.NewReader(title)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pat.ImportCAR(ctx, carOf(t, doc, dk.ID)); err != nil {
			t.Fatal(err)
		}
		return c
	}
	proof := func(c cid.Cid) keyshare.Proof {
		a, err := pat.AccessFor(ctx, c, pk.ID)
		if err != nil {
			t.Fatal(err)
		}
		return a.Proof
	}
	sessions := keyshare.NewSessions(pat)
	defer sessions.Close()
	log := slog.New(slog.DiscardHandler)

	first := write("lipids")
	acknowledgeOpen(ctx, pat, sessions, log, nil) // no session: nothing
	if p := proof(first); p != keyshare.ProofPending {
		t.Fatalf("acknowledged without a session: %s", p)
	}
	if _, err := sessions.Unlock(ctx, pk.ID, []byte("pw"), time.Hour); err != nil {
		t.Fatal(err)
	}
	before := sessions.List()[0].Expires
	acknowledgeOpen(ctx, pat, sessions, log, nil)
	if p := proof(first); p != keyshare.ProofAcknowledged {
		t.Fatalf("the periodic pass did not acknowledge: %s", p)
	}
	if after := sessions.List()[0].Expires; !after.Equal(before) {
		t.Fatal("background acknowledging counted as use of the session")
	}

	// Running as in the daemon: a record arriving is acknowledged on the
	// chain change that brings it.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); acknowledgeArrivals(runCtx, pat, sessions, log) }()
	defer func() { stop(); <-done }()
	second := write("follow-up")
	deadline := time.Now().Add(10 * time.Second)
	for proof(second) != keyshare.ProofAcknowledged {
		if time.Now().After(deadline) {
			t.Fatal("a record arriving while unlocked was not acknowledged")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
