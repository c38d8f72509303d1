package keyshare

import (
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// ErrNotAddressed is what a NotAddressedError matches: a request for an
// account that is not this node's, nor a ward a local guardian answers
// for.
var ErrNotAddressed = errors.New("not an account of this node (nor a ward one of them answers for)")

// NotAddressedError is ReceiveRequest's refusal of a request addressed to
// an account that is not this node's, nor a ward one of its accounts
// answers for as guardian. Why says, for this node's own log and its
// owner, why a local guardian the account appointed does not answer (not
// accepted, declined, no approve right…), or is empty. Public is all the
// node that delivered the request is told: the same whether an account
// here was appointed or not, so a guardian's answer to an appointment
// (pending, declined) and the fact that she is on this node are not
// learnt by sending requests (SECURITY.md, "Nobody is a guardian without
// saying so").
type NotAddressedError struct {
	Request cid.Cid
	To      protocol.AccountID
	Why     string
}

// Public is the refusal as the delivering node is told it.
func (e *NotAddressedError) Public() string {
	return fmt.Sprintf("request %s: addressed to %s, %v", e.Request, e.To, ErrNotAddressed)
}

func (e *NotAddressedError) Error() string {
	if e.Why == "" {
		return e.Public()
	}
	return e.Public() + ": " + e.Why
}

// Unwrap returns ErrNotAddressed.
func (e *NotAddressedError) Unwrap() error { return ErrNotAddressed }
