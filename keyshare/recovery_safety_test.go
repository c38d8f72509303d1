package keyshare

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestRecoverySafetyCodeVectors checks the code against the vectors in
// protocol/testdata/safety.json, which were computed with another
// scrypt implementation, and that the parameters there are ours.
func TestRecoverySafetyCodeVectors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "protocol", "testdata", "safety.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Salt    string `json:"salt"`
		N, R, P int
		Vectors []struct {
			RequestID string `json:"request_id"`
			Code      string `json:"code"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if v.Salt != recoverySafetySalt || v.N != recoverySafetyN || v.R != recoverySafetyR || v.P != recoverySafetyP {
		t.Fatalf("safety.json's parameters %q N=%d r=%d p=%d are not the code's", v.Salt, v.N, v.R, v.P)
	}
	if len(v.Vectors) < 2 {
		t.Fatalf("%d vectors", len(v.Vectors))
	}
	seen := map[string]bool{}
	for _, x := range v.Vectors {
		id, err := hex.DecodeString(x.RequestID)
		if err != nil {
			t.Fatal(err)
		}
		if got := RecoverySafetyCode(id); got != x.Code {
			t.Errorf("code of %s: %s, want %s", x.RequestID, got, x.Code)
		}
		// Remembered codes are the derived ones.
		if again := RecoverySafetyCode(id); again != x.Code {
			t.Errorf("code of %s the second time: %s, want %s", x.RequestID, again, x.Code)
		}
		seen[x.Code] = true
	}
	if len(seen) != len(v.Vectors) {
		t.Fatalf("two vectors share a code: %v", seen)
	}
}
