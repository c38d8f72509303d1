package keyshare

// This file holds the rotation of an account's age identity (a device was
// removed: future records are wrapped for a new recipient, the old
// identity stays to open the old ones) and the storing of an account's
// keys received from another device (JoinAccount).
//
// Key files are written once and never replaced (writeFileOnce). A
// rotation therefore adds a file beside the key file,
//
//	keys/<account ID>.key.rotation-<new recipient>-<16 hex digits>
//
// (the digits: the start of the SHA-256 of the file), a binary age file
// encrypted to the identity that was current before the rotation, holding
// the new identity. Unlock decrypts the key file with the passphrase, then
// opens every rotation file it can with the identities it holds, until no
// more open; the identity whose recipient the chain names is current, the
// others retired. So a rotation needs no passphrase, its files say
// nothing to whoever lacks the key file and its passphrase, and the other
// devices of the account copy them as they are (RotationFiles,
// StoreRotations): they open with the identity those devices hold.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"filippo.io/age"
	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// MaxRetiredIdentities bounds the earlier age identities an account's
// keys keep (rotations, plus those a joined device received), and the
// rotation files an account may have.
const MaxRetiredIdentities = 64

const rotationVersion = "blockmrs-account-rotation/2"

type rotationFile struct {
	Version string `json:"version"`
	Account string `json:"account"`
	Age     string `json:"age_identity"`
	// Ed25519 is the seed of the successor signing key, when the
	// rotation was a succession too (RotateAll).
	Ed25519 []byte `json:"ed25519_seed,omitempty"`
}

// RotationFile is one rotation file of an account, as devices of the
// account copy it: its name (rotation-<recipient>-<digits>) and bytes.
type RotationFile struct {
	Name string `json:"name"`
	Data []byte `json:"data"`
}

var rotationNameRe = regexp.MustCompile(`^rotation-(age1[02-9ac-hj-np-z]{58})-([0-9a-f]{16})$`)

func rotationName(recipient string, data []byte) string {
	sum := sha256.Sum256(data)
	return "rotation-" + recipient + "-" + hex.EncodeToString(sum[:8])
}

func (r *Repo) rotationPath(id protocol.AccountID, name string) string {
	return r.keyPath(id) + "." + name
}

// rotationFiles lists the names of account id's rotation files.
func (r *Repo) rotationFiles(id protocol.AccountID) ([]string, error) {
	prefix := filepath.Base(r.keyPath(id)) + "."
	entries, err := os.ReadDir(filepath.Dir(r.keyPath(id)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), prefix)
		if ok && rotationNameRe.MatchString(name) {
			out = append(out, name)
		}
	}
	if len(out) > MaxRetiredIdentities {
		return nil, fmt.Errorf("%s has over %d rotation files", id, MaxRetiredIdentities)
	}
	return out, nil
}

// applyRotations adds to k (just read from its key file) the identities
// of the account's rotation files, opening each with an identity already
// held, and makes current the one whose recipient the chain names.
func (r *Repo) applyRotations(ctx context.Context, k *Keys) error {
	names, err := r.rotationFiles(k.ID)
	if err != nil || len(names) == 0 {
		return err
	}
	known := map[string]*age.X25519Identity{}
	for _, id := range append([]*age.X25519Identity{k.Age}, k.Old...) {
		known[id.Recipient().String()] = id
	}
	opened := map[string]bool{}
	var seeds [][]byte
	for progress := true; progress; {
		progress = false
		for _, name := range names {
			if opened[name] {
				continue
			}
			m := rotationNameRe.FindStringSubmatch(name)
			if _, ok := known[m[1]]; ok {
				opened[name] = true
				continue
			}
			id, seed, err := r.openRotation(k.ID, name, known)
			if err != nil {
				continue // not (yet) openable: another device's junk, or a later link
			}
			opened[name], progress = true, true
			known[m[1]] = id
			if seed != nil {
				seeds = append(seeds, seed)
			}
		}
	}
	st, err := r.state(ctx, k.ID)
	if err != nil {
		return err
	}
	current := k.Age
	if id, ok := known[st.Recipient]; ok {
		current = id
	}
	var retired []*age.X25519Identity
	for _, id := range append([]*age.X25519Identity{k.Age}, k.Old...) {
		if id != current {
			retired = append(retired, id)
		}
	}
	for rcpt, id := range known {
		if id != current && !slices.Contains(retired, id) && rcpt != "" {
			retired = append(retired, id)
		}
	}
	if len(retired) > MaxRetiredIdentities {
		return fmt.Errorf("over %d retired identities", MaxRetiredIdentities)
	}
	k.Age, k.Old = current, retired
	// A succession another device made: its seed signs from now on, when
	// it is the chain's signing key.
	if st.Signing != nil && !bytes.Equal(k.SigningKey(), st.Signing.Key) {
		for _, seed := range seeds {
			priv := ed25519.NewKeyFromSeed(seed)
			if bytes.Equal(priv.Public().(ed25519.PublicKey), st.Signing.Key) {
				if k.account == nil {
					k.account = slices.Clone(k.Public())
				}
				clear(k.Sign)
				k.Sign = priv
			}
		}
	}
	return nil
}

// openRotation opens rotation file name with the identities known and
// checks that it holds the identity of the recipient its name gives.
func (r *Repo) openRotation(id protocol.AccountID, name string, known map[string]*age.X25519Identity) (*age.X25519Identity, []byte, error) {
	data, err := os.ReadFile(r.rotationPath(id, name))
	if err != nil {
		return nil, nil, err
	}
	if len(data) > maxKeyFile {
		return nil, nil, errors.New("rotation file too large")
	}
	ids := make([]age.Identity, 0, len(known))
	for _, k := range known {
		ids = append(ids, k)
	}
	plain, err := unseal(data, identities(ids), maxKeyFile)
	if err != nil {
		return nil, nil, err
	}
	var rf rotationFile
	if err := json.Unmarshal(plain, &rf); err != nil {
		return nil, nil, err
	}
	if rf.Version != rotationVersion || rf.Account != string(id) {
		return nil, nil, fmt.Errorf("rotation %s: not a rotation of %s", name, id)
	}
	next, err := age.ParseX25519Identity(rf.Age)
	if err != nil {
		return nil, nil, err
	}
	if m := rotationNameRe.FindStringSubmatch(name); m == nil || next.Recipient().String() != m[1] {
		return nil, nil, fmt.Errorf("rotation %s: holds another identity than its name says", name)
	}
	if len(rf.Ed25519) != 0 && len(rf.Ed25519) != ed25519.SeedSize {
		return nil, nil, fmt.Errorf("rotation %s: bad signing seed", name)
	}
	return next, rf.Ed25519, nil
}

// Rotated is the result of RotateAge.
type Rotated struct {
	// Keys are the account's keys with the new identity current.
	Keys *Keys
	// Block is the chain block holding the new profile entry.
	Block cid.Cid
	// Recipient is the new age recipient.
	Recipient string
	// Signing is true when the signing key rotated too (RotateAll).
	Signing bool
}

// RotateAge gives k's account a new age identity: it stores the identity
// in a new rotation file (encrypted to the current one), then signs a
// profile entry naming the new recipient, with the name and role
// unchanged. Authors and grantors wrap for the recipient the chain names,
// so records written after the entry reaches them are closed to the old
// identity; the old identity stays in the keys (Old) for the records
// before. The account's other devices copy the rotation file
// (RotationFiles). A crash between the two steps leaves the new identity
// stored and the chain naming the old one, which stays current.
func (r *Repo) RotateAge(ctx context.Context, k *Keys) (Rotated, error) {
	info, err := r.Account(ctx, k.ID)
	if err != nil {
		return Rotated{}, err
	}
	if !info.Local {
		return Rotated{}, fmt.Errorf("rotate %s: not a local account of this repo", k.ID)
	}
	if info.Recipient != k.Age.Recipient().String() {
		return Rotated{}, fmt.Errorf("rotate %s: the keys are older than the chain's recipient: unlock the account again", k.ID)
	}
	if len(k.Old) >= MaxRetiredIdentities {
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
	plain, err := json.Marshal(rotationFile{Version: rotationVersion, Account: string(k.ID), Age: fresh.String()})
	if err != nil {
		return Rotated{}, err
	}
	sealed, err := seal(plain, k.Age.Recipient())
	if err != nil {
		return Rotated{}, fmt.Errorf("rotate %s: %w", k.ID, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := writeFileOnce(r.rotationPath(k.ID, rotationName(profile.Recipient, sealed)), sealed, 0o600); err != nil {
		return Rotated{}, fmt.Errorf("rotate %s: write rotation file: %w", k.ID, err)
	}
	block, err := r.appendBlock(ctx, k, []protocol.Entry{protocol.NewEntry(profile)})
	if err != nil {
		return Rotated{}, fmt.Errorf("rotate %s: %w", k.ID, err)
	}
	out := k.clone()
	out.Old = append([]*age.X25519Identity{k.Age}, k.Old...)
	out.Age = fresh
	return Rotated{Keys: out, Block: block, Recipient: profile.Recipient}, nil
}

// RotateAll rotates both of k's keys in one block: a succession to a
// fresh signing key (Succeed, which needs passphrase when the key file is
// encrypted) with a new age identity and profile entry, and entries (a
// device withdrawn) signed by the key it retires. It then stores a
// rotation file holding both new keys, encrypted to k's age identity, for
// the account's other devices to copy. The device removed holds only the
// retired keys: nodes refuse blocks it signs after this one.
func (r *Repo) RotateAll(ctx context.Context, k *Keys, passphrase []byte, entries []protocol.Entry) (Rotated, error) {
	info, err := r.Account(ctx, k.ID)
	if err != nil {
		return Rotated{}, err
	}
	if info.Recipient != k.Age.Recipient().String() {
		return Rotated{}, fmt.Errorf("rotate %s: the keys are older than the chain's recipient: unlock the account again", k.ID)
	}
	nk, err := r.Succeed(ctx, k, passphrase, SuccessionOptions{RotateAge: true, Entries: entries})
	if err != nil {
		return Rotated{}, err
	}
	plain, err := json.Marshal(rotationFile{Version: rotationVersion, Account: string(k.ID), Age: nk.Age.String(), Ed25519: nk.Sign.Seed()})
	if err != nil {
		return Rotated{}, err
	}
	defer clear(plain)
	sealed, err := seal(plain, k.Age.Recipient())
	if err != nil {
		return Rotated{}, fmt.Errorf("rotate %s: %w", k.ID, err)
	}
	recipient := nk.Age.Recipient().String()
	if err := writeFileOnce(r.rotationPath(k.ID, rotationName(recipient, sealed)), sealed, 0o600); err != nil {
		return Rotated{}, fmt.Errorf("rotate %s: the keys rotated, but the rotation file for the other devices was not written (pair them again): %w", k.ID, err)
	}
	after, err := r.Account(ctx, k.ID)
	if err != nil {
		return Rotated{}, err
	}
	return Rotated{Keys: nk, Block: after.Head, Recipient: recipient, Signing: true}, nil
}

// RotationFiles returns local account id's rotation files, to copy to
// another device of the account.
func (r *Repo) RotationFiles(ctx context.Context, id protocol.AccountID) ([]RotationFile, error) {
	names, err := r.rotationFiles(id)
	if err != nil {
		return nil, err
	}
	out := []RotationFile{}
	for _, name := range names {
		data, err := os.ReadFile(r.rotationPath(id, name))
		if err != nil {
			return nil, fmt.Errorf("rotation files of %s: %w", id, err)
		}
		out = append(out, RotationFile{Name: name, Data: data})
	}
	return out, nil
}

// StoreRotations stores the rotation files another device of local
// account id sent that this repo lacks, each checked against its name
// (the digits are the start of its SHA-256); it returns how many it
// stored. What they hold is checked when the account is unlocked.
func (r *Repo) StoreRotations(ctx context.Context, id protocol.AccountID, files []RotationFile) (int, error) {
	info, err := r.Account(ctx, id)
	if err != nil {
		return 0, err
	}
	if !info.Local {
		return 0, fmt.Errorf("store rotations of %s: not a local account of this repo", id)
	}
	have, err := r.rotationFiles(id)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range files {
		m := rotationNameRe.FindStringSubmatch(f.Name)
		if m == nil || len(f.Data) > maxKeyFile || rotationName(m[1], f.Data) != f.Name {
			return n, fmt.Errorf("store rotations of %s: %q is not a rotation file", id, truncateText(f.Name, 80))
		}
		if slices.Contains(have, f.Name) {
			continue
		}
		if len(have) >= MaxRetiredIdentities {
			return n, fmt.Errorf("store rotations of %s: over %d rotation files", id, MaxRetiredIdentities)
		}
		if err := writeFileOnce(r.rotationPath(id, f.Name), f.Data, 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
			return n, fmt.Errorf("store rotations of %s: %w", id, err)
		}
		have = append(have, f.Name)
		n++
	}
	return n, nil
}

// NeedsRotation reports whether local account id's chain names a
// recipient for which this repo holds neither a rotation file nor, as far
// as it recorded, an identity in the key file: another device rotated the
// key, and its rotation file should be copied here.
func (r *Repo) NeedsRotation(ctx context.Context, id protocol.AccountID) (bool, error) {
	var la localAccount
	local, err := getJSON(ctx, r.ds, keyLocal(id), &la)
	if err != nil || !local {
		return false, err
	}
	st, err := r.state(ctx, id)
	if err != nil {
		return false, err
	}
	if slices.Contains(la.Recipients, st.Recipient) {
		return false, nil
	}
	names, err := r.rotationFiles(id)
	if err != nil {
		return false, err
	}
	for _, name := range names {
		if m := rotationNameRe.FindStringSubmatch(name); m[1] == st.Recipient {
			return false, nil
		}
	}
	if len(la.Recipients) == 0 {
		// Accounts made here record no recipients: the first profile's is
		// the key file's.
		c, ok, err := r.blockAt(ctx, id, 0)
		if err != nil || !ok {
			return false, err
		}
		b, err := r.readBlock(ctx, c)
		if err != nil {
			return false, err
		}
		if p, ok := b.Entries[0].Body.(*protocol.Profile); ok && p.Recipient == st.Recipient {
			return false, nil
		}
	}
	return true, nil
}

func truncateText(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
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
	recipients := []string{k.Age.Recipient().String()}
	for _, old := range k.Old {
		recipients = append(recipients, old.Recipient().String())
	}
	r.mu.Lock()
	err = putJSON(ctx, r.ds, keyLocal(k.ID), localAccount{Created: r.now().UnixMilli(), Recipients: recipients})
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

// Refresh applies the account's rotation files (another device's, just
// copied here) to the keys of id's open session; it reports whether a
// session was open.
func (s *Sessions) Refresh(ctx context.Context, id protocol.AccountID) (bool, error) {
	k, err := s.Background(id)
	if err != nil {
		return false, nil
	}
	if err := s.repo.applyRotations(ctx, k); err != nil {
		return true, err
	}
	return s.Replace(k), nil
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
