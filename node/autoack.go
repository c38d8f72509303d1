package node

import (
	"context"
	"log/slog"
	"maps"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// AckEvery is how often the daemon looks, for every unlocked account, for
// records written about it that it can now acknowledge (their blocks may
// arrive after the chain that claims them).
const AckEvery = 30 * time.Second

// SessionPoll is how often the daemon looks for sessions opened since it
// last looked: records fetched while the account was locked are
// acknowledged as soon as it unlocks.
const SessionPoll = time.Second

// acknowledgeArrivals acknowledges, for every account with an open unlock
// session, the records others wrote about it whose key opens the record
// this node holds (keyshare.Repo.Acknowledge checks that): the subject's
// proof that makes such a record count on her node and her replicas. It
// looks at records when chains change or records arrive (only those
// touched), when a session opens and every AckEvery (all of the
// account's records), until ctx ends. It uses the sessions' keys without
// counting as use, so it never keeps a session open.
//
// In the same pass it gives the account's standing grantees the records
// in their scopes that no author wrapped for them
// (keyshare.Repo.CoverStanding): a record counts once acknowledged, so
// the pass after the ack covers it. The periodic pass over all of an
// account's records costs next to nothing while no chain changed since
// one found nothing to give (CoverStanding's pass mark).
func acknowledgeArrivals(ctx context.Context, repo *keyshare.Repo, sessions *keyshare.Sessions, log *slog.Logger) {
	changed := make(chan []cid.Cid, 16)
	unhook := repo.OnChainChange(func(ch keyshare.ChainChange) {
		select {
		case changed <- ch.Records:
		default: // busy: the periodic pass catches up
		}
	})
	defer unhook()
	tick := time.NewTicker(AckEvery)
	defer tick.Stop()
	poll := time.NewTicker(SessionPoll)
	defer poll.Stop()
	open := map[protocol.AccountID]bool{}
	for {
		var only []cid.Cid
		select {
		case <-ctx.Done():
			return
		case only = <-changed:
			if len(only) == 0 {
				continue
			}
		case <-tick.C:
		case <-poll.C:
			if !newSession(sessions, open) {
				continue
			}
		}
		acknowledgeOpen(ctx, repo, sessions, log, only)
	}
}

// newSession updates open to the accounts with a session now and tells
// whether one of them had none when it last looked.
func newSession(sessions *keyshare.Sessions, open map[protocol.AccountID]bool) bool {
	now := map[protocol.AccountID]bool{}
	opened := false
	for _, se := range sessions.List() {
		now[se.Account] = true
		opened = opened || !open[se.Account]
	}
	clear(open)
	maps.Copy(open, now)
	return opened
}

// acknowledgeOpen runs one pass of acknowledgeArrivals.
func acknowledgeOpen(ctx context.Context, repo *keyshare.Repo, sessions *keyshare.Sessions, log *slog.Logger, only []cid.Cid) {
	for _, se := range sessions.List() {
		k, err := sessions.Background(se.Account)
		if err != nil {
			continue // locked meanwhile
		}
		n, err := repo.Acknowledge(ctx, k, only...)
		if err != nil && ctx.Err() == nil {
			log.Warn("acknowledging records written for an unlocked account failed", "account", se.Account, "err", err)
		}
		if n > 0 {
			log.Info("acknowledged records written for an unlocked account", "account", se.Account, "records", n)
		}
		covered, err := repo.CoverStanding(ctx, k, only...)
		k.Wipe()
		if err != nil && ctx.Err() == nil {
			log.Warn("giving standing grantees their records failed", "account", se.Account, "err", err)
			continue
		}
		if covered > 0 {
			log.Info("gave standing grantees the records in their scopes", "account", se.Account, "keys", covered)
		}
	}
}
