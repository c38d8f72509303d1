package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// Revoke with re-key through the API: a 202 job whose progress GET
// /api/v1/jobs/{id} reports to the end, bad input refused before any job
// is made, another account's job not found, a locked account 423.
func TestRekeyThroughAPI(t *testing.T) {
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
	var recs []string
	var cids []cid.Cid
	for i := range 2 {
		c, err := repo.AddRecord(ctx, pat, keyshare.NewRecord{Title: "note", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader(strings.Repeat("n", i+1))})
		if err != nil {
			t.Fatal(err)
		}
		recs, cids = append(recs, c.String()), append(cids, c)
	}
	if _, err := repo.Grant(ctx, pat, cids, gus.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	e := serve(t, repo, nil)
	body := func(rs ...string) string {
		return fmt.Sprintf(`{"records": ["%s"], "from": "Gus", "rekey": true}`, strings.Join(rs, `", "`))
	}

	// Locked: 423, nothing made.
	if resp := e.post(t, "/api/v1/revocations?account=Pat", body(recs...)); resp.StatusCode != http.StatusLocked {
		t.Fatalf("locked: %d", resp.StatusCode)
	}
	decode(t, e.post(t, "/api/v1/sessions/unlock", `{"account": "`+string(pat.ID)+`", "passphrase": "pw"}`), http.StatusOK, &Session{})

	// Bad input: 400, 403, 404, and no job.
	for _, c := range []struct {
		path, body string
		want       int
	}{
		{"/api/v1/revocations?account=Pat", body(recs[0], "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"), http.StatusNotFound},
		{"/api/v1/revocations?account=Pat", `{"records": ["` + recs[0] + `"], "from": "Pat", "rekey": true}`, http.StatusBadRequest},
		{"/api/v1/revocations?account=Gus", body(recs[0]), http.StatusForbidden},
		{"/api/v1/revocations?account=Pat", body("not a cid"), http.StatusBadRequest},
	} {
		var er Error
		decode(t, e.post(t, c.path, c.body), c.want, &er)
		if er.Error == "" || strings.Contains(er.Error, "\n") {
			t.Fatalf("%s %s: error %q", c.path, c.body, er.Error)
		}
	}
	var none JobList
	decode(t, e.do(t, req{path: "/api/v1/jobs?account=Pat"}), http.StatusOK, &none)
	if len(none.Jobs) != 0 {
		t.Fatalf("refused re-keys left jobs: %+v", none.Jobs)
	}

	var j Job
	decode(t, e.post(t, "/api/v1/revocations?account=Pat", body(recs...)), http.StatusAccepted, &j)
	if j.ID == "" || j.Total != 2 || j.From != gus.ID {
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
	if j.State != keyshare.JobDone || j.Done != 2 || j.Records[0].New == "" || j.Records[1].New == "" {
		t.Fatalf("job at the end: %+v", j)
	}
	for i, c := range cids {
		a, err := repo.Access(ctx, c)
		if err != nil || a.Rekeyed == nil || a.Rekeyed.New != j.Records[i].New {
			t.Fatalf("record %d after the job: %+v %v", i, a.Rekeyed, err)
		}
	}
	// Gus cannot see Pat's job; the list has it.
	var er Error
	decode(t, e.do(t, req{path: "/api/v1/jobs/" + j.ID + "?account=Gus"}), http.StatusNotFound, &er)
	var list JobList
	decode(t, e.do(t, req{path: "/api/v1/jobs?account=Pat"}), http.StatusOK, &list)
	if len(list.Jobs) != 1 || list.Jobs[0].ID != j.ID {
		t.Fatalf("jobs: %+v", list.Jobs)
	}
	// Revoke without rekey still answers 200 with the block.
	if _, err := repo.Grant(ctx, pat, []cid.Cid{mustCID(t, j.Records[0].New)}, gus.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	var rv Revoked
	decode(t, e.post(t, "/api/v1/revocations?account=Pat", `{"records": ["`+j.Records[0].New+`"], "from": "Gus"}`), http.StatusOK, &rv)
	if rv.Block == "" {
		t.Fatalf("plain revoke: %+v", rv)
	}
}

func mustCID(t *testing.T, s string) cid.Cid {
	t.Helper()
	c, err := cid.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
