package ops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// Standing grants: a patient gives an account a scope of her records,
// present and future, instead of a list of records
// (keyshare.Repo.GrantScope; the scope syntax is protocol.ParseScope's).

// ScopeGrantRequest gives an account a standing grant.
type ScopeGrantRequest struct {
	// Scope is a SMART on FHIR v2 read scope of the patient context:
	// patient/*.rs, patient/TYPE.rs, patient/TYPE.rs?category=CODE
	// (patient/Binary.rs for files, patient/DocumentReference.rs for
	// notes).
	Scope string `json:"scope"`
	// To is the grantee: an account the repo knows (ID, name or ID suffix).
	To string `json:"to"`
	// Expires, when set, ends the standing grant at that time (RFC 3339).
	Expires time.Time `json:"expires,omitzero"`
}

// ScopeGranted is the result of GrantScope.
type ScopeGranted struct {
	// Block is the chain block holding the scope entry.
	Block string `json:"block"`
	// To and ToName name the grantee.
	To     protocol.AccountID `json:"to"`
	ToName string             `json:"to_name"`
	// Scope is the scope in canonical form, as the chain holds it.
	Scope string `json:"scope"`
	// Expires is the standing grant's end, if any.
	Expires time.Time `json:"expires,omitzero"`
	// Covered is how many of the acting account's present records the
	// grantee was given at once; future ones follow as they are written.
	Covered int `json:"covered"`
}

// ScopeEndRequest ends a standing grant.
type ScopeEndRequest struct {
	// Scope is the scope of the standing grant (any form ParseScope
	// takes: it is compared in canonical form).
	Scope string `json:"scope"`
	// From is the grantee whose standing grant ends.
	From string `json:"from"`
	// Rekey also re-keys every record From lost by the end (see
	// StartScopeRekey): it runs as a job.
	Rekey bool `json:"rekey,omitempty"`
}

// ScopeEnded is the result of EndScope.
type ScopeEnded struct {
	// Block is the chain block holding the unscope entry.
	Block string `json:"block"`
	// From and FromName name the former grantee.
	From     protocol.AccountID `json:"from"`
	FromName string             `json:"from_name"`
	// Scope is the ended scope in canonical form.
	Scope string `json:"scope"`
}

// GrantScope gives req.To a standing grant of req.Scope over k's records
// (keyshare.Repo.GrantScope): every record of k's in the scope, present
// and future, until req.Expires or until EndScope.
func GrantScope(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, req ScopeGrantRequest) (ScopeGranted, error) {
	scope, err := protocol.CanonicalScope(req.Scope)
	if err != nil {
		return ScopeGranted{}, invalidf("scope: %v", err)
	}
	to, err := resolveOther(ctx, repo, "to", req.To)
	if err != nil {
		return ScopeGranted{}, err
	}
	if to.ID == k.ID {
		return ScopeGranted{}, invalidf("to: cannot grant to the acting account itself")
	}
	if !req.Expires.IsZero() && !req.Expires.After(time.Now()) {
		return ScopeGranted{}, invalidf("expires: %s is not in the future", req.Expires.Format(time.RFC3339))
	}
	block, n, err := repo.GrantScope(ctx, k, to.ID, scope, req.Expires)
	if err != nil {
		return ScopeGranted{}, err
	}
	until := ""
	if !req.Expires.IsZero() {
		until = ", until " + req.Expires.UTC().Format(time.RFC3339)
	}
	auditChange(ctx, repo, keyshare.AuditGrant, k.ID, to.ID, nil,
		fmt.Sprintf("granted standing grant %s covering %d present record(s) and future ones%s, in chain block %s", scope, n, until, block))
	return ScopeGranted{Block: block.String(), To: to.ID, ToName: to.Name, Scope: scope, Expires: req.Expires, Covered: n}, nil
}

// EndScope ends k's standing grant of req.Scope to req.From
// (keyshare.Repo.EndScope): from the next sync on, req.From can open
// none of the records the scope covered and gets no new one; what it
// already fetched and opened cannot be taken back.
func EndScope(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, req ScopeEndRequest) (ScopeEnded, error) {
	if req.Rekey {
		return ScopeEnded{}, invalidf("rekey: ending a standing grant with re-key runs as a job (StartScopeRekey)")
	}
	scope, err := protocol.CanonicalScope(req.Scope)
	if err != nil {
		return ScopeEnded{}, invalidf("scope: %v", err)
	}
	from, err := resolveOther(ctx, repo, "from", req.From)
	if err != nil {
		return ScopeEnded{}, err
	}
	covered, err := scopeCovered(ctx, repo, k, from.ID, scope)
	if err != nil {
		return ScopeEnded{}, err
	}
	block, err := repo.EndScope(ctx, k, from.ID, scope)
	if errors.Is(err, keyshare.ErrNoStanding) {
		return ScopeEnded{}, fmt.Errorf("%s has no live standing grant %s from this account (see 'blockmrs grants'): %w", from.ID.Short(), scope, ErrNotFound)
	}
	if err != nil {
		return ScopeEnded{}, err
	}
	auditScopeEnd(ctx, repo, k.ID, from.ID, scope, covered, "in chain block "+block.String())
	return ScopeEnded{Block: block.String(), From: from.ID, FromName: from.Name, Scope: scope}, nil
}

// StandingRow is one live standing grant in GrantList.
type StandingRow struct {
	// From is the granter (the patient whose records it covers), To the
	// grantee.
	From protocol.AccountID `json:"from"`
	To   protocol.AccountID `json:"to"`
	// Scope is the scope in canonical form; Covers says it for people.
	Scope  string `json:"scope"`
	Covers string `json:"covers"`
	// Expires is the grant's end, if it has one.
	Expires time.Time `json:"expires,omitzero"`
	// Records is how many records the grantee reads under it now, as
	// far as this repo sees.
	Records int `json:"records"`
	// Via is the scope entry.
	Via keyshare.EntryRef `json:"via"`
}

// ScopeCovers says in words what records a scope covers.
func ScopeCovers(scope string) string {
	sc, err := protocol.ParseScope(scope)
	if err != nil {
		return scope
	}
	what := map[string]string{
		"*": "all records", protocol.ScopeFileType: "files", protocol.ScopeNoteType: "notes and documents",
		"Observation": "observations", "Condition": "conditions", "MedicationRequest": "medication requests",
		"MedicationStatement": "medication statements", "AllergyIntolerance": "allergies", "Immunization": "immunizations",
		"Procedure": "procedures", "DiagnosticReport": "diagnostic reports", "Encounter": "encounters",
	}[sc.ResourceType]
	if what == "" {
		what = sc.ResourceType + " records"
	}
	switch {
	case sc.ResourceType == "Observation" && sc.Category == "laboratory":
		return "lab results"
	case sc.ResourceType == "Observation" && sc.Category == "vital-signs":
		return "vital signs"
	case sc.Category != "":
		return what + " in category " + sc.Category
	}
	return what
}

// standingRows lists the live standing grants account id gave and was
// given, with, per grant, how many of the listed records its grantee
// reads under it.
func standingRows(ctx context.Context, repo *keyshare.Repo, id, with protocol.AccountID, list []keyshare.Listed) ([]StandingRow, error) {
	given, received, err := repo.StandingGrants(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("standing grants: %w", err)
	}
	type key struct {
		from, to protocol.AccountID
		scope    string
	}
	count := map[key]int{}
	for _, l := range list {
		for _, rd := range l.Readers {
			if rd.Scope != "" {
				count[key{l.Subject, rd.Account, rd.Scope}]++
			}
		}
	}
	out := []StandingRow{}
	for _, s := range append(given, received...) {
		if !s.Live || (with != "" && s.From != with && s.To != with) {
			continue
		}
		out = append(out, StandingRow{From: s.From, To: s.To, Scope: s.Scope, Covers: ScopeCovers(s.Scope), Expires: s.Expires,
			Records: count[key{s.From, s.To, s.Scope}], Via: s.Via})
	}
	return out, nil
}
