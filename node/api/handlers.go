package api

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// Health is the body of GET /api/v1/health.
type Health struct {
	// Status is "ok" while the daemon runs.
	Status string `json:"status"`
	// Uptime is how long the API has run, in whole seconds.
	Uptime int64 `json:"uptime_s"`
}

// Identity is the body of GET /api/v1/id.
type Identity struct {
	// PeerID is the node's libp2p peer ID (its node key, not an account).
	PeerID string `json:"peer_id"`
	// Listen lists the multiaddrs the host is bound to.
	Listen []string `json:"listen"`
	// Addrs lists the addresses the node tells peers to dial, each ending
	// in /p2p/PEER_ID, ready to hand to another node.
	Addrs []string `json:"addrs"`
	// Accounts lists every account the repo knows, its own (local: true)
	// first, then by name.
	Accounts []Account `json:"accounts"`
}

// Account is one account in GET /api/v1/id: keyshare.AccountInfo as the
// API carries it (the head CID as a plain string).
type Account struct {
	// ID is the account ID (peer-ID text form of its signing key).
	ID protocol.AccountID `json:"id"`
	// Name and Role come from the account's profile.
	Name string        `json:"name"`
	Role protocol.Role `json:"role"`
	// Recipient is the account's age X25519 recipient.
	Recipient string `json:"recipient"`
	// Local is true for the repo's own accounts (it holds their keys).
	Local bool `json:"local"`
	// Default marks the repo's default local account.
	Default bool `json:"default,omitempty"`
	// Encrypted tells whether a local account's keys need a passphrase.
	Encrypted bool `json:"encrypted,omitempty"`
	// Head is the CID of the newest chain block held, "" if none.
	Head string `json:"head"`
	// Seq is that block's sequence number.
	Seq uint64 `json:"seq"`
	// Stopped, when set, says why entries past some block are not applied.
	Stopped string `json:"stopped,omitempty"`
}

func accountOf(a keyshare.AccountInfo) Account {
	out := Account{ID: a.ID, Name: a.Name, Role: a.Role, Recipient: a.Recipient, Local: a.Local,
		Default: a.Default, Encrypted: a.Encrypted, Seq: a.Seq, Stopped: a.Stopped}
	if a.Head.Defined() {
		out.Head = a.Head.String()
	}
	return out
}

// Peer is one connected peer in GET /api/v1/peers.
type Peer struct {
	// ID is the peer's libp2p peer ID.
	ID string `json:"id"`
	// Addrs lists the remote addresses of the connections to it.
	Addrs []string `json:"addrs"`
}

// Peers is the body of GET /api/v1/peers.
type Peers struct {
	// Peers lists the connected peers, sorted by ID.
	Peers []Peer `json:"peers"`
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, Health{Status: "ok", Uptime: int64(time.Since(s.started) / time.Second)})
}

func (s *Server) id(w http.ResponseWriter, r *http.Request) {
	h := s.opts.Host
	accts, err := s.opts.Accounts.Accounts(r.Context())
	if err != nil {
		s.log.Error("api: list accounts", "err", err)
		writeError(w, http.StatusInternalServerError, "list accounts: %v", err)
		return
	}
	out := Identity{
		PeerID:   h.ID().String(),
		Listen:   addrStrings(h.Network().ListenAddresses()),
		Addrs:    []string{},
		Accounts: make([]Account, 0, len(accts)),
	}
	for _, a := range accts {
		out.Accounts = append(out.Accounts, accountOf(a))
	}
	full, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
	if err == nil {
		out.Addrs = addrStrings(full)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) peers(w http.ResponseWriter, r *http.Request) {
	n := s.opts.Host.Network()
	out := Peers{Peers: []Peer{}}
	for _, p := range n.Peers() {
		var addrs []ma.Multiaddr
		for _, c := range n.ConnsToPeer(p) {
			addrs = append(addrs, c.RemoteMultiaddr())
		}
		if len(addrs) == 0 {
			continue // disconnected meanwhile
		}
		out.Peers = append(out.Peers, Peer{ID: p.String(), Addrs: addrStrings(addrs)})
	}
	slices.SortFunc(out.Peers, func(a, b Peer) int { return strings.Compare(a.ID, b.ID) })
	writeJSON(w, http.StatusOK, out)
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
