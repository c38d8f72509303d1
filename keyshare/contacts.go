package keyshare

// Contacts: the accounts this repo's user chose to deal with. Knowing an
// account (holding its chain) is not enough for that: chain sync brings
// chains by itself — an ack on a contact's chain pulls in the chain of the
// record's author, and a node's own devices and replicas hand it the
// profiles its records name — and once an account is known, its node's
// announcements are taken. So the repo keeps, apart from the chains, the
// list of accounts added on purpose:
//
//	/keyshare/contact/<account ID> → (empty)
//
// An account becomes a contact when the user adds it (`contact add` over
// the network: chainsync.Service.Profile), imports a file whose roots are
// its chain (ImportCAR: `contact add FILE`, `import`), or approves its
// access request (Approve imports the requester's profile). The access
// policy trusts a contact a little further than a known account: its
// pending records about a local account are fetched for her to check
// (wantRecord, RuleWantPending).

import (
	"context"
	"fmt"

	"github.com/ipfs/go-datastore"

	"github.com/blockmrs/blockmrs/protocol"
)

const contactPrefix = "/keyshare/contact/"

func keyContact(id protocol.AccountID) datastore.Key {
	return datastore.NewKey(contactPrefix + string(id))
}

// MarkContact records that the repo's user chose to add the accounts ids
// (which the repo must know) as contacts. Marking one twice is harmless.
func (r *Repo) MarkContact(ctx context.Context, ids ...protocol.AccountID) error {
	for _, id := range ids {
		if _, err := r.state(ctx, id); err != nil {
			return fmt.Errorf("mark contact %s: %w", id, err)
		}
		if err := r.ds.Put(ctx, keyContact(id), nil); err != nil {
			return fmt.Errorf("mark contact %s: %w", id, err)
		}
	}
	return nil
}

// IsContact tells whether the repo's user added account id as a contact
// (see MarkContact); an account the repo merely knows is not one.
func (r *Repo) IsContact(ctx context.Context, id protocol.AccountID) (bool, error) {
	return r.ds.Has(ctx, keyContact(id))
}

// contacts returns every account marked as a contact.
func (r *Repo) contacts(ctx context.Context) (map[protocol.AccountID]bool, error) {
	ids, err := r.accountsUnder(ctx, contactPrefix)
	if err != nil {
		return nil, fmt.Errorf("list contacts: %w", err)
	}
	out := make(map[protocol.AccountID]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}
