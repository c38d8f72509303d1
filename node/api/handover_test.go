package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
	"github.com/blockmrs/blockmrs/node/pair"
	"github.com/blockmrs/blockmrs/protocol"
)

// The hand-over endpoints through the typed client, over two in-process
// nodes: the mother's server offers her ward's account
// (POST /api/v1/guardians/handover), the grown-up's server takes it over
// (POST /api/v1/devices/takeover): it holds the keys, has withdrawn the
// mother's node and rotated the signing key; the mother's repo no longer
// holds them. Refused: the acting account itself (403), an unknown ward
// (404), a wrong code (403, nothing stored), a malformed one (400), and
// a node without pairing (501).
func TestHandoverEndpoints(t *testing.T) {
	ctx := t.Context()
	mumRepo, kimRepo := openRepo(t), openRepo(t)
	mh, kh := newHost(t), newHost(t)
	mum, err := mumRepo.CreateAccount(ctx, "Mum", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ops.CreateMinor(ctx, mumRepo, mum, keyshare.DeviceInfo{PeerID: mh.ID().String()}, ops.MinorRequest{Name: "Kim"}); err != nil {
		t.Fatal(err)
	}
	kim, err := mumRepo.Resolve(ctx, "Kim", true)
	if err != nil {
		t.Fatal(err)
	}
	mp, kp := pair.New(mh, mumRepo, pair.Options{}), pair.New(kh, kimRepo, pair.Options{})
	t.Cleanup(func() { mp.Close(); kp.Close() })
	ms, ks := keyshare.NewSessions(mumRepo), keyshare.NewSessions(kimRepo)
	t.Cleanup(ms.Close)
	t.Cleanup(ks.Close)
	me := startServer(t, Options{Repo: mumRepo, Sessions: ms, Host: mh, Pair: mp})
	ke := startServer(t, Options{Repo: kimRepo, Sessions: ks, Host: kh, Pair: kp})
	mc, err := NewClient(writeClientFiles(t, me.srv.URL(), me.token))
	if err != nil {
		t.Fatal(err)
	}
	kc, err := NewClient(writeClientFiles(t, ke.srv.URL(), ke.token))
	if err != nil {
		t.Fatal(err)
	}

	for body, want := range map[string]int{
		`{"ward":"Mum"}`:       http.StatusForbidden,
		`{"ward":"nobody"}`:    http.StatusNotFound,
		`{"ward":""}`:          http.StatusBadRequest,
		`{"ward":"Kim","x":1}`: http.StatusBadRequest,
	} {
		resp := me.post(t, "/api/v1/guardians/handover?account=Mum", body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("handover %s: %d, want %d", body, resp.StatusCode, want)
		}
	}
	// Kim, acting, is no guardian of hers.
	if _, err := mc.Handover(ctx, "Kim", HandoverRequest{Ward: "Kim"}); err == nil || !strings.Contains(err.Error(), "hand itself over") {
		t.Fatalf("handover by the ward itself: %v", err)
	}
	offer, err := mc.Handover(ctx, "Mum", HandoverRequest{Ward: "Kim"})
	if err != nil || offer.Account != kim.ID || offer.WardName != "Kim" || !strings.Contains(offer.Join, "--takeover '"+offer.Code+"'") {
		t.Fatalf("handover: %+v, %v", offer, err)
	}
	resp := ke.post(t, "/api/v1/devices/takeover", `{"code":"/ip4/127.0.0.1 7KQ2"}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("malformed code: %d", resp.StatusCode)
	}
	wrong := []byte(offer.Secret)
	wrong[0] = map[bool]byte{true: '1', false: '0'}[wrong[0] == '0']
	if _, err := kc.Takeover(ctx, JoinRequest{Code: offer.Address + " " + string(wrong)}); err == nil || !strings.Contains(err.Error(), "wrong pairing code") {
		t.Fatalf("wrong code: %v", err)
	}
	if a, err := kimRepo.Account(ctx, kim.ID); err == nil && a.Local {
		t.Fatal("a wrong code stored the account")
	}

	took, err := kc.Takeover(ctx, JoinRequest{Code: offer.Code, Name: "kim-laptop"})
	if err != nil || took.Account.ID != kim.ID || took.From != mh.ID().String() || !took.Removed.Signing || took.Removed.PeerID != mh.ID().String() {
		t.Fatalf("takeover: %+v, %v", took, err)
	}
	after, err := kimRepo.Account(ctx, kim.ID)
	if err != nil || !after.Local {
		t.Fatalf("the grown-up's repo after: %+v, %v", after, err)
	}
	for _, d := range after.Devices {
		if d.PeerID == mh.ID().String() {
			t.Fatalf("the mother's node is still declared: %+v", after.Devices)
		}
	}
	if a, err := mumRepo.Account(ctx, kim.ID); err != nil || a.Local {
		t.Fatalf("the mother's repo still holds the keys: %+v, %v", a, err)
	}
	// A second hand-over of the same account is refused: its keys are gone.
	if _, err := mc.Handover(ctx, "Mum", HandoverRequest{Ward: string(kim.ID)}); err == nil || !strings.Contains(err.Error(), "not in this repo") {
		t.Fatalf("second handover: %v", err)
	}

	// Without pairing (no daemon): 501.
	plain := serve(t, openRepo(t), nil)
	if _, err := plain.srv.opts.Repo.CreateAccount(ctx, "Pat", protocol.RolePatient, nil); err != nil {
		t.Fatal(err)
	}
	resp = plain.post(t, "/api/v1/guardians/handover", `{"ward":"Pat"}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotImplemented {
		t.Fatalf("without pairing: %d", resp.StatusCode)
	}
}
