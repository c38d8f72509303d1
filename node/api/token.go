package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/blockmrs/blockmrs/node/internal/fsutil"
)

// TokenFile is the API token's file name in the repo folder.
const TokenFile = "api.token"

// tokenBytes is the token's length before hex encoding.
const tokenBytes = 32

// LoadOrCreateToken returns the API token kept in dir/api.token: 32 random
// bytes as 64 lower-case hex characters (a final newline is tolerated),
// mode 0600. On first run it makes one. A token file other users can read
// is refused: anyone holding the token can use the API. The caller must
// hold the repo lock. Never log the token.
func LoadOrCreateToken(dir string) (string, error) {
	path := filepath.Join(dir, TokenFile)
	data, _, err := fsutil.LoadOrCreateSecret(path, func() ([]byte, error) {
		b := make([]byte, tokenBytes)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		return []byte(hex.EncodeToString(b) + "\n"), nil
	})
	if err != nil {
		return "", fmt.Errorf("api token: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if _, err := parseToken(tok); err != nil {
		return "", fmt.Errorf("api token %s: %w", path, err)
	}
	return tok, nil
}

// tokenDigest is the SHA-256 of the expected token. Comparing digests in
// constant time reveals nothing about the token, not even its length.
type tokenDigest [sha256.Size]byte

func parseToken(tok string) (tokenDigest, error) {
	raw, err := hex.DecodeString(tok)
	if err != nil || len(raw) != tokenBytes {
		return tokenDigest{}, errors.New("token must be 64 hex characters")
	}
	return sha256.Sum256([]byte(tok)), nil
}

func (d tokenDigest) matches(got string) bool {
	g := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(d[:], g[:]) == 1
}
