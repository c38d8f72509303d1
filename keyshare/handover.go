package keyshare

// The hand-over of a minor's account: a parent's repo made the account
// (guardian create) and holds its keys; the grown-up's node joins it by
// a pairing code (node/pair), withdraws the parent's node and rotates
// both keys (RotateAll); the parent's repo forgets the keys
// (ForgetKeys) and keeps the chain, as a contact's, with the guardian
// appointment on it as the appointment says.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/blockmrs/blockmrs/protocol"
)

// HandoverFacts loads what Handover decides on: may guardian hand ward
// over from this node (peer ID self, text form)?
func (r *Repo) HandoverFacts(ctx context.Context, guardian, ward protocol.AccountID, self string) (HandoverFacts, error) {
	f := HandoverFacts{Self: guardian == ward}
	info, err := r.Account(ctx, ward)
	if err != nil {
		return f, err
	}
	f.Local = info.Local
	for _, d := range info.Devices {
		if d.PeerID == self && !d.Replica {
			f.Device = true
		}
	}
	mine, _, err := r.Guardians(ctx, ward)
	if err != nil {
		return f, err
	}
	for _, g := range mine { // newest first: the latest appointment decides
		if g.Guardian == guardian {
			f.Appointed, f.Removed = true, g.Ended != nil
			break
		}
	}
	if f.Appointed {
		if f.Consent, err = r.consentTo(ctx, guardian, ward); err != nil {
			return f, err
		}
	}
	return f, nil
}

// ForgetKeys makes local account id a contact of this repo: its key
// file, the rotation files beside it and any unfinished succession's
// key file are deleted, and it is no longer an account of this repo (nor
// its default: another local account becomes it). Its chain and records
// stay. A crash midway leaves the account no longer local, with files
// ForgetKeys deletes when run again.
func (r *Repo) ForgetKeys(ctx context.Context, id protocol.AccountID) error {
	if _, err := r.state(ctx, id); err != nil {
		return fmt.Errorf("forget the keys of %s: %w", id, err)
	}
	names, err := r.rotationFiles(id)
	if err != nil {
		return fmt.Errorf("forget the keys of %s: %w", id, err)
	}
	r.mu.Lock()
	err = r.unmarkLocal(ctx, id)
	r.mu.Unlock()
	if err != nil {
		return fmt.Errorf("forget the keys of %s: %w", id, err)
	}
	paths := []string{r.keyPath(id), r.keyPath(id) + ".next"}
	for _, name := range names {
		paths = append(paths, r.rotationPath(id, name))
	}
	var errs []error
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("forget the keys of %s: the account is no longer local, but a key file stays (delete it by hand): %w", id, err)
	}
	return nil
}

// unmarkLocal drops id from the local accounts, moving the default to
// another local account (none left: no default). The caller holds r.mu.
func (r *Repo) unmarkLocal(ctx context.Context, id protocol.AccountID) error {
	if err := r.ds.Delete(ctx, keyLocal(id)); err != nil {
		return err
	}
	r.cache.invalidate()
	def, err := r.ds.Get(ctx, keyDefault)
	if err != nil || string(def) != string(id) {
		return nil
	}
	keys, err := listKeys(ctx, r.ds, "/keyshare/local/")
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return r.ds.Delete(ctx, keyDefault)
	}
	return r.ds.Put(ctx, keyDefault, []byte(keys[0].BaseNamespace()))
}
