package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// The live event stream, GET /api/v1/events: server-sent events
// (text/event-stream) telling the web app what to reload.
//
//	event: chain    data: {"accounts":[...],"records":[...],"all":false}
//	event: request  data: {"id":"...","box":"inbox","state":"new"}
//	event: resync   data: {}  (events were dropped: reload everything)
//	event: import   data: {"id":"...","read":300}
//
// chain follows keyshare.Repo.OnChainChange, request
// keyshare.Repo.OnRequestChange, import the FHIR imports that asked for
// progress (see fhir.go). A comment line (": heartbeat") goes
// every HeartbeatInterval; the stream ends when the server shuts down.

// Limits of the event stream.
const (
	// HeartbeatInterval is the time between heartbeat comments.
	HeartbeatInterval = 15 * time.Second
	// EventBuffer is how many events wait for one slow client before the
	// rest are dropped for a resync event.
	EventBuffer = 64
	// MaxEventClients bounds the open event streams.
	MaxEventClients = 64
)

// ChainEvent is the data of a "chain" event: chains advanced.
type ChainEvent struct {
	// Accounts whose chains advanced.
	Accounts []protocol.AccountID `json:"accounts"`
	// Records whose access facts changed.
	Records []string `json:"records"`
	// All is set when Records could not be listed: consider every record.
	All bool `json:"all,omitempty"`
}

// RequestEvent is the data of a "request" event: the inbox or the outbox
// changed.
type RequestEvent struct {
	// ID, Box and State are those of the request that changed.
	ID    string `json:"id"`
	Box   string `json:"box"`
	State string `json:"state"`
}

type event struct {
	name string
	data []byte
}

type subscriber struct {
	ch   chan event
	lost chan struct{} // holds a token once an event was dropped
}

// hub fans events out to the open streams.
type hub struct {
	mu   sync.Mutex
	subs map[*subscriber]bool
}

func (h *hub) subscribe() *subscriber {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) >= MaxEventClients {
		return nil
	}
	if h.subs == nil {
		h.subs = map[*subscriber]bool{}
	}
	sub := &subscriber{ch: make(chan event, EventBuffer), lost: make(chan struct{}, 1)}
	h.subs[sub] = true
	return sub
}

func (h *hub) unsubscribe(sub *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, sub)
}

// publish sends an event to every stream without blocking: a stream
// whose buffer is full loses it and gets a resync event instead.
func (h *hub) publish(name string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		select {
		case sub.ch <- event{name, data}:
		default:
			select {
			case sub.lost <- struct{}{}:
			default:
			}
		}
	}
}

func (s *Server) chainChanged(ch keyshare.ChainChange) {
	ev := ChainEvent{Accounts: ch.Accounts, Records: make([]string, 0, len(ch.Records)), All: ch.All}
	if ev.Accounts == nil {
		ev.Accounts = []protocol.AccountID{}
	}
	for _, c := range ch.Records {
		ev.Records = append(ev.Records, c.String())
	}
	s.events.publish("chain", ev)
}

func (s *Server) requestChanged(q keyshare.RequestInfo) {
	s.events.publish("request", RequestEvent{ID: q.ID, Box: q.Box, State: q.State})
}

func (s *Server) eventStream(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	// The stream outlives the server's WriteTimeout.
	if err := rc.SetWriteDeadline(time.Time{}); err != nil {
		writeError(w, http.StatusInternalServerError, "event stream: %v", err)
		return
	}
	sub := s.events.subscribe()
	if sub == nil {
		writeError(w, http.StatusServiceUnavailable, "too many open event streams (at most %d)", MaxEventClients)
		return
	}
	defer s.events.unsubscribe(sub)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := fmt.Fprint(w, ": blockmrs events\n\n"); err != nil || rc.Flush() != nil {
		return
	}
	tick := time.NewTicker(HeartbeatInterval)
	defer tick.Stop()
	for {
		var err error
		select {
		case <-s.stopping.Done():
			return
		case <-r.Context().Done():
			return
		case <-tick.C:
			_, err = fmt.Fprint(w, ": heartbeat\n\n")
		case <-sub.lost:
			// Drop what is queued: the client reloads everything.
			for len(sub.ch) > 0 {
				<-sub.ch
			}
			_, err = fmt.Fprint(w, "event: resync\ndata: {}\n\n")
		case ev := <-sub.ch:
			_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.name, ev.data)
		}
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			return
		}
	}
}
