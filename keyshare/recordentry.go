package keyshare

import (
	"fmt"

	"filippo.io/age"
	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/internal/fastx25519"
	"github.com/blockmrs/blockmrs/protocol"
)

// newRecordEntry builds the record entry of content c under record key
// key: the envelope's encoding (header) sealed to the key, the key wrapped
// for each reader. subject is the subject's public key, super the record
// it supersedes (nil for none), pub gives accounts' public keys. A batch
// add (storeRecord) and a re-key (rekeyEntries) both make their record
// entries here.
func newRecordEntry(header []byte, key *age.X25519Identity, c cid.Cid, subject []byte, super *protocol.Link, readers []AccountInfo, pub func(protocol.AccountID) []byte) (*protocol.Record, error) {
	rcpt, err := fastx25519.ForIdentity(key)
	if err != nil {
		return nil, fmt.Errorf("seal envelope: %w", err)
	}
	meta, err := seal(header, rcpt)
	if err != nil {
		return nil, fmt.Errorf("seal envelope: %w", err)
	}
	rec := &protocol.Record{Record: protocol.NewLink(c), Subject: subject, Meta: meta, Supersedes: super}
	for _, acct := range readers {
		wrapped, err := wrapKey(key, acct)
		if err != nil {
			return nil, err
		}
		rec.Keys = append(rec.Keys, protocol.WrappedKey{To: pub(acct.ID), Key: wrapped})
	}
	return rec, nil
}
