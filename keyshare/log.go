package keyshare

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// LogEntry is one chain entry, for people to read.
type LogEntry struct {
	Account  protocol.AccountID `json:"account"`
	Seq      uint64             `json:"seq"`
	Block    string             `json:"block"`
	Index    int                `json:"index"`
	Time     time.Time          `json:"time"`
	Type     string             `json:"type"`
	Critical bool               `json:"critical,omitempty"`
	Summary  string             `json:"summary"`
}

// Log returns every entry of account id's chain, oldest first.
func (r *Repo) Log(ctx context.Context, id protocol.AccountID) ([]LogEntry, error) {
	st, err := r.state(ctx, id)
	if err != nil {
		return nil, err
	}
	var blocks []*protocol.Block
	var cids []cid.Cid
	for c := st.head(); ; {
		b, err := r.readBlock(ctx, c)
		if err != nil {
			return nil, err
		}
		blocks, cids = append(blocks, b), append(cids, c)
		if b.Prev == nil {
			break
		}
		c = b.Prev.Cid
	}
	names := r.nameCache(ctx)
	var out []LogEntry
	for i := len(blocks) - 1; i >= 0; i-- {
		b := blocks[i]
		for j, e := range b.Entries {
			out = append(out, LogEntry{Account: id, Seq: b.Seq, Block: cids[i].String(), Index: j,
				Time: time.UnixMilli(b.Time).UTC(), Type: e.Type, Critical: e.Critical, Summary: summarize(e, names)})
		}
	}
	return out, nil
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
	}
	if e.Critical {
		return fmt.Sprintf("entry of unknown type %q, marked critical: entries from here on are not applied", e.Type)
	}
	return fmt.Sprintf("entry of unknown type %q (kept, ignored)", e.Type)
}

func joinLinks(ls []protocol.Link) string {
	s := make([]string, len(ls))
	for i, l := range ls {
		s[i] = l.String()
	}
	return strings.Join(s, ", ")
}
