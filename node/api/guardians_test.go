package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// The guardian endpoints through the typed client: a ward appoints a
// guardian, the guardian grants and revokes the ward's record and lists
// its ward, the ward removes it, after which its acts are refused (403);
// a minor's account is created with its guardian; bad input is a 4xx
// with one line.
func TestGuardianEndpoints(t *testing.T) {
	ctx := t.Context()
	repo, other := openRepo(t), openRepo(t)
	kim, err := repo.CreateAccount(ctx, "Kim", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	mum, err := repo.CreateAccount(ctx, "Mum", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	dr, err := other.CreateAccount(ctx, "Dr Who", protocol.RoleClinician, nil)
	if err != nil {
		t.Fatal(err)
	}
	exchange(t, other, repo, dr.ID)
	e := serve(t, repo, nil)
	c, err := NewClient(writeClientFiles(t, e.srv.URL(), e.token))
	if err != nil {
		t.Fatal(err)
	}

	for body, want := range map[string]int{
		`{"guardian":"` + string(mum.ID) + `","may":["grant"]}`: http.StatusBadRequest,
		`{"guardian":"nobody"}`:                                 http.StatusNotFound,
		`{"guardian":"` + string(kim.ID) + `"}`:                 http.StatusBadRequest,
		`{"guardian":"` + string(mum.ID) + `","x":1}`:           http.StatusBadRequest,
	} {
		resp := e.post(t, "/api/v1/guardians?account="+string(kim.ID), body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("appoint %s: %d, want %d", body, resp.StatusCode, want)
		}
	}
	a, err := c.AppointGuardian(ctx, string(kim.ID), AppointRequest{Guardian: "Mum", May: []string{"read", "grant", "revoke"}})
	if err != nil || a.Guardian != mum.ID || len(a.May) != 3 || a.Block == "" {
		t.Fatalf("appoint: %+v, %v", a, err)
	}
	rec, err := repo.AddRecord(ctx, kim, keyshare.NewRecord{Title: "Vaccinations", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("MMR")})
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.Guardians(ctx, string(mum.ID))
	if err != nil || len(l.Wards) != 1 || l.Wards[0].Ward != kim.ID || l.Wards[0].WardName != "Kim" || !l.Wards[0].Live || len(l.Guardians) != 0 {
		t.Fatalf("the guardian's list: %+v, %v", l, err)
	}
	if l.Wards[0].Consent != keyshare.ConsentPending || l.Wards[0].ConsentRule != keyshare.RuleGuardianNotAccepted {
		t.Fatalf("the offer before the accept: %+v", l.Wards[0])
	}
	// Until the guardian accepts, she may not act for the ward.
	resp := e.post(t, "/api/v1/guardians/grant?account="+string(mum.ID), `{"ward":"Kim","records":["`+rec.String()+`"],"to":"`+string(dr.ID)+`"}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("grant before the accept: %d, want 403", resp.StatusCode)
	}
	if _, err := c.AcceptWard(ctx, string(dr.ID), "Kim"); err == nil {
		t.Fatal("an account Kim never appointed accepted")
	}
	acc, err := c.AcceptWard(ctx, string(mum.ID), "Kim")
	if err != nil || acc.Block == "" || acc.Appointment.Consent != keyshare.ConsentAccepted || acc.Appointment.Ward != kim.ID {
		t.Fatalf("accept: %+v, %v", acc, err)
	}
	resp = e.post(t, "/api/v1/guardians/accept?account="+string(mum.ID), `{"ward":"Kim"}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("accepting twice: %d, want 409", resp.StatusCode)
	}
	g, err := c.GrantForWard(ctx, string(mum.ID), WardGrantRequest{Ward: "Kim", Records: []string{rec.String()}, To: string(dr.ID)})
	if err != nil || g.Account != dr.ID || g.Ward != kim.ID {
		t.Fatalf("grant for the ward: %+v, %v", g, err)
	}
	a2, err := repo.AccessFor(ctx, rec, kim.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rd, ok := a2.Reader(dr.ID); !ok || rd.Guardian != mum.ID {
		t.Fatalf("Dr Who does not read under the guardian's grant: %+v", a2.Readers)
	}
	if _, err := c.RevokeForWard(ctx, string(mum.ID), WardRevokeRequest{Ward: "Kim", Records: []string{rec.String()}, From: string(dr.ID)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RemoveGuardian(ctx, string(kim.ID), "Mum"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RemoveGuardian(ctx, string(kim.ID), "Mum"); err == nil || !strings.Contains(err.Error(), "not a guardian") {
		t.Fatalf("removing twice: %v", err)
	}
	resp = e.post(t, "/api/v1/guardians/grant?account="+string(mum.ID), `{"ward":"Kim","records":["`+rec.String()+`"],"to":"`+string(dr.ID)+`"}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a grant after removal: %d, want 403", resp.StatusCode)
	}
	resp = e.post(t, "/api/v1/guardians/grant?account="+string(mum.ID), `{"ward":"Kim","records":["notacid"],"to":"Dr Who"}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a bad CID: %d, want 400", resp.StatusCode)
	}
	m, err := c.CreateMinor(ctx, string(mum.ID), MinorRequest{Name: "Sam"})
	if err != nil || m.WardName != "Sam" || m.Guardian != mum.ID {
		t.Fatalf("create a minor: %+v, %v", m, err)
	}
	if _, err := c.CreateMinor(ctx, string(mum.ID), MinorRequest{Name: "sam"}); err == nil {
		t.Fatal("a second account named Sam was made")
	}
	l, err = c.Guardians(ctx, string(mum.ID))
	if err != nil || len(l.Wards) != 2 {
		t.Fatalf("the guardian's wards: %+v, %v", l, err)
	}
}
