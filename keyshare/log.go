package keyshare

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// LogEntry is one chain entry, for people to read: a summary line and,
// for the entry types this version knows, the facts it names.
type LogEntry struct {
	Account  protocol.AccountID `json:"account"`
	Seq      uint64             `json:"seq"`
	Block    string             `json:"block"`
	Index    int                `json:"index"`
	Time     time.Time          `json:"time"`
	Type     string             `json:"type"`
	Critical bool               `json:"critical,omitempty"`
	Summary  string             `json:"summary"`
	// Records are the record CIDs the entry names (record, grant,
	// revoke, hide, unhide, ack).
	Records []string `json:"records,omitempty"`
	// Party is the other account the entry names: a record's subject, a
	// grant's grantee, a revocation's former reader, an acknowledged
	// record's author.
	Party protocol.AccountID `json:"party,omitempty"`
	// Expires is a grant's expiry, if it has one.
	Expires *time.Time `json:"expires,omitempty"`
	// PeerID, Replica and Removed describe a device entry: the node, a
	// replica rather than a device, a withdrawal rather than a
	// declaration.
	PeerID  string `json:"peer_id,omitempty"`
	Replica bool   `json:"replica,omitempty"`
	Removed bool   `json:"removed,omitempty"`
	// Name is a profile's name or a device's label.
	Name string `json:"name,omitempty"`
	// Scope is the scope of a standing-grant entry (scope, unscope,
	// scoped).
	Scope string `json:"scope,omitempty"`
}

// Log returns every entry of account id's chain, oldest first.
func (r *Repo) Log(ctx context.Context, id protocol.AccountID) ([]LogEntry, error) {
	return r.LogPage(ctx, id, 0, 0)
}

// LogPage returns entries of account id's chain, oldest first: those of
// the blocks before sequence number before (0: up to the head), and of
// those only the newest blocks that hold at least limit entries (0: all
// of them). A block's entries are never split, so the next older page is
// LogPage(ctx, id, first.Seq, limit), first being the oldest entry
// returned, until an entry of block 0 is.
func (r *Repo) LogPage(ctx context.Context, id protocol.AccountID, before uint64, limit int) ([]LogEntry, error) {
	st, err := r.state(ctx, id)
	if err != nil {
		return nil, err
	}
	var blocks []*protocol.Block
	var cids []cid.Cid
	c := st.head()
	if before > 0 {
		if before > st.Seq {
			before = st.Seq + 1
		}
		var ok bool
		if c, ok, err = r.blockAt(ctx, id, before-1); err != nil {
			return nil, err
		} else if !ok {
			return nil, fmt.Errorf("%s: no chain block %d", id, before-1)
		}
	} else if !c.Defined() {
		return nil, nil
	}
	n := 0
	for {
		b, err := r.readBlock(ctx, c)
		if err != nil {
			return nil, err
		}
		blocks, cids = append(blocks, b), append(cids, c)
		n += len(b.Entries)
		if b.Prev == nil || (limit > 0 && n >= limit) {
			break
		}
		c = b.Prev.Cid
	}
	names := r.nameCache(ctx)
	var out []LogEntry
	for i := len(blocks) - 1; i >= 0; i-- {
		b := blocks[i]
		for j, e := range b.Entries {
			le := LogEntry{Account: id, Seq: b.Seq, Block: cids[i].String(), Index: j,
				Time: time.UnixMilli(b.Time).UTC(), Type: e.Type, Critical: e.Critical, Summary: summarize(e, names)}
			entryFacts(&le, e)
			out = append(out, le)
		}
	}
	return out, nil
}

// entryFacts fills in what entry e names, for an entry type this version knows.
func entryFacts(le *LogEntry, e protocol.Entry) {
	switch b := e.Body.(type) {
	case *protocol.Profile:
		le.Name = b.Name
	case *protocol.Record:
		le.Records = []string{b.Record.String()}
		le.Party = protocol.AccountIDFromKey(b.Subject)
	case *protocol.Grant:
		for _, k := range b.Keys {
			le.Records = append(le.Records, k.Record.String())
		}
		le.Party = protocol.AccountIDFromKey(b.To)
		if b.Expires != 0 {
			t := time.UnixMilli(b.Expires).UTC()
			le.Expires = &t
		}
	case *protocol.Revoke:
		le.Records = linkStrings(b.Records)
		le.Party = protocol.AccountIDFromKey(b.From)
	case *protocol.Hide:
		le.Records = linkStrings(b.Records)
	case *protocol.Unhide:
		le.Records = linkStrings(b.Records)
	case *protocol.Device:
		le.PeerID, le.Replica, le.Removed, le.Name = b.PeerID(), b.Replica, b.Remove, b.Name
	case *protocol.Ack:
		le.Records = []string{b.Record.String()}
		le.Party = protocol.AccountIDFromKey(b.Author)
	case *protocol.Rekey:
		le.Records = []string{b.Record.String(), b.New.String()}
		le.Party = protocol.AccountIDFromKey(b.Author)
	case *protocol.ScopeGrant:
		le.Party, le.Scope = protocol.AccountIDFromKey(b.To), b.Scope
		if b.Expires != 0 {
			t := time.UnixMilli(b.Expires).UTC()
			le.Expires = &t
		}
	case *protocol.ScopeEnd:
		le.Party, le.Scope = protocol.AccountIDFromKey(b.From), b.Scope
	case *protocol.ScopedKeys:
		for _, k := range b.Keys {
			le.Records = append(le.Records, k.Record.String())
		}
		le.Party, le.Scope = protocol.AccountIDFromKey(b.To), b.Scope
	case *protocol.GuardianAppoint:
		le.Party = protocol.AccountIDFromKey(b.To)
		if b.Until != 0 {
			t := time.UnixMilli(b.Until).UTC()
			le.Expires = &t
		}
	case *protocol.GuardianEnd:
		le.Party = protocol.AccountIDFromKey(b.From)
	case *protocol.WardGrant:
		for _, k := range b.Keys {
			le.Records = append(le.Records, k.Record.String())
		}
		le.Party = protocol.AccountIDFromKey(b.To)
		if b.Expires != 0 {
			t := time.UnixMilli(b.Expires).UTC()
			le.Expires = &t
		}
	case *protocol.WardRevoke:
		le.Records, le.Party = linkStrings(b.Records), protocol.AccountIDFromKey(b.From)
	}
}

func linkStrings(ls []protocol.Link) []string {
	s := make([]string, len(ls))
	for i, l := range ls {
		s[i] = l.String()
	}
	return s
}

// nameCache returns a function naming accounts for display.
func (r *Repo) nameCache(ctx context.Context) func([]byte) string {
	cache := map[string]string{}
	return func(key []byte) string {
		if n, ok := cache[string(key)]; ok {
			return n
		}
		id := protocol.AccountIDFromKey(key)
		n := string(id)
		if info, err := r.Account(ctx, id); err == nil && info.Name != "" {
			n = fmt.Sprintf("%s (%s)", info.Name, id.Short())
		}
		cache[string(key)] = n
		return n
	}
}

func summarize(e protocol.Entry, name func([]byte) string) string {
	switch b := e.Body.(type) {
	case *protocol.Profile:
		return fmt.Sprintf("profile: %q, %s, %s", b.Name, b.Role, b.Recipient)
	case *protocol.Record:
		var to []string
		for _, k := range b.Keys {
			to = append(to, name(k.To))
		}
		s := fmt.Sprintf("record %s about %s, key for %s", b.Record, name(b.Subject), strings.Join(to, ", "))
		if b.Supersedes != nil {
			s += ", supersedes " + b.Supersedes.String()
		}
		return s
	case *protocol.Grant:
		var recs []string
		for _, k := range b.Keys {
			recs = append(recs, k.Record.String())
		}
		s := fmt.Sprintf("grant %s to %s", strings.Join(recs, ", "), name(b.To))
		if b.Expires != 0 {
			s += ", until " + time.UnixMilli(b.Expires).UTC().Format(time.RFC3339)
		}
		return s
	case *protocol.Revoke:
		return fmt.Sprintf("revoke %s from %s", joinLinks(b.Records), name(b.From))
	case *protocol.Hide:
		return "hide " + joinLinks(b.Records)
	case *protocol.Unhide:
		return "unhide " + joinLinks(b.Records)
	case *protocol.Device:
		kind := "device"
		if b.Replica {
			kind = "replica"
		}
		verb := "declare " + kind
		if b.Remove {
			verb = "withdraw " + kind
		}
		if b.Name != "" {
			return fmt.Sprintf("%s %s (%q)", verb, b.PeerID(), b.Name)
		}
		return fmt.Sprintf("%s %s", verb, b.PeerID())
	case *protocol.Ack:
		return fmt.Sprintf("acknowledge record %s by %s (block %s)", b.Record, name(b.Author), b.Block)
	case *protocol.Rekey:
		return fmt.Sprintf("re-key record %s by %s (block %s) as %s: the old one is served to nobody", b.Record, name(b.Author), b.Block, b.New)
	case *protocol.ScopeGrant:
		s := fmt.Sprintf("standing grant of %s to %s (present and future records)", b.Scope, name(b.To))
		if b.Expires != 0 {
			s += ", until " + time.UnixMilli(b.Expires).UTC().Format(time.RFC3339)
		}
		return s
	case *protocol.ScopeEnd:
		return fmt.Sprintf("end the standing grant of %s to %s", b.Scope, name(b.From))
	case *protocol.ScopedKeys:
		what := fmt.Sprintf("the keys of %d records", len(b.Keys))
		if len(b.Keys) == 1 {
			what = "the key of " + b.Keys[0].Record.String()
		}
		return fmt.Sprintf("%s for %s under the standing grant %s", what, name(b.To), b.Scope)
	case *protocol.Attestation:
		s := fmt.Sprintf("attest %s as %s", name(b.To), b.Role)
		if b.Department != "" {
			s += fmt.Sprintf(", department %q", b.Department)
		}
		if b.Emergency {
			s += ", may use emergency access"
		}
		if b.Expires != 0 {
			s += ", until " + time.UnixMilli(b.Expires).UTC().Format(time.RFC3339)
		}
		return s
	case *protocol.GuardianAppoint:
		s := fmt.Sprintf("appoint %s guardian (may %s), acts from its block %d", name(b.To), protocol.JoinRights(b.May, ", "), b.From)
		if b.Until != 0 {
			s += ", until " + time.UnixMilli(b.Until).UTC().Format(time.RFC3339)
		}
		return s
	case *protocol.GuardianEnd:
		return fmt.Sprintf("remove guardian %s: none of its acts from its block %d on counts", name(b.From), b.Before)
	case *protocol.WardGrant:
		var recs []string
		for _, k := range b.Keys {
			recs = append(recs, k.Record.String())
		}
		s := fmt.Sprintf("as guardian of %s, grant %s to %s", name(b.Ward), strings.Join(recs, ", "), name(b.To))
		if b.Expires != 0 {
			s += ", until " + time.UnixMilli(b.Expires).UTC().Format(time.RFC3339)
		}
		return s
	case *protocol.AttestEnd:
		return fmt.Sprintf("withdraw the attestation of %s", name(b.From))
	case *protocol.EmergencyPack:
		cs := make([]string, len(b.Shares))
		for i, sh := range b.Shares {
			cs[i] = name(sh.To)
		}
		return fmt.Sprintf("emergency pack %x (%q): %d of %s needed, until %s", b.ID, b.Title, b.Threshold, strings.Join(cs, ", "), time.UnixMilli(b.Until).UTC().Format(time.RFC3339))
	case *protocol.EmergencyEnd:
		return fmt.Sprintf("end emergency pack %x", b.ID)
	case *protocol.WardRevoke:
		return fmt.Sprintf("as guardian of %s, revoke %s from %s", name(b.Ward), joinLinks(b.Records), name(b.From))
	}
	if e.Critical {
		return fmt.Sprintf("entry of unknown type %q, marked critical: entries from here on are not applied", e.Type)
	}
	return fmt.Sprintf("entry of unknown type %q (kept, ignored)", e.Type)
}

func joinLinks(ls []protocol.Link) string {
	return strings.Join(linkStrings(ls), ", ")
}
