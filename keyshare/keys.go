package keyshare

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
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

// Public returns the account's Ed25519 public key.
func (k *Keys) Public() ed25519.PublicKey { return k.Sign.Public().(ed25519.PublicKey) }

// keyFileMagic starts an unencrypted key file's JSON; an encrypted key
// file is an armored age file (scrypt) whose plaintext is that JSON.
const keyFileVersion = "blockmrs-account-keys/1"

type keyFile struct {
	Version string `json:"version"`
	Account string `json:"account"`
	Ed25519 []byte `json:"ed25519_seed"`
	Age     string `json:"age_identity"`
}

// maxKeyFile bounds what is read from a key file.
const maxKeyFile = 64 << 10

// marshalKeyFile encodes keys, encrypted with passphrase when it is not
// empty (age scrypt, armored).
func marshalKeyFile(k *Keys, passphrase []byte) ([]byte, error) {
	plain, err := json.Marshal(keyFile{Version: keyFileVersion, Account: string(k.ID), Ed25519: k.Sign.Seed(), Age: k.Age.String()})
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
	if kf.Version != keyFileVersion || len(kf.Ed25519) != ed25519.SeedSize {
		return nil, errors.New("key file: unknown version or bad signing key")
	}
	id, err := age.ParseX25519Identity(kf.Age)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	k := newKeys(ed25519.NewKeyFromSeed(kf.Ed25519), id)
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
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
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
