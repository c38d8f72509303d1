package store

import (
	"errors"
	"fmt"

	cid "github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

var (
	// ErrCorrupt is matched (errors.Is) by errors reporting a stored block
	// whose bytes do not hash to its CID.
	ErrCorrupt = errors.New("corrupt: hash mismatch")

	// ErrMissing is matched (errors.Is) by errors reporting a block that is
	// not in the store. Such errors also match ipld.ErrNotFound, so
	// ipld.IsNotFound recognises them.
	ErrMissing = errors.New("missing")

	// ErrNotAuthentic is matched (errors.Is) by errors from [Store.Decrypt]
	// when age fails to authenticate the ciphertext: a bad header MAC, a
	// tampered or truncated payload, or data that is not an age file.
	ErrNotAuthentic = errors.New("age authentication failed")

	// ErrWrongKey is matched (errors.Is) by errors from [Store.Decrypt] when
	// the identity does not match the record's recipient.
	ErrWrongKey = errors.New("identity does not match the record")

	// ErrNotPinned is returned (wrapped) by [Store.Unpin] for a CID that is
	// not pinned.
	ErrNotPinned = errors.New("not pinned")

	// ErrClosed is returned (wrapped) by operations on a closed [Store].
	ErrClosed = errors.New("store is closed")
)

// BlockError reports a problem with one block and names its CID, for
// example "store: block bafk... is corrupt: hash mismatch". Err is
// [ErrMissing] or [ErrCorrupt].
type BlockError struct {
	// Cid is the block that is missing or corrupt.
	Cid cid.Cid
	// Err is ErrMissing or ErrCorrupt.
	Err error
}

// Error implements error.
func (e *BlockError) Error() string {
	return fmt.Sprintf("store: block %s is %v", e.Cid, e.Err)
}

// Unwrap returns Err.
func (e *BlockError) Unwrap() error { return e.Err }

// Is makes a missing-block error match ipld.ErrNotFound as well.
func (e *BlockError) Is(target error) bool {
	if _, ok := target.(ipld.ErrNotFound); ok {
		return e.Err == ErrMissing
	}
	return false
}

func missingBlock(c cid.Cid) error { return &BlockError{Cid: c, Err: ErrMissing} }

func corruptBlock(c cid.Cid) error { return &BlockError{Cid: c, Err: ErrCorrupt} }

// wrapOp prefixes err with "store: <op> <cid>: " unless it is a
// *BlockError or *SpaceError, which already name the package and what
// went wrong.
func wrapOp(op string, c cid.Cid, err error) error {
	if err == nil {
		return nil
	}
	var be *BlockError
	var se *SpaceError
	if errors.As(err, &be) || errors.As(err, &se) {
		return err
	}
	return fmt.Errorf("store: %s %s: %w", op, c, err)
}

// opErr prefixes err with "store: <op>: " unless it is a *SpaceError,
// which names the package and the folder itself.
func opErr(op string, err error) error {
	var se *SpaceError
	if errors.As(err, &se) {
		return se
	}
	return fmt.Errorf("store: %s: %w", op, err)
}
