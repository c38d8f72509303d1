package config

import (
	"strings"
	"testing"
)

// The "trust" list: account IDs, parsed strictly; absent from the
// default file.
func TestTrustList(t *testing.T) {
	const id = "12D3KooWLT9re2pG1sxnv3Cy8s2zenwdvWgU4VNEYj6QRrvdoRxM"
	base := `{"version": 1, "listen": ["/ip4/127.0.0.1/tcp/4101"], "api": "127.0.0.1:4102", "bootstrap": []`
	c, err := Parse([]byte(base + `, "trust": ["` + id + `"]}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.TrustedAuthorities()
	if err != nil || len(got) != 1 || string(got[0]) != id {
		t.Fatalf("trust: %v %v", got, err)
	}
	if _, err := Parse([]byte(base + `, "trust": ["not-an-account"]}`)); err == nil || !strings.Contains(err.Error(), `"trust"`) {
		t.Fatalf("bad trust entry: %v", err)
	}
	if d := Default(); len(d.Trust) != 0 {
		t.Fatalf("default trusts %v", d.Trust)
	}
}
