package keyshare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"filippo.io/age"
	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// AccountInfo describes an account the repo knows: one of its own (Local)
// or a contact whose chain it holds.
type AccountInfo struct {
	ID        protocol.AccountID `json:"id"`
	Name      string             `json:"name"`
	Role      protocol.Role      `json:"role"`
	Recipient string             `json:"recipient"`
	Local     bool               `json:"local"`
	Default   bool               `json:"default,omitempty"`
	// Encrypted tells whether a local account's keys need a passphrase.
	Encrypted bool    `json:"encrypted,omitempty"`
	Head      cid.Cid `json:"head"`
	Seq       uint64  `json:"seq"`
	// Stopped explains why entries past some block are not applied (a
	// critical entry this version does not understand), if so.
	Stopped string `json:"stopped,omitempty"`
	// Devices are the nodes the account declares as acting for it.
	Devices []DeviceInfo `json:"devices,omitempty"`
}

// MarshalJSON writes the head CID as a plain string.
func (a AccountInfo) MarshalJSON() ([]byte, error) {
	type plain AccountInfo
	head := ""
	if a.Head.Defined() {
		head = a.Head.String()
	}
	return json.Marshal(struct {
		Head string `json:"head"`
		plain
	}{head, plain(a)})
}

// AgeRecipient parses the account's age recipient.
func (a AccountInfo) AgeRecipient() (*age.X25519Recipient, error) {
	return age.ParseX25519Recipient(a.Recipient)
}

func (r *Repo) keyPath(id protocol.AccountID) string {
	return filepath.Join(r.dir, "keys", string(id)+".key")
}

// CreateAccount makes a new local account: fresh keys, stored encrypted
// with passphrase when it is not empty, and a first chain block holding
// its profile and the nodes given (devices or replicas). The first account
// becomes the default.
//
// Nodes declared in the first block travel with the profile (ExportProfile,
// and chain sync's profile request), so whoever adds the account as a
// contact knows from the start which nodes act for it.
func (r *Repo) CreateAccount(ctx context.Context, name string, role protocol.Role, passphrase []byte, nodes ...DeviceInfo) (*Keys, error) {
	k, err := GenerateKeys()
	if err != nil {
		return nil, err
	}
	return k, r.AddAccount(ctx, k, name, role, passphrase, nodes...)
}

// AddAccount stores keys k as a new local account with a first chain block
// holding its profile and the nodes given.
func (r *Repo) AddAccount(ctx context.Context, k *Keys, name string, role protocol.Role, passphrase []byte, nodes ...DeviceInfo) error {
	profile := &protocol.Profile{Name: name, Role: role, Recipient: k.Age.Recipient().String()}
	if err := profile.Validate(); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	entries := []protocol.Entry{protocol.NewEntry(profile)}
	for _, n := range nodes {
		raw, err := protocol.ParsePeerID(n.PeerID)
		if err != nil {
			return err
		}
		d := &protocol.Device{Peer: raw, Name: n.Name, Replica: n.Replica}
		if err := d.Validate(); err != nil {
			return err
		}
		entries = append(entries, protocol.NewEntry(d))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.state(ctx, k.ID); err == nil {
		return fmt.Errorf("account %s already exists in this repo", k.ID)
	}
	kf, err := marshalKeyFile(k, passphrase)
	if err != nil {
		return err
	}
	if err := writeFileOnce(r.keyPath(k.ID), kf, 0o600); err != nil {
		// An existing key file (left by a crash before the chain's first
		// block was stored) may be the only copy of these keys: never
		// replace it.
		return fmt.Errorf("write key file: %w", err)
	}
	b := &protocol.Block{Seq: 0, Time: r.now().UnixMilli(), Entries: entries}
	raw, c, err := b.Sign(k.Sign)
	if err != nil {
		return err
	}
	if err := putJSON(ctx, r.ds, keyLocal(k.ID), localAccount{Created: b.Time}); err != nil {
		return err
	}
	r.cache.invalidate()
	if _, err := r.ds.Get(ctx, keyDefault); err != nil {
		if err := r.ds.Put(ctx, keyDefault, []byte(k.ID)); err != nil {
			return err
		}
	}
	return r.commit(ctx, []verifiedBlock{{cid: c, block: b, raw: raw}})
}

// Unlock reads a local account's keys, decrypting them with passphrase
// when they are encrypted. Decryptions are bounded per process
// (MaxConcurrentUnlocks) and concurrent ones of the same keys with the
// same passphrase share the work; Unlock returns ctx's error when ctx
// ends while it waits.
func (r *Repo) Unlock(ctx context.Context, id protocol.AccountID, passphrase []byte) (*Keys, error) {
	if err := r.settleNextKeyFile(ctx, id, passphrase); err != nil {
		return nil, fmt.Errorf("unlock %s: %w", id, err)
	}
	data, err := readKeyFile(r.keyPath(id))
	if err != nil {
		return nil, err
	}
	var k *Keys
	if keyFileEncrypted(data) && len(passphrase) > 0 {
		k, err = unlockEncrypted(ctx, id, data, passphrase)
	} else {
		k, err = parseKeyFile(data, passphrase)
	}
	if err != nil {
		return nil, fmt.Errorf("unlock %s: %w", id, err)
	}
	if k.ID != id {
		return nil, fmt.Errorf("unlock %s: key file holds another account", id)
	}
	if err := r.applyRotations(ctx, k); err != nil {
		return nil, fmt.Errorf("unlock %s: %w", id, err)
	}
	return k, nil
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errors.New("not a local account of this repo (no key file)")
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFile {
		return nil, errors.New("key file too large")
	}
	return data, nil
}

// Account returns what the repo knows of account id.
func (r *Repo) Account(ctx context.Context, id protocol.AccountID) (AccountInfo, error) {
	st, err := r.state(ctx, id)
	if err != nil {
		return AccountInfo{}, err
	}
	info := AccountInfo{ID: id, Name: st.Name, Role: st.Role, Recipient: st.Recipient, Head: st.head(), Seq: st.Seq, Stopped: st.StoppedWhy, Devices: st.Devices}
	var la localAccount
	if info.Local, err = getJSON(ctx, r.ds, keyLocal(id), &la); err != nil {
		return AccountInfo{}, err
	}
	if info.Local {
		if data, err := readKeyFile(r.keyPath(id)); err == nil {
			info.Encrypted = keyFileEncrypted(data)
		}
		if def, err := r.ds.Get(ctx, keyDefault); err == nil && string(def) == string(id) {
			info.Default = true
		}
	}
	return info, nil
}

// Accounts lists every account the repo knows, local ones first, then by
// name.
func (r *Repo) Accounts(ctx context.Context) ([]AccountInfo, error) {
	keys, err := listKeys(ctx, r.ds, "/keyshare/acct/")
	if err != nil {
		return nil, err
	}
	out := make([]AccountInfo, 0, len(keys))
	for _, k := range keys {
		info, err := r.Account(ctx, protocol.AccountID(k.BaseNamespace()))
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Local != out[j].Local {
			return out[i].Local
		}
		return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name)
	})
	return out, nil
}

// Resolve finds a known account by ID, by a unique name (case-insensitive)
// or by a unique suffix of its ID of at least 6 characters. With local set
// it only considers local accounts, and the empty selector means the
// default account.
func (r *Repo) Resolve(ctx context.Context, sel string, local bool) (AccountInfo, error) {
	if sel == "" {
		if !local {
			return AccountInfo{}, errors.New("no account given")
		}
		def, err := r.ds.Get(ctx, keyDefault)
		if err != nil {
			return AccountInfo{}, errors.New("this repo has no account yet (run 'blockmrs init')")
		}
		return r.Account(ctx, protocol.AccountID(def))
	}
	if _, err := protocol.ParseAccountID(sel); err == nil {
		info, err := r.Account(ctx, protocol.AccountID(sel))
		if err != nil {
			return AccountInfo{}, err
		}
		if local && !info.Local {
			return AccountInfo{}, fmt.Errorf("%s is not an account of this repo", sel)
		}
		return info, nil
	}
	all, err := r.Accounts(ctx)
	if err != nil {
		return AccountInfo{}, err
	}
	var matches []AccountInfo
	for _, a := range all {
		if local && !a.Local {
			continue
		}
		if strings.EqualFold(a.Name, sel) || (len(sel) >= 6 && strings.HasSuffix(string(a.ID), sel)) {
			matches = append(matches, a)
		}
	}
	switch len(matches) {
	case 0:
		return AccountInfo{}, fmt.Errorf("no account named %q: %w", sel, ErrUnknownAccount)
	case 1:
		return matches[0], nil
	}
	return AccountInfo{}, fmt.Errorf("%d accounts match %q: use the account ID", len(matches), sel)
}

// SetDefault makes a local account the default one.
func (r *Repo) SetDefault(ctx context.Context, id protocol.AccountID) error {
	if ok, _ := r.ds.Has(ctx, keyLocal(id)); !ok {
		return fmt.Errorf("%s is not an account of this repo", id)
	}
	return r.ds.Put(ctx, keyDefault, []byte(id))
}
