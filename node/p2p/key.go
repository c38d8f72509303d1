package p2p

import (
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/node/internal/fsutil"
)

// KeyFile is the node key's file name in the repo folder.
const KeyFile = "node.key"

// LoadOrCreateKey returns the node's libp2p identity key, kept in
// dir/node.key as libp2p's protobuf encoding (crypto.MarshalPrivateKey),
// mode 0600. On first run it makes a fresh Ed25519 key. The key is the
// node's alone: it is not an account key and signs no chain entry; it
// proves the peer ID in transport handshakes and signs the node's audit
// log (node/audit, under its own signature context), so a node can run
// unattended while account keys stay locked. A key file readable by other users, or
// of another key type, is refused. The caller must hold the repo lock.
//
// Never log the key; log the peer ID (peer.IDFromPrivateKey).
func LoadOrCreateKey(dir string) (crypto.PrivKey, error) {
	path := filepath.Join(dir, KeyFile)
	data, _, err := fsutil.LoadOrCreateSecret(path, func() ([]byte, error) {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			return nil, err
		}
		return crypto.MarshalPrivateKey(k)
	})
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	k, err := crypto.UnmarshalPrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("node key %s: %w", path, err)
	}
	if k.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("node key %s: type %s, want Ed25519", path, k.Type())
	}
	if _, err := peer.IDFromPrivateKey(k); err != nil {
		return nil, fmt.Errorf("node key %s: %w", path, err)
	}
	return k, nil
}

// errNoKey is returned by NewHost without a key: a random identity would
// change the peer ID at every start.
var errNoKey = errors.New("p2p: no node key")
