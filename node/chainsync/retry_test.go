package chainsync

import (
	"encoding/binary"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/protocol"
)

// A request whose stream fails before an answer (here the peer closes
// it without one, as a transport that cancels a stream does) is sent
// once more; a peer that keeps failing is asked twice, not more.
func TestRequestAsksOnceMoreAfterAFailedStream(t *testing.T) {
	n := newNode(t, "Pat", protocol.RolePatient)
	head, seq := headOf(t, n.repo, n.keys.ID)
	var calls atomic.Int32
	failFirst := fakePeer(t, func(q *protocol.SyncRequest) []byte {
		if calls.Add(1) == 1 {
			return nil // no answer: the stream ends empty
		}
		return frame(t, &protocol.SyncResponse{Status: protocol.SyncOK, Head: &protocol.Link{Cid: head}, Seq: seq})
	})
	n.host.Peerstore().AddAddrs(failFirst.ID(), failFirst.Addrs(), time.Hour)
	got, gotSeq, err := n.sync.Head(t.Context(), failFirst.ID(), n.keys.ID)
	if err != nil || got != head || gotSeq != seq || calls.Load() != 2 {
		t.Fatalf("head after one failed stream: %s %d %v, %d streams (want the head, 2 streams)", got, gotSeq, err, calls.Load())
	}

	var dead atomic.Int32
	neverAnswers := fakePeer(t, func(*protocol.SyncRequest) []byte { dead.Add(1); return nil })
	if err := n.host.Connect(t.Context(), peer.AddrInfo{ID: neverAnswers.ID(), Addrs: neverAnswers.Addrs()}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := n.sync.Head(t.Context(), neverAnswers.ID(), n.keys.ID); err == nil || dead.Load() != 2 {
		t.Fatalf("a peer that never answers: %v after %d streams, want an error after 2", err, dead.Load())
	}
}

// An answer over the size limit is not asked for again: the peer would
// send it again.
func TestRequestDoesNotAskAgainAfterAnOversizedAnswer(t *testing.T) {
	n := newNode(t, "Pat", protocol.RolePatient)
	var calls atomic.Int32
	huge := fakePeer(t, func(*protocol.SyncRequest) []byte {
		calls.Add(1)
		return binary.AppendUvarint(nil, protocol.MaxSyncResponse+1)
	})
	n.host.Peerstore().AddAddrs(huge.ID(), huge.Addrs(), time.Hour)
	_, _, err := n.sync.Head(t.Context(), huge.ID(), n.keys.ID)
	if !errors.Is(err, protocol.ErrFrameTooLarge) || calls.Load() != 1 {
		t.Fatalf("an oversized answer: %v after %d streams, want frame too large after 1", err, calls.Load())
	}
}
