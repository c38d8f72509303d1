package ops

import (
	"errors"
	"strings"
	"testing"

	"github.com/blockmrs/blockmrs/keyshare"
)

// Share codes and names: what is accepted, and that every refusal is one
// line matching ErrInvalid.
func TestParseShareCodeAndName(t *testing.T) {
	k, err := keyshare.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	node := "/ip4/192.0.2.7/tcp/4101/p2p/12D3KooWHHzSeKaY8xuZVzkLbKFfvNgPPeKhFBGrMbNzbm5akpqu"
	c, err := ParseShareCode("  " + node + "\t" + string(k.ID) + "\n")
	if err != nil || c.Account != k.ID || c.Node.ID.String() != "12D3KooWHHzSeKaY8xuZVzkLbKFfvNgPPeKhFBGrMbNzbm5akpqu" || len(c.Node.Addrs) != 1 {
		t.Fatalf("share code: %+v %v", c, err)
	}
	for _, bad := range []string{"", node, node + " " + string(k.ID) + " x", "/ip4/192.0.2.7/tcp/4101 " + string(k.ID),
		"not-an-address " + string(k.ID), node + " nobody", strings.Repeat("a", MaxShareCode+1)} {
		if _, err := ParseShareCode(bad); !errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), "\n") {
			t.Errorf("share code %.40q: %v", bad, err)
		}
	}
	for _, good := range []string{"Pat", "Dr Grey", "Zoë O'Neill"} {
		if err := CheckName(good); err != nil {
			t.Errorf("name %q: %v", good, err)
		}
	}
	for _, bad := range []string{"", " Pat", "Pat ", "Dr  Grey", "Pat\n", "Pat\x00", "\xff", strings.Repeat("a", 201)} {
		if err := CheckName(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("name %q accepted (%v)", bad, err)
		}
	}
}
