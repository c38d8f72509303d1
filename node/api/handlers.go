package api

import (
	"net/http"
	"slices"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
	"github.com/blockmrs/blockmrs/protocol"
)

// Health is the body of GET /api/v1/health.
type Health struct {
	// Status is "ok" while the daemon runs.
	Status string `json:"status"`
	// Uptime is how long the API has run, in whole seconds.
	Uptime int64 `json:"uptime_s"`
}

// Identity is the body of GET /api/v1/id (the ID operation's result).
type Identity = ops.Identity

// Account is one account as the API carries it (keyshare.AccountInfo with
// the head CID as a plain string).
type Account = ops.Account

// AccountList is the body of GET /api/v1/accounts and /api/v1/contacts.
type AccountList = ops.AccountList

// NewAccount is the body of POST /api/v1/accounts.
type NewAccount = ops.NewAccount

// AddContactRequest is the body of POST /api/v1/contacts.
type AddContactRequest = ops.AddContactArgs

// ContactAdded is the answer to POST /api/v1/contacts.
type ContactAdded = ops.ContactAdded

func accountOf(a keyshare.AccountInfo) Account { return ops.AccountOf(a) }

// Peer, KeptPeer and Peers are the body of GET /api/v1/peers
// (ops.ListPeers).
type (
	Peer     = ops.Peer
	KeptPeer = ops.KeptPeer
	Peers    = ops.Peers
)

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, Health{Status: "ok", Uptime: int64(time.Since(s.started) / time.Second)})
}

func (s *Server) id(w http.ResponseWriter, r *http.Request) {
	args := ops.IDArgs{Account: protocol.AccountID(r.URL.Query().Get("account"))}
	out, err := ops.ID(r.Context(), s.opts.Accounts, s.opts.Host, args)
	s.reply(w, http.StatusOK, out, err)
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.WriteHeader(http.StatusOK)
	w.Write(OpenAPI)
}

// addrStrings renders addresses sorted and without duplicates.
func addrStrings(addrs []ma.Multiaddr) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.String())
	}
	slices.Sort(out)
	return slices.Compact(out)
}
