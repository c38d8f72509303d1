package api

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// Ending a standing grant with re-key through the API: locked 423, bad
// input refused with the grant still live and no job, then a 202 job
// re-keying every record the grantee lost, and the grant ended.
func TestScopeRekeyThroughAPI(t *testing.T) {
	ctx := t.Context()
	repo := openRepo(t)
	pat, err := repo.CreateAccount(ctx, "Pat", protocol.RolePatient, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	gus, err := repo.CreateAccount(ctx, "Gus", protocol.RoleClinician, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := repo.AddRecord(ctx, pat, keyshare.NewRecord{Title: "note", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader(strings.Repeat("n", i+1))}); err != nil {
			t.Fatal(err)
		}
	}
	const all = "patient/*.rs"
	if _, n, err := repo.GrantScope(ctx, pat, gus.ID, all, time.Time{}); err != nil || n != 2 {
		t.Fatalf("grant scope: %d, %v", n, err)
	}
	e := serve(t, repo, nil)
	const path = "/api/v1/scopes/end?account=Pat"
	body := `{"scope": "` + all + `", "from": "Gus", "rekey": true}`
	if resp := e.post(t, path, body); resp.StatusCode != http.StatusLocked {
		t.Fatalf("locked: %d", resp.StatusCode)
	}
	decode(t, e.post(t, "/api/v1/sessions/unlock", `{"account": "`+string(pat.ID)+`", "passphrase": "pw"}`), http.StatusOK, &Session{})
	for _, c := range []struct {
		body string
		want int
	}{
		{`{"scope": "patient/Condition.rs", "from": "Gus", "rekey": true}`, http.StatusNotFound},
		{`{"scope": "patient/Observation.cruds", "from": "Gus", "rekey": true}`, http.StatusBadRequest},
		{`{"scope": "` + all + `", "from": "nobody", "rekey": true}`, http.StatusNotFound},
		{`{"scope": "` + all + `", "from": "Gus", "rekey": true, "extra": 1}`, http.StatusBadRequest},
	} {
		var er Error
		decode(t, e.post(t, path, c.body), c.want, &er)
		if er.Error == "" || strings.Contains(er.Error, "\n") {
			t.Fatalf("%s: error %q", c.body, er.Error)
		}
	}
	given, _, err := repo.StandingGrants(ctx, pat.ID)
	if err != nil || len(given) != 1 || !given[0].Live {
		t.Fatalf("a refused re-key ended the grant: %+v %v", given, err)
	}
	var none JobList
	decode(t, e.do(t, req{path: "/api/v1/jobs?account=Pat"}), http.StatusOK, &none)
	if len(none.Jobs) != 0 {
		t.Fatalf("refused re-keys left jobs: %+v", none.Jobs)
	}

	var j Job
	decode(t, e.post(t, path, body), http.StatusAccepted, &j)
	if j.ID == "" || j.Total != 2 || j.From != gus.ID || j.Scope != all {
		t.Fatalf("job as started: %+v", j)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !j.Finished() {
		if time.Now().After(deadline) {
			t.Fatalf("the job did not finish: %+v", j)
		}
		time.Sleep(20 * time.Millisecond)
		decode(t, e.do(t, req{path: "/api/v1/jobs/" + j.ID + "?account=Pat"}), http.StatusOK, &j)
	}
	if j.State != keyshare.JobDone || j.Done != 2 {
		t.Fatalf("job at the end: %+v", j)
	}
	for _, jr := range j.Records {
		a, err := repo.AccessFor(ctx, mustCID(t, jr.New), pat.ID)
		if err != nil || a.RekeyOf == nil {
			t.Fatalf("new version %s: %+v %v", jr.New, a, err)
		}
		if _, ok := a.Reader(gus.ID); ok {
			t.Fatalf("Gus reads the new version %s", jr.New)
		}
	}
	if given, _, err = repo.StandingGrants(ctx, pat.ID); err != nil || len(given) != 1 || given[0].Live || given[0].Ended == nil {
		t.Fatalf("the grant after the job: %+v %v", given, err)
	}
	// Ending it again without re-key: 404, it is ended.
	var er Error
	decode(t, e.post(t, path, `{"scope": "`+all+`", "from": "Gus"}`), http.StatusNotFound, &er)
}
