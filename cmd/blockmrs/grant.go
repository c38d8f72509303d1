package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

var grantCmd = &command{name: "grant", summary: "share records with another account", run: runGrant}

func runGrant(ctx context.Context, args []string) error {
	f := newFlags("grant", "[flags] CID... --to ACCOUNT | --scope SCOPE --to ACCOUNT", `
Grant shares records with another account (a contact: see 'blockmrs
contact add') by wrapping each record's key for it in a signed grant entry
on the acting account's chain. Only a record's subject (the patient it is
about) may grant it. With --expires the grant ends after a duration (720h,
30d) or at a time (2027-01-01T00:00:00Z, 2027-01-01). The grantee reads the
records once it has imported this account's chain ('blockmrs export').
Flags may come before or after the CIDs.

With --scope instead of CIDs it makes a standing grant: the grantee gets
every record of the account in the scope, present ones at once and future
ones as they are written (their authors wrap the key for the grantee, or
this node does when the record arrives), until --expires or 'blockmrs
revoke --scope'. SCOPE is a SMART on FHIR v2 read scope:
  patient/*.rs                                  every record
  patient/Observation.rs?category=laboratory    lab results
  patient/Observation.rs?category=vital-signs   vital signs
  patient/Condition.rs                          conditions (any FHIR type)
  patient/Binary.rs                             files
  patient/DocumentReference.rs                  notes
A category may be given as SYSTEM|CODE for the HL7 category systems; .r
and v1 .read mean .rs. Hidden records are not covered.`, `
blockmrs grant bafybeib... bafkrei... --to "Dr Jones" --expires 30d
blockmrs grant --scope 'patient/Observation.rs?category=laboratory' --to "Dr Grey"`)
	f.withAccount()
	to := f.String("to", "", "the `ACCOUNT` to share with (NAME, ID or ID suffix)")
	expiresFlag := f.String("expires", "", "end the grant after a `DURATION` (720h, 30d) or at an RFC 3339 time or date")
	scope := f.String("scope", "", "make a standing grant of this `SCOPE` (patient/TYPE.rs[?category=CODE]) instead of granting CIDs")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if *scope != "" {
		return runGrantScope(ctx, f, *scope, *to, *expiresFlag, pos)
	}
	if err := f.checkArgs(pos, true, "CID"); err != nil {
		return err
	}
	if *to == "" {
		return usagef("missing --to ACCOUNT")
	}
	cids, err := parseCIDs(pos)
	if err != nil {
		return err
	}
	expires, err := parseExpiry(*expiresFlag, time.Now())
	if err != nil {
		return err
	}
	return f.withKeysFor(ctx, "to", *to, func(repo *keyshare.Repo, keys *keyshare.Keys, grantee keyshare.AccountInfo) error {
		g, err := ops.Grant(ctx, repo, keys, ops.GrantRequest{Records: cidStrings(cids), To: string(grantee.ID), Expires: expires})
		if err != nil {
			return err
		}
		g.Records = pos
		if f.json {
			return f.printJSON(g)
		}
		until := ""
		if !expires.IsZero() {
			until = " until " + formatTime(expires)
		}
		fmt.Fprintf(f.out(), "granted %d record(s) to %s%s in block %s\n", len(cids), clean(label(grantee)), until, g.Block)
		return nil
	})
}

// cidStrings returns the CIDs' string forms.
func cidStrings(cids []cid.Cid) []string {
	out := make([]string, len(cids))
	for i, c := range cids {
		out[i] = c.String()
	}
	return out
}

// parseExpiry parses --expires: empty (no expiry), a positive duration
// from now (Go syntax, or whole days as "30d"), an RFC 3339 time, or a
// date (midnight UTC). A bad value is a usage error.
func parseExpiry(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil && strings.HasSuffix(s, "d") {
		if n, nerr := strconv.Atoi(strings.TrimSuffix(s, "d")); nerr == nil && n > 0 && n < 100*366 {
			d, err = time.Duration(n)*24*time.Hour, nil
		}
	}
	if err == nil {
		if d <= 0 {
			return time.Time{}, usagef("--expires %q: the duration must be positive", s)
		}
		return now.Add(d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, usagef("--expires %q: want a duration (720h, 30d) or a time (2027-01-01T00:00:00Z)", truncate(s, 60))
}
