package keyshare

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"filippo.io/age"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"

	"github.com/blockmrs/blockmrs/protocol"
)

// Signing-key succession: an account's chain continues under a new
// signing key while its ID (its first key) stays. See protocol/succession.go
// for the entry and PROTOCOL.md §5.14 for the rules; the decision of who
// may sign the next block is blockSigner in policy.go.

// ErrKeyRetired is returned when keys whose signing key the account's
// chain retired (a succession, a recovery) try to sign the chain.
var ErrKeyRetired = errors.New("this signing key was retired by a succession on the account's chain: this device no longer acts for the account (pair it again, or recover)")

// SignerError is a block refused because its signer may not sign the
// chain at that point.
type SignerError struct {
	Account  protocol.AccountID
	Seq      uint64
	Decision Decision
}

func (e *SignerError) Error() string {
	return fmt.Sprintf("chain of %s, block %d: %s (%s)", e.Account, e.Seq, e.Decision.Reason, e.Decision.Rule)
}

// signingState is a chain's signing key after a succession.
type signingState struct {
	Key     []byte   `json:"key"`   // the current signing key
	Since   uint64   `json:"since"` // the block holding the succession
	Block   string   `json:"block"`
	Retired [][]byte `json:"retired,omitempty"` // earlier signing keys, the account key first
}

// recoveryFacts is a chain's live recovery setup.
type recoveryFacts struct {
	Via       EntryRef `json:"via"`
	Threshold uint64   `json:"threshold"`
	Contacts  [][]byte `json:"contacts"`
}

func (rf *recoveryFacts) has(key []byte) bool {
	return slices.ContainsFunc(rf.Contacts, func(c []byte) bool { return bytes.Equal(c, key) })
}

// signerFacts returns what decides who signs the chain's next block.
func (st *accountState) signerFacts(account []byte) signerFacts {
	f := signerFacts{Account: account, Current: account, Recovery: st.Recovery}
	if st.Signing != nil {
		f.Current, f.Retired = st.Signing.Key, st.Signing.Retired
	}
	return f
}

// stateLookup returns the chain state of an account as a commit or a
// replay sees it; nil (and no error) when the repo holds no chain of it.
type stateLookup func(protocol.AccountID) (*accountState, error)

// admission is how blocks are admitted to a chain: lookup reads the
// chains of the recovery contacts whose approvals a block carries, and
// replay is set for blocks admitted before (verify's replay, a branch
// rebuilt): see approvalSigner.
type admission struct {
	lookup stateLookup
	replay bool
}

// contactSigning returns what the chain state st (nil: not held) of a
// contact with key contact says of its signing keys.
func (st *accountState) contactSigning(contact []byte) contactSigning {
	if st == nil {
		return contactSigning{}
	}
	f := st.signerFacts(contact)
	return contactSigning{Held: true, Current: f.Current, Retired: f.Retired}
}

// approvalContacts returns, by contact key, what lookup holds of the
// chains of the contacts approving s (nil when s carries no approvals).
func approvalContacts(s *protocol.Succession, lookup stateLookup) (map[string]contactSigning, error) {
	if s == nil || len(s.Approvals) == 0 || lookup == nil {
		return nil, nil
	}
	out := map[string]contactSigning{}
	for _, a := range s.Approvals {
		st, err := lookup(protocol.AccountIDFromKey(a.Contact))
		if err != nil {
			return nil, err
		}
		out[string(a.Contact)] = st.contactSigning(a.Contact)
	}
	return out, nil
}

// repoLookup is a stateLookup over the repo's committed chains.
func (r *Repo) repoLookup(ctx context.Context) stateLookup {
	return func(id protocol.AccountID) (*accountState, error) {
		st, err := r.state(ctx, id)
		if errors.Is(err, ErrUnknownAccount) {
			return nil, nil
		}
		return st, err
	}
}

// admitSigner checks, before b is applied, that its signer may sign the
// chain there (blockSigner).
func (st *accountState) admitSigner(b *protocol.Block, c cid.Cid, adm admission) error {
	if b.Seq == 0 {
		return nil // version 1, signed by the account key (DecodeBlock)
	}
	f := st.signerFacts(b.Author)
	contacts, err := approvalContacts(b.Succession(), adm.lookup)
	if err != nil {
		return err
	}
	f.Contacts, f.Replay = contacts, adm.replay
	d := blockSigner(f, b)
	if !d.Allow {
		return &SignerError{Account: b.AuthorID(), Seq: b.Seq, Decision: d}
	}
	return nil
}

// succeed applies a succession entry of block b, admitted already.
func (st *accountState) succeed(b *protocol.Block, s *protocol.Succession) {
	prev := st.signerFacts(b.Author)
	retired := append(slices.Clone(prev.Retired), prev.Current)
	st.Signing = &signingState{Key: slices.Clone(s.Key), Since: b.Seq, Retired: retired}
}

// setRecovery applies a recovery entry: it replaces the live setup, or
// ends it when it names no contacts.
func (st *accountState) setRecovery(s *protocol.RecoverySetup, via EntryRef) {
	st.recoverySet = true
	if len(s.Contacts) == 0 {
		st.Recovery = nil
		return
	}
	rf := &recoveryFacts{Via: via, Threshold: s.Threshold}
	for _, c := range s.Contacts {
		rf.Contacts = append(rf.Contacts, slices.Clone(c.Contact))
	}
	st.Recovery = rf
}

// checkSigner tells whether k may sign the chain now.
func (st *accountState) checkSigner(k *Keys) error {
	if !bytes.Equal(st.signerFacts(k.Public()).Current, k.SigningKey()) {
		return fmt.Errorf("%s: %w", k.ID, ErrKeyRetired)
	}
	return nil
}

// SigningInfo says which key signs an account's chain.
type SigningInfo struct {
	Account protocol.AccountID `json:"account"`
	// Key is the current signing key (hex); the account key until a
	// succession.
	Key string `json:"key"`
	// Since is the block whose succession made Key the signing key; 0
	// while the account key signs.
	Since uint64 `json:"since,omitempty"`
	// Retired counts the signing keys the chain retired.
	Retired int `json:"retired,omitempty"`
	// ThisDevice tells, for a local account, whether this repo's keys
	// sign the chain (false: they were retired).
	ThisDevice bool `json:"this_device"`
}

// Signing returns which key signs id's chain, and for a local account
// whether this repo's keys are that key.
func (r *Repo) Signing(ctx context.Context, id protocol.AccountID, k *Keys) (SigningInfo, error) {
	st, err := r.state(ctx, id)
	if err != nil {
		return SigningInfo{}, err
	}
	acct, err := id.Key()
	if err != nil {
		return SigningInfo{}, err
	}
	f := st.signerFacts(acct)
	info := SigningInfo{Account: id, Key: fmt.Sprintf("%x", f.Current), Retired: len(f.Retired)}
	if st.Signing != nil {
		info.Since = st.Signing.Since
	}
	if k != nil && k.ID == id {
		info.ThisDevice = bytes.Equal(f.Current, k.SigningKey())
	}
	return info, nil
}

// SuccessionOptions say what a succession changes besides the signing key.
type SuccessionOptions struct {
	// RotateAge makes a new age identity too and writes a profile entry
	// naming its recipient: records written after go to the new key, and
	// the old identity is kept in the key file for older ones.
	RotateAge bool
	// Entries are written in the succession's block after it (signed by
	// the key being retired): a device withdrawn, say.
	Entries []protocol.Entry
}

// Succeed continues k's chain under a fresh signing key: it writes a
// succession entry signed by k's current key naming the new key, and
// returns the new keys, which sign every block after. The account ID stays.
// The new keys are stored (encrypted with passphrase when the current key
// file is; passphrase must then open that file, or nothing is written)
// before the block is written, and replace the key file once it
// is: a crash in between leaves the new keys beside the old, which Unlock
// then picks according to the chain.
func (r *Repo) Succeed(ctx context.Context, k *Keys, passphrase []byte, opts SuccessionOptions) (*Keys, error) {
	data, err := readKeyFile(r.keyPath(k.ID))
	if err != nil {
		return nil, fmt.Errorf("succession of %s: %w", k.ID, err)
	}
	if keyFileEncrypted(data) {
		if len(passphrase) == 0 {
			return nil, fmt.Errorf("succession of %s: %w (the new keys are stored the same way)", k.ID, ErrPassphraseNeeded)
		}
		// The new keys are encrypted with passphrase: one that does not
		// open the current key file (a typo) would lock them for good.
		cur, err := parseKeyFile(data, passphrase)
		if err != nil {
			return nil, fmt.Errorf("succession of %s: the current key file: %w (nothing was changed)", k.ID, err)
		}
		same := bytes.Equal(cur.SigningKey(), k.SigningKey())
		cur.Wipe()
		if !same {
			return nil, fmt.Errorf("succession of %s: the key file holds another signing key than the unlocked one (unlock the account again, then retry)", k.ID)
		}
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	nk := &Keys{ID: k.ID, Sign: priv, Age: k.Age, Old: slices.Clone(k.Old), account: slices.Clone(k.Public())}
	entries := []protocol.Entry{protocol.NewSuccessionEntry(&protocol.Succession{Key: nk.SigningKey()})}
	if opts.RotateAge {
		if nk.Age, err = age.GenerateX25519Identity(); err != nil {
			return nil, fmt.Errorf("generate age identity: %w", err)
		}
		nk.Old = append(nk.Old, k.Age)
		info, err := r.Account(ctx, k.ID)
		if err != nil {
			return nil, err
		}
		entries = append(entries, protocol.NewEntry(&protocol.Profile{Name: info.Name, Role: info.Role, Recipient: nk.Age.Recipient().String()}))
	}
	entries = append(entries, opts.Entries...)

	r.mu.Lock()
	defer r.mu.Unlock()
	next := r.keyPath(k.ID) + ".next"
	if _, err := os.Stat(next); err == nil {
		return nil, fmt.Errorf("succession of %s: an earlier succession did not finish (%s): unlock the account first", k.ID, next)
	}
	kf, err := marshalKeyFile(nk, passphrase)
	if err != nil {
		return nil, err
	}
	if err := writeFileOnce(next, kf, 0o600); err != nil {
		return nil, fmt.Errorf("write new key file: %w", err)
	}
	if _, err := r.appendBlock(ctx, k, entries); err != nil {
		_ = os.Remove(next) // the chain did not change: the new keys sign nothing
		return nil, fmt.Errorf("succession of %s: %w", k.ID, err)
	}
	if err := r.promoteNextKeyFile(k.ID); err != nil {
		return nil, err
	}
	r.cache.invalidate()
	return nk, nil
}

// promoteNextKeyFile makes the ".next" key file of id (the keys of a
// succession written on the chain) its key file.
func (r *Repo) promoteNextKeyFile(id protocol.AccountID) error {
	path := r.keyPath(id)
	if err := os.Rename(path+".next", path); err != nil {
		return fmt.Errorf("install new key file (the new keys are in %s.next): %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// settleNextKeyFile finishes or undoes a succession interrupted between
// its key file and its block: when the chain's signing key is the one in
// id's ".next" key file, that file becomes the key file; when not, the
// succession never reached the chain and the file is removed.
func (r *Repo) settleNextKeyFile(ctx context.Context, id protocol.AccountID, passphrase []byte) error {
	next := r.keyPath(id) + ".next"
	data, err := os.ReadFile(next)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	nk, err := parseKeyFile(data, passphrase)
	if err != nil {
		return fmt.Errorf("unfinished succession (%s): %w", next, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := os.Stat(next); err != nil {
		return nil // settled meanwhile
	}
	st, err := r.state(ctx, id)
	if err != nil {
		return err
	}
	acct, err := id.Key()
	if err != nil {
		return err
	}
	if bytes.Equal(st.signerFacts(acct).Current, nk.SigningKey()) {
		return r.promoteNextKeyFile(id)
	}
	if _, err := os.Stat(r.keyPath(id)); err != nil {
		return nil // a recovery in progress keeps its keys there (recovery.go)
	}
	return os.Remove(next)
}

// recoveryToPrefix indexes, by contact, the accounts whose chains named it
// in a recovery setup: /keyshare/recoveryto/CONTACT/OWNER. Entries are
// never removed (a later setup may drop the contact); they only make the
// owner a candidate, and the live setup decides (serveChainToContacts).
const recoveryToPrefix = "/keyshare/recoveryto/"

// newRecovery returns the recovery setup the blocks being applied to st
// put in place, or nil when they made none (or ended the live one): what
// indexRecovery has to index.
func (st *accountState) newRecovery() *recoveryFacts {
	if !st.recoverySet {
		return nil
	}
	return st.Recovery
}

// indexRecovery writes to w the index entries of owner's new recovery
// setup rec (newRecovery), one per contact.
func indexRecovery(ctx context.Context, w datastore.Write, owner protocol.AccountID, rec *recoveryFacts) error {
	if rec == nil {
		return nil
	}
	for _, c := range rec.Contacts {
		k := datastore.NewKey(recoveryToPrefix + string(protocol.AccountIDFromKey(c)) + "/" + string(owner))
		if err := w.Put(ctx, k, nil); err != nil {
			return err
		}
	}
	return nil
}

// recoveryOwners returns the accounts whose chains named id as a
// recovery contact.
func (r *Repo) recoveryOwners(ctx context.Context, id protocol.AccountID) ([]protocol.AccountID, error) {
	return r.accountsUnder(ctx, recoveryToPrefix+string(id)+"/")
}

// signerRetired tells whether signer, signing for account (its key), is
// a key this repo's copy of the account's chain retired or never named
// (messageSigner refuses it); false when the repo holds no chain of it.
func (r *Repo) signerRetired(ctx context.Context, account, signer []byte) (bool, error) {
	st, err := r.state(ctx, protocol.AccountIDFromKey(account))
	if errors.Is(err, ErrUnknownAccount) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return !messageSigner(true, st.signerFacts(account), account, signer).Allow, nil
}

// checkMessageSigner tells whether a request or answer from account
// (its key), signed by signer, speaks for it, as this repo's copy of the
// account's chain says (messageSigner).
func (r *Repo) checkMessageSigner(ctx context.Context, account, signer []byte) error {
	id := protocol.AccountIDFromKey(account)
	st, err := r.state(ctx, id)
	held := err == nil
	if err != nil && !errors.Is(err, ErrUnknownAccount) {
		return err
	}
	var f signerFacts
	if held {
		f = st.signerFacts(account)
	}
	if d := messageSigner(held, f, account, signer); !d.Allow {
		return fmt.Errorf("%s (%s)", d.Reason, d.Rule)
	}
	return nil
}

// checkOwnSigner tells whether k's signing key is the one this repo's
// copy of k's chain names now (a device whose key was retired signs
// nothing for the account: ErrKeyRetired).
func (r *Repo) checkOwnSigner(ctx context.Context, k *Keys) error {
	st, err := r.state(ctx, k.ID)
	if err != nil {
		return err
	}
	return st.checkSigner(k)
}
