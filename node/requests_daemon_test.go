package node

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/config"
	"github.com/blockmrs/blockmrs/node/p2p"
	"github.com/blockmrs/blockmrs/protocol"
)

// reqParty is a repo folder with one account whose chain declares the
// folder's node (its node.key) as its device.
type reqParty struct {
	dir  string
	id   protocol.AccountID
	node peer.ID
}

func newReqParty(t *testing.T, name string, role protocol.Role) *reqParty {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	withRepo(t, dir, true, func(r *keyshare.Repo) {
		k, err := r.CreateAccount(t.Context(), name, role, nil)
		if err != nil {
			t.Fatal(err)
		}
		key, err := p2p.LoadOrCreateKey(dir)
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.SetDevice(t.Context(), k, id.String(), name+" node", false); err != nil {
			t.Fatal(err)
		}
		if _, err := r.AddRecord(t.Context(), k, keyshare.NewRecord{Title: "note", Kind: protocol.KindNote,
			MediaType: "text/plain", Body: strings.NewReader(name + " note")}); err != nil {
			t.Fatal(err)
		}
	})
	p := &reqParty{dir: dir}
	withRepo(t, dir, false, func(r *keyshare.Repo) {
		accts, err := r.Accounts(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		p.id = accts[0].ID
		p.node, _ = peer.Decode(accts[0].Devices[0].PeerID)
	})
	return p
}

func withRepo(t *testing.T, dir string, create bool, fn func(*keyshare.Repo)) {
	t.Helper()
	r, err := OpenRepo(context.Background(), dir, create)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fn(r)
}

// waitLog waits until the daemon logged want.
func waitLog(t *testing.T, r *running, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(r.logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("daemon did not log %q; logs:\n%s", want, r.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDaemonDeliversRequests runs two daemons: a request queued while the
// patient's daemon is down reaches it when it starts (dialling the clinic
// as its bootstrap peer); the patient's approval comes back to the
// clinic's outbox.
func TestDaemonDeliversRequests(t *testing.T) {
	clinic := newReqParty(t, "Dr Who", protocol.RoleClinician)
	patient := newReqParty(t, "Pat", protocol.RolePatient)
	// The clinic knows the patient's chain (and so its node).
	withRepo(t, patient.dir, false, func(pr *keyshare.Repo) {
		withRepo(t, clinic.dir, false, func(cr *keyshare.Repo) {
			buf := new(bytes.Buffer)
			if _, err := pr.ExportCAR(t.Context(), buf, patient.id); err != nil {
				t.Fatal(err)
			}
			if _, err := cr.ImportCAR(t.Context(), buf); err != nil {
				t.Fatal(err)
			}
		})
	})
	var reqID string
	withRepo(t, clinic.dir, false, func(r *keyshare.Repo) {
		k, err := r.Unlock(t.Context(), clinic.id, nil)
		if err != nil {
			t.Fatal(err)
		}
		info, err := r.NewRequest(t.Context(), k, patient.id, nil, "follow-up", 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		reqID = info.ID
	})

	c := startDaemon(t, clinic.dir)
	// The patient's daemon dials the clinic's at start.
	cfg, _, err := config.LoadOrCreate(patient.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range c.info.Listen {
		if strings.HasPrefix(a.String(), "/ip4/127.0.0.1/tcp/") {
			cfg.Bootstrap = []string{fmt.Sprintf("%s/p2p/%s", a, c.info.PeerID)}
		}
	}
	if err := config.Save(config.Path(patient.dir), cfg); err != nil {
		t.Fatal(err)
	}
	p := startDaemon(t, patient.dir)
	waitLog(t, c, "requests: delivered")
	p.stop(t)

	withRepo(t, patient.dir, false, func(r *keyshare.Repo) {
		inbox, _, err := r.Requests(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(inbox) != 1 || inbox[0].ID != reqID || inbox[0].State != keyshare.StateNew {
			t.Fatalf("patient's inbox: %+v", inbox)
		}
		k, err := r.Unlock(t.Context(), patient.id, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Approve(t.Context(), k, reqID, time.Time{}); err != nil {
			t.Fatal(err)
		}
	})
	// The patient's daemon comes back; the clinic polls it for the answer.
	p = startDaemon(t, patient.dir)
	waitLog(t, c, "requests: answer received")
	c.stop(t)
	p.stop(t)
	withRepo(t, clinic.dir, false, func(r *keyshare.Repo) {
		_, outbox, err := r.Requests(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(outbox) != 1 || outbox[0].State != keyshare.StateApproved || outbox[0].Grant == "" {
			t.Fatalf("clinic's outbox: %+v", outbox)
		}
	})
}
