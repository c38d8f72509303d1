package keyshare

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"syscall"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/blockmrs/blockmrs/protocol"
)

// ErrWrongPassphrase is returned when an account's key file does not open
// with the passphrase given.
var ErrWrongPassphrase = errors.New("wrong passphrase")

// ErrPassphraseNeeded is returned when an account's keys are encrypted and
// no passphrase was given.
var ErrPassphraseNeeded = errors.New("account keys are encrypted: a passphrase is needed")

// Keys are an account's unlocked private keys: the Ed25519 key that signs
// its chain and the age X25519 identity that unwraps record keys.
type Keys struct {
	ID   protocol.AccountID
	Sign ed25519.PrivateKey
	Age  *age.X25519Identity
	// Old are earlier age identities of the account, kept after the
	// decryption key rotated (a succession, a recovery) so that records
	// wrapped to them stay readable.
	Old []*age.X25519Identity
	// account is the key ID names when Sign is a successor key
	// (succession.go); nil when Sign is the account's own key.
	account ed25519.PublicKey

	// opened is the session's cache of opened envelopes (opened.go);
	// nil for keys outside a session. Copies share it.
	opened *openedCache
}

// GenerateKeys makes a fresh account key pair.
func GenerateKeys() (*Keys, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, fmt.Errorf("generate age identity: %w", err)
	}
	return newKeys(priv, id), nil
}

// KeysFromSeed rebuilds keys from a 32-byte Ed25519 seed and an age
// identity string ("AGE-SECRET-KEY-1…"). It exists for test vectors and
// reproducible examples; real accounts use GenerateKeys.
func KeysFromSeed(signSeed []byte, ageIdentity string) (*Keys, error) {
	if len(signSeed) != ed25519.SeedSize {
		return nil, errors.New("keyshare: signing seed must be 32 bytes")
	}
	id, err := age.ParseX25519Identity(ageIdentity)
	if err != nil {
		return nil, fmt.Errorf("keyshare: %w", err)
	}
	return newKeys(ed25519.NewKeyFromSeed(signSeed), id), nil
}

func newKeys(priv ed25519.PrivateKey, id *age.X25519Identity) *Keys {
	return &Keys{ID: protocol.AccountIDFromKey(priv.Public().(ed25519.PublicKey)), Sign: priv, Age: id}
}

// Public returns the account's Ed25519 public key: the one its ID names,
// which is not the signing key after a succession (see SigningKey).
func (k *Keys) Public() ed25519.PublicKey {
	if k.account != nil {
		return k.account
	}
	return k.Sign.Public().(ed25519.PublicKey)
}

// SigningKey returns the public key of the key that signs k's chain.
func (k *Keys) SigningKey() ed25519.PublicKey { return k.Sign.Public().(ed25519.PublicKey) }

// Successor reports whether k signs with a key other than the account's
// own (after a succession).
func (k *Keys) Successor() bool { return k.account != nil }

// decryptor returns the identity that unwraps keys wrapped for k: its
// age identity, or that and the older ones.
func (k *Keys) decryptor() age.Identity {
	if len(k.Old) == 0 {
		return k.Age
	}
	ids := identities{k.Age}
	for _, o := range k.Old {
		ids = append(ids, o)
	}
	return ids
}

// identities is an age.Identity that tries each of its identities.
type identities []age.Identity

// Unwrap implements age.Identity.
func (ids identities) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	for _, id := range ids {
		key, err := id.Unwrap(stanzas)
		if err == nil {
			return key, nil
		}
		if !errors.Is(err, age.ErrIncorrectIdentity) {
			return nil, err
		}
	}
	return nil, age.ErrIncorrectIdentity
}

// clone returns a copy of k whose signing key has storage of its own, so
// that wiping one leaves the other intact. (The age identity keeps its
// secret unexported and immutable; copies share it.)
func (k *Keys) clone() *Keys {
	return &Keys{ID: k.ID, Sign: slices.Clone(k.Sign), Age: k.Age, Old: k.Old, account: k.account, opened: k.opened}
}

// Wipe overwrites the signing key with zeros; k must not be used after.
// age keeps the X25519 secret in an unexported field that cannot be
// wiped: dropping the last reference is all that can be done for it.
// A session's cache of opened envelopes, shared with the copies of its
// keys, is dropped here and wiped when the session ends.
func (k *Keys) Wipe() {
	clear(k.Sign)
	k.Age = nil
	k.opened = nil
}

// keyFileMagic starts an unencrypted key file's JSON; an encrypted key
// file is an armored age file (scrypt) whose plaintext is that JSON.
const keyFileVersion = "blockmrs-account-keys/1"

// keyFileVersionSuccessor is the version of a key file whose signing key
// is a successor of the account's own (succession.go): Account is then
// not the ID of the signing key, and Old holds earlier age identities.
const keyFileVersionSuccessor = "blockmrs-account-keys/2"

type keyFile struct {
	Version string   `json:"version"`
	Account string   `json:"account"`
	Ed25519 []byte   `json:"ed25519_seed"`
	Age     string   `json:"age_identity"`
	Old     []string `json:"old_age_identities,omitempty"`
}

// maxKeyFile bounds what is read from a key file.
const maxKeyFile = 64 << 10

// marshalKeyFile encodes keys, encrypted with passphrase when it is not
// empty (age scrypt, armored).
func marshalKeyFile(k *Keys, passphrase []byte) ([]byte, error) {
	kf := keyFile{Version: keyFileVersion, Account: string(k.ID), Ed25519: k.Sign.Seed(), Age: k.Age.String()}
	if k.Successor() || len(k.Old) > 0 {
		kf.Version = keyFileVersionSuccessor
		for _, o := range k.Old {
			kf.Old = append(kf.Old, o.String())
		}
	}
	plain, err := json.Marshal(kf)
	if err != nil {
		return nil, err
	}
	if len(passphrase) == 0 {
		return append(plain, '\n'), nil
	}
	rcpt, err := age.NewScryptRecipient(string(passphrase))
	if err != nil {
		return nil, fmt.Errorf("passphrase: %w", err)
	}
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	w, err := age.Encrypt(aw, rcpt)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(plain); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if err := aw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// keyFileEncrypted reports whether a key file's bytes are encrypted.
func keyFileEncrypted(data []byte) bool {
	return bytes.HasPrefix(bytes.TrimSpace(data), []byte(armor.Header))
}

// parseKeyFile decodes (and if needed decrypts) a key file.
func parseKeyFile(data, passphrase []byte) (*Keys, error) {
	plain := data
	if keyFileEncrypted(data) {
		if len(passphrase) == 0 {
			return nil, ErrPassphraseNeeded
		}
		id, err := age.NewScryptIdentity(string(passphrase))
		if err != nil {
			return nil, err
		}
		r, err := age.Decrypt(armor.NewReader(bytes.NewReader(data)), id)
		if err != nil {
			var noMatch *age.NoIdentityMatchError
			if errors.As(err, &noMatch) {
				return nil, ErrWrongPassphrase
			}
			return nil, fmt.Errorf("decrypt key file: %w", err)
		}
		if plain, err = io.ReadAll(io.LimitReader(r, maxKeyFile)); err != nil {
			return nil, fmt.Errorf("decrypt key file: %w", err)
		}
	}
	var kf keyFile
	if err := json.Unmarshal(plain, &kf); err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if (kf.Version != keyFileVersion && kf.Version != keyFileVersionSuccessor) || len(kf.Ed25519) != ed25519.SeedSize {
		return nil, errors.New("key file: unknown version or bad signing key")
	}
	id, err := age.ParseX25519Identity(kf.Age)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	k := newKeys(ed25519.NewKeyFromSeed(kf.Ed25519), id)
	if kf.Version == keyFileVersionSuccessor {
		for _, o := range kf.Old {
			old, err := age.ParseX25519Identity(o)
			if err != nil {
				return nil, fmt.Errorf("key file: old identity: %w", err)
			}
			k.Old = append(k.Old, old)
		}
		if string(k.ID) != kf.Account {
			acct, err := protocol.ParseAccountID(kf.Account)
			if err != nil {
				return nil, fmt.Errorf("key file: %w", err)
			}
			k.ID, k.account = protocol.AccountID(kf.Account), acct
		}
		return k, nil
	}
	if string(k.ID) != kf.Account {
		return nil, errors.New("key file: keys do not match the account they name")
	}
	return k, nil
}

// writeFileOnce creates path with data and mode perm, and never replaces
// an existing file: data goes to a temporary file in the same folder,
// synced, then hard-linked to path (link(2) fails when path exists, where
// a rename would silently replace it), then the folder is synced. A crash
// leaves either no file or the whole file. An existing path is an error
// matching fs.ErrExist. Key files are written this way so that no bug, here
// or elsewhere, can overwrite an account's only copy of its keys.
func writeFileOnce(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // the link, if made, keeps the data
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := writeSyncClose(f, data); err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists: %w", path, fs.ErrExist)
		}
		if !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.ENOTSUP) && !errors.Is(err, syscall.EOPNOTSUPP) {
			return err
		}
		// A file system without hard links: create exclusively instead
		// (a crash may then leave a torn file, never a replaced one).
		if err := writeExclusive(path, data, perm); err != nil {
			return err
		}
	}
	return syncDir(dir)
}

// writeExclusive creates path (O_EXCL) with data and syncs it.
func writeExclusive(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists: %w", path, fs.ErrExist)
		}
		return err
	}
	return writeSyncClose(f, data)
}

// writeSyncClose writes data to f, syncs it and closes it.
func writeSyncClose(f *os.File, data []byte) error {
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// MaxConcurrentUnlocks bounds the encrypted key files a process decrypts
// at once. Each decryption runs age's scrypt (work factor 18: about
// 256 MiB and a second of one core), so a process spends at most
// MaxConcurrentUnlocks × 256 MiB = 512 MiB on unlocks however many
// commands unlock at once (a daemon running commands for its clients);
// the others wait their turn, or give up when their context ends.
const MaxConcurrentUnlocks = 2

// scryptSlots is the process's unlock semaphore: memory is a process's,
// whatever repos it holds open.
var scryptSlots = make(chan struct{}, MaxConcurrentUnlocks)

// unlocking holds the unlocks in flight: concurrent unlocks of the same
// key file with the same passphrase share one decryption. A flight is
// forgotten when it ends, so no key material outlives the calls that
// asked for it, and a later unlock decrypts again.
var unlocking = flights{m: map[string]*flight{}}

// flightMAC keys the names of flights, so that a name (a MAC of the
// passphrase) says nothing outside this process.
var flightMAC = rand.Text()

type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

type flight struct {
	done    chan struct{}
	keys    *Keys
	err     error
	waiters int                // callers still waiting
	cancel  context.CancelFunc // ends the flight's wait for a slot
}

// flightName names the decryption of key file data of account id with
// passphrase.
func flightName(id protocol.AccountID, data, passphrase []byte) string {
	m := hmac.New(sha256.New, []byte(flightMAC))
	for _, part := range [][]byte{[]byte(id), data, passphrase} {
		m.Write(binary.AppendUvarint(nil, uint64(len(part))))
		m.Write(part)
	}
	return string(m.Sum(nil))
}

// unlockEncrypted decrypts the encrypted key file data of account id,
// sharing the work with concurrent calls for the same file and
// passphrase, and waiting for one of the process's MaxConcurrentUnlocks
// slots. It returns ctx's error as soon as ctx ends; the decryption then
// goes on only while another caller waits for it (a decryption that has
// begun runs to its end, holding its slot, since scrypt cannot stop).
func unlockEncrypted(ctx context.Context, id protocol.AccountID, data, passphrase []byte) (*Keys, error) {
	name := flightName(id, data, passphrase)
	fs := &unlocking
	fs.mu.Lock()
	f, ok := fs.m[name]
	if !ok {
		fctx, cancel := context.WithCancel(context.Background())
		f = &flight{done: make(chan struct{}), cancel: cancel}
		fs.m[name] = f
		p := bytes.Clone(passphrase) // the caller may clear its copy once it returns
		go func() {
			defer cancel()
			k, err := decryptInSlot(fctx, data, p)
			clear(p)
			fs.mu.Lock()
			if fs.m[name] == f {
				delete(fs.m, name)
			}
			fs.mu.Unlock()
			f.keys, f.err = k, err
			close(f.done)
		}()
	}
	f.waiters++
	fs.mu.Unlock()

	select {
	case <-f.done:
		if f.err != nil {
			return nil, f.err
		}
		// Each caller gets its own copy: none can spoil another's.
		c := f.keys.clone()
		c.opened = nil
		return c, nil
	case <-ctx.Done():
		fs.mu.Lock()
		if f.waiters--; f.waiters == 0 {
			f.cancel()
			if fs.m[name] == f {
				delete(fs.m, name) // a newcomer starts afresh
			}
		}
		fs.mu.Unlock()
		return nil, ctx.Err()
	}
}

// decryptInSlot takes one of the process's unlock slots (or gives up when
// ctx ends) and decrypts the key file in it. Before it frees the slot it
// collects the garbage, so that the next decryption reuses the memory of
// this one instead of growing the heap.
func decryptInSlot(ctx context.Context, data, passphrase []byte) (*Keys, error) {
	select {
	case scryptSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() {
		runtime.GC()
		<-scryptSlots
	}()
	return parseKeyFile(data, passphrase)
}
