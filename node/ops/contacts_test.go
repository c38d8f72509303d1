package ops

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
	"github.com/blockmrs/blockmrs/store"
)

func openTestRepo(t *testing.T) *keyshare.Repo {
	t.Helper()
	repo, err := keyshare.Open(t.Context(), t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	return repo
}

// A profile file imports once; a bad or oversized one is one line
// matching ErrInvalid (the limit also store.ErrImportLimit) and stores
// nothing.
func TestImportContact(t *testing.T) {
	ctx := t.Context()
	repo, other := openTestRepo(t), openTestRepo(t)
	doc, err := other.CreateAccount(ctx, "Dr Grey", protocol.RoleClinician, nil)
	if err != nil {
		t.Fatal(err)
	}
	var car bytes.Buffer
	if err := other.ExportProfile(ctx, &car, doc.ID); err != nil {
		t.Fatal(err)
	}
	data := car.Bytes()
	for what, bad := range map[string][]byte{"empty": nil, "truncated": data[:len(data)-4], "junk": []byte("not a CAR")} {
		_, err := ImportContact(ctx, repo, bytes.NewReader(bad), 0)
		if !errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "blockmrs id --export") {
			t.Errorf("%s: %v", what, err)
		}
	}
	if _, err := ImportContact(ctx, repo, bytes.NewReader(data), 16); !errors.Is(err, ErrInvalid) || !errors.Is(err, store.ErrImportLimit) {
		t.Errorf("over the limit: %v", err)
	}
	if l, err := Contacts(ctx, repo); err != nil || len(l.Accounts) != 0 {
		t.Fatalf("refused files stored contacts: %+v %v", l, err)
	}
	got, err := ImportContact(ctx, repo, bytes.NewReader(data), 0)
	if err != nil || len(got.Added) != 1 || got.Added[0].ID != doc.ID || got.Added[0].Local || got.NewBlocks != 1 {
		t.Fatalf("import: %+v %v", got, err)
	}
	again, err := ImportContact(ctx, repo, bytes.NewReader(data), 0)
	if err != nil || len(again.Added) != 0 || len(again.Unchanged) != 1 {
		t.Fatalf("import again: %+v %v", again, err)
	}
}

// Without the node there is no share code to draw.
func TestShareCodeQRNeedsNode(t *testing.T) {
	repo := openTestRepo(t)
	if _, err := repo.CreateAccount(t.Context(), "Pat", protocol.RolePatient, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ShareCodeQR(t.Context(), repo, nil, IDArgs{}); !errors.Is(err, ErrNoNode) {
		t.Fatalf("without a node: %v", err)
	}
}
