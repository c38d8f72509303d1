package keyshare

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"filippo.io/age"
	"github.com/cloudflare/circl/group"
	"github.com/cloudflare/circl/secretsharing"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/blockmrs/blockmrs/protocol"
)

// Social recovery (PROTOCOL.md §5.15, SECURITY.md "Recovery of a lost
// key"). An account names recovery contacts and a threshold k on its
// chain; a random secret is split k-of-n (Shamir over ristretto255,
// circl's secretsharing) and each share is age-encrypted to one contact;
// the account's age identities are sealed on the chain under a key
// derived from the secret. After losing every device, a new repo starts
// a recovery (a new signing key and age identity, and a request signed by
// the new key); each contact that approves signs an approval and
// re-encrypts its share to the new age recipient; with k approvals the
// new repo rebuilds the secret, opens the old identities and writes a
// succession signed by the new key carrying the approvals, which every
// verifier checks (recoveryApproved in policy.go).

// ErrRecovery is wrapped by every refusal of a recovery step.
var ErrRecovery = errors.New("recovery refused")

// recoverySealInfo is the HKDF info of the key that seals the identities.
const recoverySealInfo = "BlockMRS recovery seal v1"

// shareVersion names the plaintext format of a share.
const shareVersion = "blockmrs-recovery-share/1"

// sharePlain is a share's plaintext, before it is encrypted to a contact.
type sharePlain struct {
	Version string `json:"v"`
	Account string `json:"account"`
	X       uint64 `json:"x"` // the share's ID, 1..n
	Y       string `json:"y"` // the share's value, hex of a ristretto255 scalar
}

// RecoveryInfo describes an account's live recovery setup.
type RecoveryInfo struct {
	Account   protocol.AccountID   `json:"account"`
	Threshold uint64               `json:"threshold"`
	Contacts  []protocol.AccountID `json:"contacts"`
	Setup     EntryRef             `json:"setup"`
}

// Recovery returns id's live recovery setup, or nil when it has none.
func (r *Repo) Recovery(ctx context.Context, id protocol.AccountID) (*RecoveryInfo, error) {
	st, err := r.state(ctx, id)
	if err != nil {
		return nil, err
	}
	return recoveryInfo(id, st.Recovery), nil
}

func recoveryInfo(id protocol.AccountID, rf *recoveryFacts) *RecoveryInfo {
	if rf == nil {
		return nil
	}
	info := &RecoveryInfo{Account: id, Threshold: rf.Threshold, Setup: rf.Via}
	for _, c := range rf.Contacts {
		info.Contacts = append(info.Contacts, protocol.AccountIDFromKey(c))
	}
	return info
}

// RecoveryContactOf lists the accounts whose live recovery setup names
// one of this repo's local accounts as a contact.
func (r *Repo) RecoveryContactOf(ctx context.Context) ([]RecoveryInfo, error) {
	all, err := r.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	local := map[string]bool{}
	for _, a := range all {
		if a.Local {
			local[string(keyOf(a.ID))] = true
		}
	}
	var out []RecoveryInfo
	for _, a := range all {
		st, err := r.state(ctx, a.ID)
		if err != nil {
			return nil, err
		}
		if st.Recovery == nil || a.Local {
			continue
		}
		if slices.ContainsFunc(st.Recovery.Contacts, func(c []byte) bool { return local[string(c)] }) {
			out = append(out, *recoveryInfo(a.ID, st.Recovery))
		}
	}
	return out, nil
}

// SetupRecovery names contacts as k's recovery contacts, threshold of
// whom must approve a recovery, on k's chain. It replaces any earlier
// setup (whose shares then open nothing written after). No contacts and
// threshold 0 turn recovery off.
func (r *Repo) SetupRecovery(ctx context.Context, k *Keys, contacts []protocol.AccountID, threshold int) (cid.Cid, error) {
	setup, err := r.buildRecoverySetup(ctx, k, contacts, threshold)
	if err != nil {
		return cid.Undef, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.appendBlock(ctx, k, []protocol.Entry{protocol.NewEntry(setup)})
}

func (r *Repo) buildRecoverySetup(ctx context.Context, k *Keys, contacts []protocol.AccountID, threshold int) (*protocol.RecoverySetup, error) {
	if len(contacts) == 0 {
		if threshold != 0 {
			return nil, errors.New("recovery setup: a threshold needs contacts (give --contacts, or --off)")
		}
		return &protocol.RecoverySetup{}, nil
	}
	if len(contacts) > protocol.MaxRecoveryContacts {
		return nil, fmt.Errorf("recovery setup: %d contacts, at most %d", len(contacts), protocol.MaxRecoveryContacts)
	}
	if threshold < 1 || threshold > len(contacts) {
		return nil, fmt.Errorf("recovery setup: threshold %d must be 1 to the number of contacts (%d)", threshold, len(contacts))
	}
	type target struct {
		key  []byte
		rcpt *age.X25519Recipient
	}
	var targets []target
	for _, c := range contacts {
		if c == k.ID {
			return nil, errors.New("recovery setup: an account cannot be its own recovery contact")
		}
		info, err := r.Account(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("recovery contact %s: %w", c, err)
		}
		rcpt, err := info.AgeRecipient()
		if err != nil {
			return nil, fmt.Errorf("recovery contact %s: %w", c, err)
		}
		if slices.ContainsFunc(targets, func(t target) bool { return bytes.Equal(t.key, keyOf(c)) }) {
			return nil, fmt.Errorf("recovery setup: %s named twice", c)
		}
		targets = append(targets, target{key: keyOf(c), rcpt: rcpt})
	}
	slices.SortFunc(targets, func(a, b target) int { return bytes.Compare(a.key, b.key) })

	g := group.Ristretto255
	secret := g.RandomScalar(rand.Reader)
	// circl's t is the polynomial's degree: t+1 shares recover it.
	shares := secretsharing.New(rand.Reader, uint(threshold-1), secret).Share(uint(len(targets)))
	sealed, err := sealIdentities(k, secret)
	if err != nil {
		return nil, err
	}
	setup := &protocol.RecoverySetup{Threshold: uint64(threshold), Sealed: sealed}
	for i, t := range targets {
		y, err := shares[i].Value.MarshalBinary()
		if err != nil {
			return nil, err
		}
		plain, err := json.Marshal(sharePlain{Version: shareVersion, Account: string(k.ID), X: uint64(i + 1), Y: hex.EncodeToString(y)})
		if err != nil {
			return nil, err
		}
		enc, err := seal(plain, t.rcpt)
		if err != nil {
			return nil, fmt.Errorf("encrypt share: %w", err)
		}
		setup.Contacts = append(setup.Contacts, protocol.RecoveryShare{Contact: t.key, Share: enc})
	}
	if err := setup.Validate(); err != nil {
		return nil, fmt.Errorf("recovery setup: %w", err)
	}
	return setup, nil
}

// sealKey derives the key sealing account's identities from the secret.
func sealKey(account []byte, secret group.Scalar) ([]byte, error) {
	sb, err := secret.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return hkdf.Key(sha256.New, sb, account, recoverySealInfo, chacha20poly1305.KeySize)
}

// sealIdentities seals k's age identities (current first, then older)
// under the key derived from secret: nonce || ChaCha20-Poly1305, with the
// account key as additional data.
func sealIdentities(k *Keys, secret group.Scalar) ([]byte, error) {
	key, err := sealKey(k.Public(), secret)
	if err != nil {
		return nil, err
	}
	ids := []string{k.Age.String()}
	for _, o := range k.Old {
		ids = append(ids, o.String())
	}
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := aead.Seal(nonce, nonce, []byte(strings.Join(ids, "\n")), k.Public())
	if len(out) > protocol.MaxRecoverySealed {
		return nil, fmt.Errorf("recovery setup: %d age identities are too many to seal", len(ids))
	}
	return out, nil
}

// openIdentities opens what sealIdentities sealed.
func openIdentities(account, sealed []byte, secret group.Scalar) ([]*age.X25519Identity, error) {
	key, err := sealKey(account, secret)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize() {
		return nil, errors.New("sealed identities too short")
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], account)
	if err != nil {
		return nil, errors.New("the shares do not open the sealed identities (a contact sent a wrong share)")
	}
	var out []*age.X25519Identity
	for _, s := range strings.Split(string(plain), "\n") {
		id, err := age.ParseX25519Identity(s)
		if err != nil {
			return nil, fmt.Errorf("sealed identity: %w", err)
		}
		out = append(out, id)
	}
	return out, nil
}

// pendingRecovery is a recovery this repo started and has not finished.
type pendingRecovery struct {
	Request   []byte   `json:"request"`   // the encoded, signed request
	Responses [][]byte `json:"responses"` // encoded responses, one per contact
	// Via are addresses of contacts' nodes to deliver the request to,
	// besides the nodes the contacts' chains declare.
	Via []string `json:"via,omitempty"`
}

// recoveringPrefix holds the recoveries this repo started.
const recoveringPrefix = "/keyshare/recovering/"

func keyRecovery(id protocol.AccountID) datastore.Key {
	return datastore.NewKey(recoveringPrefix + string(id))
}

// RecoveryStatus is the state of a recovery this repo started.
type RecoveryStatus struct {
	Account protocol.AccountID `json:"account"`
	// Request is the request's ID (hex); Token the request itself
	// (hex of its encoding), to give the contacts.
	Request string `json:"request"`
	Token   string `json:"token"`
	// SafetyCode, derived from the request's ID, is what each contact's
	// node shows with the request: read it out to them when they call.
	SafetyCode string               `json:"safety_code"`
	Threshold  uint64               `json:"threshold"`
	Contacts   []protocol.AccountID `json:"contacts"`
	Approved   []protocol.AccountID `json:"approved"`
	// Via are the contact nodes' addresses given at start.
	Via []string `json:"via,omitempty"`
	// Ready tells whether enough contacts approved to finish.
	Ready bool `json:"ready"`
}

// StartRecovery begins the recovery of account id, whose chain this repo
// holds but whose keys it does not: it makes a new signing key and age
// identity (stored, encrypted with passphrase when given, until the
// recovery finishes) and a request signed by the new key for the
// account's recovery contacts.
func (r *Repo) StartRecovery(ctx context.Context, id protocol.AccountID, passphrase []byte) (*RecoveryStatus, error) {
	return r.StartRecoveryVia(ctx, id, passphrase, nil)
}

// StartRecoveryVia is StartRecovery that also names contacts' nodes (by
// multiaddr with /p2p/) a running node delivers the request to, besides
// the nodes the contacts' chains declare.
func (r *Repo) StartRecoveryVia(ctx context.Context, id protocol.AccountID, passphrase []byte, via []string) (*RecoveryStatus, error) {
	if len(via) > protocol.MaxRecoveryContacts {
		return nil, fmt.Errorf("recovery of %s: %d contact nodes named, at most %d", id, len(via), protocol.MaxRecoveryContacts)
	}
	st, err := r.state(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("recovery of %s: %w (add the account as a contact first, from one of its contacts' nodes)", id, err)
	}
	if _, err := os.Stat(r.keyPath(id)); err == nil {
		return nil, fmt.Errorf("recovery of %s: this repo holds its keys already", id)
	}
	if st.Recovery == nil {
		return nil, fmt.Errorf("%w: %s names no recovery contacts", ErrRecovery, id)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if found, _ := getJSON(ctx, r.ds, keyRecovery(id), &pendingRecovery{}); found {
		return nil, fmt.Errorf("recovery of %s already started here: see 'recovery status', or 'recovery cancel'", id)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	ageID, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	nk := &Keys{ID: id, Sign: priv, Age: ageID, account: keyOf(id)}
	q := &protocol.RecoveryRequest{Account: keyOf(id), Key: nk.SigningKey(), Recipient: ageID.Recipient().String(), Time: r.now().UnixMilli()}
	raw, err := q.Sign(priv)
	if err != nil {
		return nil, err
	}
	kf, err := marshalKeyFile(nk, passphrase)
	if err != nil {
		return nil, err
	}
	next := r.keyPath(id) + ".next"
	_ = os.Remove(next) // keys of a recovery cancelled before; no chain names them
	if err := writeFileOnce(next, kf, 0o600); err != nil {
		return nil, fmt.Errorf("write new key file: %w", err)
	}
	if err := putJSON(ctx, r.ds, keyRecovery(id), pendingRecovery{Request: raw, Via: via}); err != nil {
		return nil, err
	}
	r.kickRecovery()
	return r.recoveryStatus(ctx, id)
}

// CancelRecovery forgets a recovery this repo started, and its new keys.
func (r *Repo) CancelRecovery(ctx context.Context, id protocol.AccountID) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if found, err := getJSON(ctx, r.ds, keyRecovery(id), &pendingRecovery{}); err != nil || !found {
		return fmt.Errorf("no recovery of %s started here", id)
	}
	if _, err := os.Stat(r.keyPath(id)); err != nil {
		_ = os.Remove(r.keyPath(id) + ".next")
	}
	return r.ds.Delete(ctx, keyRecovery(id))
}

// startedRecovery loads the recovery of id this repo started, and id's
// chain state. The caller holds r.mu.
func (r *Repo) startedRecovery(ctx context.Context, id protocol.AccountID) (pendingRecovery, *accountState, error) {
	var p pendingRecovery
	found, err := getJSON(ctx, r.ds, keyRecovery(id), &p)
	if err != nil {
		return p, nil, err
	}
	if !found {
		return p, nil, fmt.Errorf("no recovery of %s started here (run 'recovery start %s')", id, id)
	}
	st, err := r.state(ctx, id)
	return p, st, err
}

// RecoveryStatus returns the state of the recovery of id this repo started.
func (r *Repo) RecoveryStatus(ctx context.Context, id protocol.AccountID) (*RecoveryStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.recoveryStatus(ctx, id)
}

func (r *Repo) recoveryStatus(ctx context.Context, id protocol.AccountID) (*RecoveryStatus, error) {
	p, st, err := r.startedRecovery(ctx, id)
	if err != nil {
		return nil, err
	}
	reqID := protocol.RecoveryRequestID(p.Request)
	s := &RecoveryStatus{Account: id, Request: hex.EncodeToString(reqID), Token: hex.EncodeToString(p.Request),
		SafetyCode: RecoverySafetyCode(reqID), Via: p.Via, Approved: []protocol.AccountID{}}
	if info := recoveryInfo(id, st.Recovery); info != nil {
		s.Threshold, s.Contacts = info.Threshold, info.Contacts
	}
	succ, _, err := p.succession(st, r.repoLookup(ctx))
	if err != nil {
		return nil, err
	}
	for _, a := range succ.Approvals {
		s.Approved = append(s.Approved, protocol.AccountIDFromKey(a.Contact))
	}
	contacts, err := approvalContacts(succ, r.repoLookup(ctx))
	if err != nil {
		return nil, err
	}
	s.Ready = recoveryApproved(keyOf(id), st.Recovery, succ, contacts, false).Allow
	return s, nil
}

// succession builds the succession the pending recovery would write, with
// the approvals of its responses that count under the live setup, and
// returns those responses' shares. lookup reads the contacts' chains
// (approvalSigner).
func (p *pendingRecovery) succession(st *accountState, lookup stateLookup) (*protocol.Succession, [][]byte, error) {
	q, err := protocol.DecodeRecoveryRequest(p.Request)
	if err != nil {
		return nil, nil, err
	}
	reqID := protocol.RecoveryRequestID(p.Request)
	s := &protocol.Succession{Key: q.Key, Request: reqID}
	var shares [][]byte
	for _, raw := range p.Responses {
		resp, err := protocol.DecodeRecoveryResponse(raw)
		if err != nil {
			return nil, nil, err
		}
		a := resp.Approval
		if st.Recovery == nil || !st.Recovery.has(a.Contact) || a.Setup.Cid.String() != st.Recovery.Via.Block || a.VerifyFor(q.Account, q.Key, reqID) != nil {
			continue // the setup changed since, or it never counted
		}
		cst, err := lookup(protocol.AccountIDFromKey(a.Contact))
		if err != nil {
			return nil, nil, err
		}
		if !approvalSigner(a.Contact, cst.contactSigning(a.Contact), a.SignerKey(), false).Allow {
			continue // the contact's chain retired the key since
		}
		s.Approvals = append(s.Approvals, a)
		shares = append(shares, resp.Share)
	}
	return s, shares, nil
}

// ApproveRecovery answers a recovery request (its encoding) as k, a
// recovery contact of the account it names: it signs an approval of the
// new key for this request under the account's live setup, and
// re-encrypts k's share to the request's recipient. The response goes
// back to the requester (AddRecoveryResponse).
//
// Approving hands the requester a share: approve only when the account's
// owner asked you, by a channel you trust, for exactly this request.
func (r *Repo) ApproveRecovery(ctx context.Context, k *Keys, request []byte) ([]byte, error) {
	q, err := protocol.DecodeRecoveryRequest(request)
	if err != nil {
		return nil, err
	}
	id := protocol.AccountIDFromKey(q.Account)
	st, err := r.state(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("recovery of %s: %w", id, err)
	}
	if d := mayApproveRecovery(st.Recovery, k.Public()); !d.Allow {
		return nil, fmt.Errorf("%w: %s (%s)", ErrRecovery, d.Reason, d.Rule)
	}
	if err := r.checkOwnSigner(ctx, k); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRecovery, err)
	}
	setupCID, err := cid.Decode(st.Recovery.Via.Block)
	if err != nil {
		return nil, err
	}
	setup, err := r.recoverySetupAt(ctx, st.Recovery.Via)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(setup.Contacts, func(c protocol.RecoveryShare) bool { return bytes.Equal(c.Contact, k.Public()) })
	if i < 0 {
		return nil, fmt.Errorf("%w: no share for %s in the setup", ErrRecovery, k.ID)
	}
	plain, err := unseal(setup.Contacts[i].Share, k.decryptor(), 1024)
	if err != nil {
		return nil, fmt.Errorf("open your recovery share: %w", err)
	}
	rcpt, err := age.ParseX25519Recipient(q.Recipient)
	if err != nil {
		return nil, err
	}
	share, err := seal(plain, rcpt)
	if err != nil {
		return nil, err
	}
	reqID := protocol.RecoveryRequestID(request)
	// Signed by k's signing key (a successor's, after a succession on k's
	// chain), carried as the approval's signer; verifiers check it
	// against k's chain (approvalSigner).
	a, err := protocol.SignRecoveryApprovalAs(k.Public(), k.Sign, q.Account, q.Key, reqID, protocol.NewLink(setupCID))
	if err != nil {
		return nil, err
	}
	resp := &protocol.RecoveryResponse{Request: reqID, Approval: a, Share: share}
	return resp.Encode()
}

// recoverySetupAt reads the recovery entry at ref.
func (r *Repo) recoverySetupAt(ctx context.Context, ref EntryRef) (*protocol.RecoverySetup, error) {
	c, err := cid.Decode(ref.Block)
	if err != nil {
		return nil, err
	}
	b, err := r.readBlock(ctx, c)
	if err != nil {
		return nil, err
	}
	if ref.Index >= len(b.Entries) {
		return nil, errors.New("recovery setup entry missing")
	}
	s, ok := b.Entries[ref.Index].Body.(*protocol.RecoverySetup)
	if !ok {
		return nil, errors.New("recovery setup entry missing")
	}
	return s, nil
}

// AddRecoveryResponse adds a contact's response to the recovery of id
// this repo started. A response that does not count (not for this
// request, not by a contact of the live setup, a bad signature) is
// refused; a second response by one contact replaces its first.
func (r *Repo) AddRecoveryResponse(ctx context.Context, id protocol.AccountID, response []byte) (*RecoveryStatus, error) {
	resp, err := protocol.DecodeRecoveryResponse(response)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	p, st, err := r.startedRecovery(ctx, id)
	if err != nil {
		return nil, err
	}
	q, err := protocol.DecodeRecoveryRequest(p.Request)
	if err != nil {
		return nil, err
	}
	reqID := protocol.RecoveryRequestID(p.Request)
	cst, err := r.repoLookup(ctx)(protocol.AccountIDFromKey(resp.Approval.Contact))
	if err != nil {
		return nil, err
	}
	if d := recoveryResponseCounts(q.Account, st.Recovery, reqID, q.Key, resp, cst.contactSigning(resp.Approval.Contact)); !d.Allow {
		return nil, fmt.Errorf("%w: %s", ErrRecovery, d.Reason)
	}
	p.Responses = slices.DeleteFunc(p.Responses, func(raw []byte) bool {
		o, err := protocol.DecodeRecoveryResponse(raw)
		return err != nil || bytes.Equal(o.Approval.Contact, resp.Approval.Contact)
	})
	p.Responses = append(p.Responses, response)
	if err := putJSON(ctx, r.ds, keyRecovery(id), p); err != nil {
		return nil, err
	}
	return r.recoveryStatus(ctx, id)
}

// FinishRecovery completes the recovery of id once enough contacts
// approved: it rebuilds the secret from their shares, opens the account's
// old age identities, writes a succession signed by the new key with the
// approvals, a profile naming the new age recipient and the nodes given,
// and makes id a local account of this repo with the new keys (which
// keep the old identities, so old records stay readable).
func (r *Repo) FinishRecovery(ctx context.Context, id protocol.AccountID, passphrase []byte, nodes ...DeviceInfo) (*Keys, error) {
	next := r.keyPath(id) + ".next"
	data, err := os.ReadFile(next)
	if err != nil {
		return nil, fmt.Errorf("recovery of %s: the new keys are missing (%v): start again", id, err)
	}
	nk, err := parseKeyFile(data, passphrase)
	if err != nil {
		return nil, fmt.Errorf("recovery of %s: %w", id, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	p, st, err := r.startedRecovery(ctx, id)
	if err != nil {
		return nil, err
	}
	succ, shares, err := p.succession(st, r.repoLookup(ctx))
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(succ.Key, nk.SigningKey()) {
		return nil, fmt.Errorf("recovery of %s: the stored keys are not the request's", id)
	}
	contacts, err := approvalContacts(succ, r.repoLookup(ctx))
	if err != nil {
		return nil, err
	}
	if d := recoveryApproved(keyOf(id), st.Recovery, succ, contacts, false); !d.Allow {
		return nil, fmt.Errorf("%w: %s", ErrRecovery, d.Reason)
	}
	setup, err := r.recoverySetupAt(ctx, st.Recovery.Via)
	if err != nil {
		return nil, err
	}
	old, err := recoverIdentities(id, nk, setup, shares)
	if err != nil {
		return nil, fmt.Errorf("recovery of %s: %w", id, err)
	}
	nk.Old = old

	entries := []protocol.Entry{
		protocol.NewSuccessionEntry(succ),
		protocol.NewEntry(&protocol.Profile{Name: st.Name, Role: st.Role, Recipient: nk.Age.Recipient().String()}),
	}
	// Every device the chain declared was lost (or is a thief's): its
	// node no longer acts for the account, nor is served its chain and
	// records. Replicas (nodes keeping the ciphertext for the account, a
	// clinic's say) stay.
	for _, d := range st.Devices {
		if d.Replica || slices.ContainsFunc(nodes, func(n DeviceInfo) bool { return n.PeerID == d.PeerID }) {
			continue
		}
		raw, err := protocol.ParsePeerID(d.PeerID)
		if err != nil {
			return nil, err
		}
		entries = append(entries, protocol.NewEntry(&protocol.Device{Peer: raw, Name: d.Name, Remove: true}))
	}
	for _, n := range nodes {
		raw, err := protocol.ParsePeerID(n.PeerID)
		if err != nil {
			return nil, err
		}
		entries = append(entries, protocol.NewEntry(&protocol.Device{Peer: raw, Name: n.Name, Replica: n.Replica}))
	}
	link := protocol.NewLink(st.head())
	t := r.now().UnixMilli()
	if t < st.Time {
		t = st.Time
	}
	b := &protocol.Block{Seq: st.Seq + 1, Prev: &link, Time: t, Entries: entries}
	raw, c, err := b.SignAs(keyOf(id), nk.Sign)
	if err != nil {
		return nil, fmt.Errorf("sign the recovery block: %w", err)
	}
	// The new keys, now with the old identities, replace the pending key
	// file before the block is written and become the key file after: a
	// crash in between leaves them where Unlock finds them (the chain
	// then names their signing key, settleNextKeyFile).
	kf, err := marshalKeyFile(nk, passphrase)
	if err != nil {
		return nil, err
	}
	tmp := next + ".tmp"
	_ = os.Remove(tmp)
	if err := writeFileOnce(tmp, kf, 0o600); err != nil {
		return nil, fmt.Errorf("write key file: %w", err)
	}
	if err := os.Rename(tmp, next); err != nil {
		return nil, fmt.Errorf("write key file: %w", err)
	}
	if err := r.commit(ctx, []verifiedBlock{{cid: c, block: b, raw: raw}}); err != nil {
		return nil, fmt.Errorf("recovery of %s: %w", id, err)
	}
	if err := r.promoteNextKeyFile(id); err != nil {
		return nil, err
	}
	if err := putJSON(ctx, r.ds, keyLocal(id), localAccount{Created: t}); err != nil {
		return nil, err
	}
	if _, err := r.ds.Get(ctx, keyDefault); err != nil {
		if err := r.ds.Put(ctx, keyDefault, []byte(id)); err != nil {
			return nil, err
		}
	}
	if err := r.ds.Delete(ctx, keyRecovery(id)); err != nil {
		return nil, err
	}
	r.cache.invalidate()
	// The commit above told the listeners of the block before the account
	// was local here; now it is, every record it may read is wanted (the
	// node's fetch loop would otherwise wait for its next full scan).
	r.chainsChanged(nil, nil, true)
	return nk, nil
}

// recoverIdentities decrypts the shares with nk's age identity, rebuilds
// the secret and opens the setup's sealed identities.
func recoverIdentities(id protocol.AccountID, nk *Keys, setup *protocol.RecoverySetup, shares [][]byte) ([]*age.X25519Identity, error) {
	g := group.Ristretto255
	var ss []secretsharing.Share
	for _, enc := range shares {
		plain, err := unseal(enc, nk.Age, 1024)
		if err != nil {
			return nil, fmt.Errorf("open a share: %w", err)
		}
		var sp sharePlain
		if err := json.Unmarshal(plain, &sp); err != nil || sp.Version != shareVersion || sp.Account != string(id) || sp.X == 0 || sp.X > uint64(len(setup.Contacts)) {
			return nil, errors.New("a contact sent a share that is not one of this account's")
		}
		y, err := hex.DecodeString(sp.Y)
		if err != nil {
			return nil, errors.New("a contact sent a malformed share")
		}
		v := g.NewScalar()
		if err := v.UnmarshalBinary(y); err != nil {
			return nil, errors.New("a contact sent a malformed share")
		}
		if slices.ContainsFunc(ss, func(s secretsharing.Share) bool { return s.ID.IsEqual(g.NewScalar().SetUint64(sp.X)) }) {
			continue
		}
		ss = append(ss, secretsharing.Share{ID: g.NewScalar().SetUint64(sp.X), Value: v})
	}
	if uint64(len(ss)) < setup.Threshold {
		return nil, fmt.Errorf("%d distinct shares, %d needed", len(ss), setup.Threshold)
	}
	secret, err := secretsharing.Recover(uint(setup.Threshold-1), ss)
	if err != nil {
		return nil, err
	}
	return openIdentities(keyOf(id), setup.Sealed, secret)
}
