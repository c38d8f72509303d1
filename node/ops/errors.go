package ops

import (
	"errors"
	"fmt"
)

// Errors an operation wraps, with context, so that callers can tell bad
// input from a failure of the node.
var (
	// ErrInvalid wraps an argument that is malformed or out of range.
	ErrInvalid = errors.New("invalid argument")
	// ErrNotFound wraps a named thing the repo does not have.
	ErrNotFound = errors.New("not found")
	// ErrExists wraps a new thing that conflicts with one already there.
	ErrExists = errors.New("already exists")
	// ErrNoNode is returned by an operation that needs the running node
	// (its host or chain sync) when it was given none.
	ErrNoNode = errors.New("needs the running node (the daemon)")
)

// invalidError is a refused argument: its message alone, matching
// ErrInvalid.
type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

// invalidf returns a one-line error that matches ErrInvalid.
func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// invalidCause is refused input that keeps its cause for errors.As and
// errors.Is (store.ErrImportLimit, say), matching ErrInvalid too.
type invalidCause struct {
	what string
	err  error
	hint string // what to do, if set
}

func (e *invalidCause) Error() string {
	if e.hint != "" {
		return e.what + ": " + e.err.Error() + " (" + e.hint + ")"
	}
	return e.what + ": " + e.err.Error()
}
func (e *invalidCause) Is(target error) bool { return target == ErrInvalid }
func (e *invalidCause) Unwrap() error        { return e.err }

// ErrForbidden wraps an act the acting account may not do under the
// access rules (granting or hiding a record it is not the subject of,
// reading one it has no key for).
var ErrForbidden = errors.New("not allowed")

// conflictError is a conflict with what exists: its message alone,
// matching ErrExists.
type conflictError struct{ msg string }

func (e *conflictError) Error() string        { return e.msg }
func (e *conflictError) Is(target error) bool { return target == ErrExists }
