package stocktools

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pseudoRandom returns n deterministic pseudo-random bytes.
func pseudoRandom(n int) []byte {
	return PseudoRandomBytes("blockmrs stocktools test seed", n)
}

func TestAge(t *testing.T) {
	t.Logf("age --version: %s", bytes.TrimSpace(RunTool(t, nil, Age(t), "--version")))
	dir := t.TempDir()
	key := filepath.Join(dir, "key.txt")
	RunTool(t, nil, AgeKeygen(t), "-o", key)
	recipient := strings.TrimSpace(string(RunTool(t, nil, AgeKeygen(t), "-y", key)))
	if !strings.HasPrefix(recipient, "age1") {
		t.Fatalf("age-keygen -y gave %q, want age1...", recipient)
	}

	plain := []byte("hello, stock age\n")
	ct := filepath.Join(dir, "msg.age")
	RunTool(t, plain, Age(t), "-r", recipient, "-o", ct)
	sealed, err := os.ReadFile(ct)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(sealed, []byte("age-encryption.org/v1\n")) || bytes.Contains(sealed, plain) {
		t.Fatalf("ciphertext does not look like age: %q", sealed)
	}
	if got := RunTool(t, nil, Age(t), "-d", "-i", key, ct); !bytes.Equal(got, plain) {
		t.Fatalf("age -d gave %q, want %q", got, plain)
	}
}

func TestKuboOffline(t *testing.T) {
	k := StartKubo(t, KuboOptions{})

	ds, err := k.Run("config", "--json", "Datastore")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Datastore config:\n%s", ds)
	var cfg struct {
		Spec struct {
			Mounts []struct {
				Mountpoint string `json:"mountpoint"`
				Type       string `json:"type"`
				Sync       *bool  `json:"sync"`
			} `json:"mounts"`
		}
	}
	if err := json.Unmarshal(ds, &cfg); err != nil {
		t.Fatal(err)
	}
	synced := false
	for _, m := range cfg.Spec.Mounts {
		if m.Mountpoint == "/blocks" && m.Type == "flatfs" && m.Sync != nil && *m.Sync {
			synced = true
		}
	}
	if !synced {
		t.Fatalf("flatfs /blocks mount does not have sync=true")
	}

	for _, tc := range []struct {
		name   string
		data   []byte
		prefix string
		want   string // exact CID where it is well known
		leaves int    // raw 1 MiB leaves under a multi-block root
	}{
		// sha2-256 of nothing, as a CIDv1 raw block.
		{"empty", nil, "bafk", "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", 0},
		{"1 byte", []byte{'a'}, "bafk", "", 0},
		{"3 MiB", pseudoRandom(3 << 20), "bafy", "", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cid := k.Add(t, tc.data)
			t.Logf("%d bytes -> %s", len(tc.data), cid)
			if !strings.HasPrefix(cid, tc.prefix) {
				t.Fatalf("CID %s, want prefix %s", cid, tc.prefix)
			}
			if tc.want != "" && cid != tc.want {
				t.Fatalf("CID %s, want %s", cid, tc.want)
			}
			if got := k.Cat(t, cid); !bytes.Equal(got, tc.data) {
				t.Fatalf("ipfs cat returned %d bytes, want the %d added", len(got), len(tc.data))
			}
			if tc.leaves > 0 {
				refs, err := k.Run("refs", cid)
				if err != nil {
					t.Fatal(err)
				}
				leaves := strings.Fields(string(refs))
				if len(leaves) != tc.leaves {
					t.Fatalf("root links %d blocks, want %d: %s", len(leaves), tc.leaves, refs)
				}
				for _, l := range leaves {
					if !strings.HasPrefix(l, "bafk") {
						t.Fatalf("leaf %s is not a CIDv1 raw block", l)
					}
				}
			}
		})
	}
}

func TestKuboDaemon(t *testing.T) {
	a := StartKubo(t, KuboOptions{Daemon: true})
	b := StartKubo(t, KuboOptions{Daemon: true})
	for _, k := range []*Kubo{a, b} {
		t.Logf("peer %s swarm %s api %s gateway %s", k.PeerID(), k.SwarmAddr(), k.APIAddr(), k.GatewayURL())
		if !strings.HasPrefix(k.SwarmAddr(), "/ip4/127.0.0.1/tcp/") || !strings.HasSuffix(k.SwarmAddr(), "/p2p/"+k.PeerID()) {
			t.Fatalf("swarm address %q is not loopback TCP for %s", k.SwarmAddr(), k.PeerID())
		}
		if !strings.HasPrefix(k.APIAddr(), "/ip4/127.0.0.1/tcp/") {
			t.Fatalf("API address %q is not loopback", k.APIAddr())
		}
	}
	if err := b.Connect(a.SwarmAddr()); err != nil {
		t.Fatal(err)
	}
	data := pseudoRandom(1<<20 + 1)
	cid := a.Add(t, data)
	if got := b.Cat(t, cid); !bytes.Equal(got, data) {
		t.Fatalf("peer b got %d bytes of %s over bitswap, want %d", len(got), cid, len(data))
	}
}
