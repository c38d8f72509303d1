package emergency

import (
	"bufio"
	"context"
	"log/slog"
	"strings"
	"testing"

	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// Hostile input at the custodian's node: garbage, an oversized frame, an
// unknown kind, a deposit of a block naming no local custodian and a
// forged request are answered with a reset or a one-line error; nothing
// is kept.
func TestHostileFrames(t *testing.T) {
	ctx := context.Background()
	mn, err := mocknet.FullMeshConnected(2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mn.Close() })
	server, client := mn.Hosts()[0], mn.Hosts()[1]
	repo, err := keyshare.Open(ctx, t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	k, err := repo.CreateAccount(ctx, "Clinic", protocol.RoleClinic, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := New(server, repo, func(protocol.AccountID) (*keyshare.Keys, error) { return k, nil }, Options{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { s.Close() })

	raw := func(b []byte) (string, error) {
		st, err := client.NewStream(ctx, server.ID(), ProtocolID)
		if err != nil {
			return "", err
		}
		defer st.Close()
		st.Write(b)
		st.CloseWrite()
		body, err := protocol.ReadFrame(bufio.NewReader(st), protocol.MaxEmergencyFrame)
		if err != nil {
			return "", err
		}
		f, err := protocol.DecodeEmergencyFrame(body)
		if err != nil {
			return "", err
		}
		return f.Kind + ": " + f.Error, nil
	}
	for name, b := range map[string][]byte{
		"empty":     {0},
		"oversized": {0xff, 0xff, 0xff, 0x7f},
		"not cbor":  {3, 'a', 'b', 'c'},
	} {
		if out, err := raw(b); err == nil {
			t.Errorf("%s: answered %q instead of a reset", name, out)
		}
	}
	frame := func(f *protocol.EmergencyFrame) string {
		t.Helper()
		enc, err := protocol.EncodeEmergencyFrame(f)
		if err != nil {
			t.Fatal(err)
		}
		var buf strings.Builder
		if err := protocol.WriteFrame(&buf, enc); err != nil {
			t.Fatal(err)
		}
		out, err := raw([]byte(buf.String()))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// A deposit of a block that names nobody here: the profile block of
	// another account.
	other, err := keyshare.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	b := &protocol.Block{Entries: []protocol.Entry{protocol.NewEntry(&protocol.Profile{Name: "Mal", Role: protocol.RolePatient, Recipient: other.Age.Recipient().String()})}}
	blk, _, err := b.Sign(other.Sign)
	if err != nil {
		t.Fatal(err)
	}
	if out := frame(&protocol.EmergencyFrame{Kind: protocol.EmFrameDeposit, Block: blk}); !strings.HasPrefix(out, "error: ") || !strings.Contains(out, "no account of this node") {
		t.Errorf("deposit naming nobody: %q", out)
	}
	if held, _ := repo.HeldEmergency(ctx); len(held) != 0 {
		t.Fatalf("held %v", held)
	}
	if out := frame(&protocol.EmergencyFrame{Kind: protocol.EmFrameOpen, Request: []byte{0xa0}}); !strings.HasPrefix(out, "error: ") {
		t.Errorf("forged request: %q", out)
	}
	if out := frame(&protocol.EmergencyFrame{Kind: protocol.EmFrameOK}); !strings.Contains(out, "unexpected ok frame") {
		t.Errorf("an ok frame as a request: %q", out)
	}
}
