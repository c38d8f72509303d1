package keyshare

// This file holds the rotation of an account's age identity (a device was
// removed: future records are wrapped for a new recipient, the old
// identity stays to open the old ones) and the storing of an account's
// keys received from another device (JoinAccount).
//
// Key files are written once and never replaced (writeFileOnce). A
// rotation therefore adds a file beside the key file,
//
//	keys/<account ID>.key.rotated-<N>    (N = 1, 2, …)
//
// a binary age file encrypted to the identity that was current before
// rotation N, holding the new identity. Unlock decrypts the key file with
// the passphrase, then follows the rotation files in order, each opened
// with the identity the one before gave. So a rotation needs no
// passphrase, and the rotation files say nothing to whoever lacks the key
// file and its passphrase.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"filippo.io/age"
	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// MaxRetiredIdentities bounds the earlier age identities an account's
// keys keep (rotations, plus those a joined device received).
const MaxRetiredIdentities = 64

const rotationVersion = "blockmrs-account-rotation/1"

type rotationFile struct {
	Version string `json:"version"`
	Account string `json:"account"`
	N       int    `json:"n"`
	Age     string `json:"age_identity"`
}

func (r *Repo) rotationPath(id protocol.AccountID, n int) string {
	return fmt.Sprintf("%s.rotated-%d", r.keyPath(id), n)
}

// applyRotations advances k (just read from its key file) through the
// account's rotation files: each one's identity becomes k.Age, the one
// before joins k.Retired.
func (r *Repo) applyRotations(k *Keys) error {
	for n := 1; ; n++ {
		data, err := os.ReadFile(r.rotationPath(k.ID, n))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("rotation %d: %w", n, err)
		}
		if len(data) > maxKeyFile {
			return fmt.Errorf("rotation %d: file too large", n)
		}
		plain, err := unseal(data, k.Age, maxKeyFile)
		if err != nil {
			return fmt.Errorf("rotation %d: %w", n, err)
		}
		var rf rotationFile
		if err := json.Unmarshal(plain, &rf); err != nil {
			return fmt.Errorf("rotation %d: %w", n, err)
		}
		if rf.Version != rotationVersion || rf.Account != string(k.ID) || rf.N != n {
			return fmt.Errorf("rotation %d: not a rotation of %s", n, k.ID)
		}
		id, err := age.ParseX25519Identity(rf.Age)
		if err != nil {
			return fmt.Errorf("rotation %d: %w", n, err)
		}
		if len(k.Retired) >= MaxRetiredIdentities {
			return fmt.Errorf("rotation %d: over %d retired identities", n, MaxRetiredIdentities)
		}
		k.Retired = append([]*age.X25519Identity{k.Age}, k.Retired...)
		k.Age = id
	}
}

// Rotated is the result of RotateAge.
type Rotated struct {
	// Keys are the account's keys with the new identity current.
	Keys *Keys
	// Block is the chain block holding the new profile entry.
	Block cid.Cid
	// Recipient is the new age recipient.
	Recipient string
}

// RotateAge gives k's account a new age identity: it stores the identity
// in a new rotation file (encrypted to the current one), then signs a
// profile entry naming the new recipient, with the name and role
// unchanged. Authors and grantors wrap for the recipient the chain names,
// so records written after the entry reaches them are closed to the old
// identity; the old identity stays in the keys (Retired) for the records
// before. A crash between the two steps leaves the new identity stored
// and the chain naming the old one, which the keys still open.
func (r *Repo) RotateAge(ctx context.Context, k *Keys) (Rotated, error) {
	info, err := r.Account(ctx, k.ID)
	if err != nil {
		return Rotated{}, err
	}
	if !info.Local {
		return Rotated{}, fmt.Errorf("rotate %s: not a local account of this repo", k.ID)
	}
	if len(k.Retired) >= MaxRetiredIdentities {
		return Rotated{}, fmt.Errorf("rotate %s: the keys already keep %d retired identities", k.ID, MaxRetiredIdentities)
	}
	fresh, err := age.GenerateX25519Identity()
	if err != nil {
		return Rotated{}, fmt.Errorf("rotate %s: %w", k.ID, err)
	}
	profile := &protocol.Profile{Name: info.Name, Role: info.Role, Recipient: fresh.Recipient().String()}
	if err := profile.Validate(); err != nil {
		return Rotated{}, fmt.Errorf("rotate %s: profile: %w", k.ID, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 1
	for ; ; n++ {
		if _, err := os.Stat(r.rotationPath(k.ID, n)); errors.Is(err, fs.ErrNotExist) {
			break
		} else if err != nil {
			return Rotated{}, fmt.Errorf("rotate %s: %w", k.ID, err)
		}
	}
	if err := r.checkCurrent(k, n); err != nil {
		return Rotated{}, err
	}
	plain, err := json.Marshal(rotationFile{Version: rotationVersion, Account: string(k.ID), N: n, Age: fresh.String()})
	if err != nil {
		return Rotated{}, err
	}
	sealed, err := seal(plain, k.Age.Recipient())
	if err != nil {
		return Rotated{}, fmt.Errorf("rotate %s: %w", k.ID, err)
	}
	if err := writeFileOnce(r.rotationPath(k.ID, n), sealed, 0o600); err != nil {
		return Rotated{}, fmt.Errorf("rotate %s: write rotation file: %w", k.ID, err)
	}
	block, err := r.appendBlock(ctx, k, []protocol.Entry{protocol.NewEntry(profile)})
	if err != nil {
		return Rotated{}, fmt.Errorf("rotate %s: %w", k.ID, err)
	}
	out := k.clone()
	out.Retired = append([]*age.X25519Identity{k.Age}, k.Retired...)
	out.Age = fresh
	return Rotated{Keys: out, Block: block, Recipient: profile.Recipient}, nil
}

// checkCurrent checks that k.Age is the identity current on disk before
// rotation n, that is the one rotation n-1 holds (n > 1): keys unlocked
// before another rotation are stale.
func (r *Repo) checkCurrent(k *Keys, n int) error {
	if n == 1 {
		return nil
	}
	data, err := os.ReadFile(r.rotationPath(k.ID, n-1))
	if err != nil {
		return fmt.Errorf("rotate %s: %w", k.ID, err)
	}
	ids := k.identities()
	plain, err := unseal(data, ids[0], maxKeyFile, ids[1:]...)
	if err != nil {
		return fmt.Errorf("rotate %s: rotation %d: %w", k.ID, n-1, err)
	}
	var rf rotationFile
	if err := json.Unmarshal(plain, &rf); err != nil {
		return fmt.Errorf("rotate %s: rotation %d: %w", k.ID, n-1, err)
	}
	if rf.Age != k.Age.String() {
		return fmt.Errorf("rotate %s: the keys are older than rotation %d: unlock the account again", k.ID, n-1)
	}
	return nil
}

// Clone returns a copy of k whose signing key has storage of its own, so
// that wiping one leaves the other intact.
func (k *Keys) Clone() *Keys { return k.clone() }

// MarshalKeys encodes an account's keys (its signing seed, its current
// and retired age identities) as the unencrypted key-file JSON, to send
// them to another device of the account over an authenticated, encrypted
// channel. The bytes are the account: the caller clears them when done.
func MarshalKeys(k *Keys) ([]byte, error) {
	return marshalKeyFile(k, nil)
}

// ParseKeys decodes what MarshalKeys made.
func ParseKeys(data []byte) (*Keys, error) {
	if len(data) > maxKeyFile {
		return nil, errors.New("keys: too large")
	}
	if keyFileEncrypted(data) {
		return nil, errors.New("keys: encrypted key file where plain keys were expected")
	}
	return parseKeyFile(data, nil)
}

// JoinAccount stores keys k, received from another device of the
// account, as a local account of this repo, with the account's chain
// (head and its raw blocks, genesis included), encrypted under passphrase
// when it is not empty. It checks before storing anything that the
// blocks are k's chain and that the newest profile in them names k's
// current age recipient; then it verifies and applies the chain, writes
// the key file (never replacing one) and marks the account local.
func (r *Repo) JoinAccount(ctx context.Context, k *Keys, head cid.Cid, blocks [][]byte, passphrase []byte) (AccountInfo, error) {
	if a, err := r.Account(ctx, k.ID); err == nil && a.Local {
		return AccountInfo{}, fmt.Errorf("account %s is already an account of this repo", k.ID)
	}
	offered := make(map[cid.Cid][]byte, len(blocks))
	var recipient string
	newest := int64(-1)
	for _, raw := range blocks {
		b, err := protocol.DecodeBlock(raw)
		if err != nil {
			return AccountInfo{}, fmt.Errorf("join %s: chain block: %w", k.ID, err)
		}
		if b.AuthorID() != k.ID {
			return AccountInfo{}, fmt.Errorf("join %s: the chain sent holds a block of %s", k.ID, b.AuthorID())
		}
		offered[protocol.BlockCID(raw)] = raw
		for _, e := range b.Entries {
			if p, ok := e.Body.(*protocol.Profile); ok && int64(b.Seq) > newest {
				recipient, newest = p.Recipient, int64(b.Seq)
			}
		}
	}
	if _, ok := offered[head]; !ok {
		return AccountInfo{}, fmt.Errorf("join %s: the chain sent lacks its head %s", k.ID, head)
	}
	if recipient != k.Age.Recipient().String() {
		return AccountInfo{}, fmt.Errorf("join %s: the keys sent do not match the recipient the chain names", k.ID)
	}
	kf, err := marshalKeyFile(k, passphrase)
	if err != nil {
		return AccountInfo{}, err
	}
	if _, err := os.Stat(r.keyPath(k.ID)); err == nil {
		return AccountInfo{}, fmt.Errorf("join %s: a key file for it is already here (%s): %w", k.ID, r.keyPath(k.ID), fs.ErrExist)
	}
	if _, err := r.ApplyChains(ctx, []cid.Cid{head}, offered); err != nil {
		return AccountInfo{}, fmt.Errorf("join %s: %w", k.ID, err)
	}
	if err := writeFileOnce(r.keyPath(k.ID), kf, 0o600); err != nil {
		return AccountInfo{}, fmt.Errorf("join %s: write key file: %w", k.ID, err)
	}
	r.mu.Lock()
	err = putJSON(ctx, r.ds, keyLocal(k.ID), localAccount{Created: r.now().UnixMilli()})
	if err == nil {
		r.cache.invalidate()
		if _, gerr := r.ds.Get(ctx, keyDefault); gerr != nil {
			err = r.ds.Put(ctx, keyDefault, []byte(k.ID))
		}
	}
	r.mu.Unlock()
	if err != nil {
		return AccountInfo{}, fmt.Errorf("join %s: %w", k.ID, err)
	}
	return r.Account(ctx, k.ID)
}

// Replace puts keys k in place of those of k's account's open session
// (after a rotation), keeping the session's times and cache; it reports
// whether a session was open.
func (s *Sessions) Replace(k *Keys) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.open[k.ID]
	if se == nil {
		return false
	}
	nk := k.clone()
	nk.opened = se.keys.opened
	se.keys.Wipe()
	se.keys = nk
	return true
}
