package api

import (
	"bytes"
	"encoding/binary"
	"image/png"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
	"github.com/blockmrs/blockmrs/protocol"
)

// A profile file uploaded: added once, unchanged the second time (the
// same through the Client); a bad file is 400 and changes nothing; the
// wrong Content-Type is 415; a file over the limit is 413, announced or
// not.
func TestImportContact(t *testing.T) {
	ctx := t.Context()
	pRepo, cRepo := openRepo(t), openRepo(t)
	if _, err := pRepo.CreateAccount(ctx, "Pat", protocol.RolePatient, nil); err != nil {
		t.Fatal(err)
	}
	doc, err := cRepo.CreateAccount(ctx, "Dr <b>Jones</b>", protocol.RoleClinician, nil)
	if err != nil {
		t.Fatal(err)
	}
	var profile bytes.Buffer
	if err := cRepo.ExportProfile(ctx, &profile, doc.ID); err != nil {
		t.Fatal(err)
	}
	e := serve(t, pRepo, nil)
	upload := func(body []byte, ct string, length int64) *http.Response {
		h := map[string]string{}
		if ct != "" {
			h["Content-Type"] = ct
		}
		return e.do(t, req{method: http.MethodPost, path: "/api/v1/contacts/import", body: bytes.NewReader(body), length: length, header: h})
	}
	contacts := func() []Account {
		var l AccountList
		decode(t, e.do(t, req{path: "/api/v1/contacts"}), http.StatusOK, &l)
		return l.Accounts
	}

	// Bad files first: nothing is stored.
	data := profile.Bytes()
	wantError(t, upload(data[:len(data)/2], "application/vnd.ipld.car", int64(len(data)/2)), http.StatusBadRequest, "profile file")
	flipped := bytes.Clone(data)
	flipped[len(flipped)-3] ^= 1
	wantError(t, upload(flipped, "application/vnd.ipld.car", int64(len(flipped))), http.StatusBadRequest, "profile file")
	wantError(t, upload(nil, "", 0), http.StatusBadRequest, "profile file")
	wantError(t, upload(data, "application/json", int64(len(data))), http.StatusUnsupportedMediaType, "Content-Type")
	big := oversized(t, data)
	wantError(t, upload(big, "application/octet-stream", int64(len(big))), http.StatusRequestEntityTooLarge, "at most")
	wantError(t, upload(big, "application/octet-stream", -1), http.StatusRequestEntityTooLarge, "at most")
	if c := contacts(); len(c) != 0 {
		t.Fatalf("bad uploads stored contacts: %+v", c)
	}

	var added ContactAdded
	decode(t, upload(data, "application/vnd.ipld.car", int64(len(data))), http.StatusOK, &added)
	if len(added.Added) != 1 || added.Added[0].ID != doc.ID || added.Added[0].Name != "Dr <b>Jones</b>" || added.Added[0].Role != protocol.RoleClinician ||
		added.NewBlocks != 1 || len(added.Updated) != 0 {
		t.Fatalf("import: %+v", added)
	}
	if c := contacts(); len(c) != 1 || c[0].ID != doc.ID {
		t.Fatalf("contacts after the import: %+v", c)
	}
	again, err := e.client(t).ImportContact(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Added) != 0 || len(again.Unchanged) != 1 || again.Unchanged[0] != doc.ID || again.NewBlocks != 0 {
		t.Fatalf("import again: %+v", again)
	}
	if _, err := e.client(t).ImportContact(ctx, strings.NewReader("not a CAR")); err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "profile file") {
		t.Fatalf("client import of a bad file: %v", err)
	}
}

// The share-code QR code is the library's PNG of the share code GET
// /api/v1/id gives, and decodes as a PNG whose pixels are its modules.
func TestShareCodePNG(t *testing.T) {
	ctx := t.Context()
	repo := openRepo(t)
	e := serve(t, repo, nil)
	resp := e.do(t, req{path: "/api/v1/share-code.png"})
	wantError(t, resp, http.StatusNotFound, "no account")

	pat, err := repo.CreateAccount(ctx, "Pat", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	sam, err := repo.CreateAccount(ctx, "Sam", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []*keyshare.Keys{pat, sam} {
		var id Identity
		decode(t, e.do(t, req{path: "/api/v1/id?account=" + string(k.ID)}), http.StatusOK, &id)
		if !strings.HasSuffix(id.ShareCode, " "+string(k.ID)) {
			t.Fatalf("share code %q of %s", id.ShareCode, k.ID)
		}
		resp := e.do(t, req{path: "/api/v1/share-code.png?account=" + string(k.ID)})
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("share-code.png: %d %v", resp.StatusCode, resp.Header)
		}
		q, err := qrcode.New(id.ShareCode, ops.ShareQRLevel)
		if err != nil {
			t.Fatal(err)
		}
		want, err := q.PNG(-ShareQRModule)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(body, want) {
			t.Fatalf("%s: the PNG is not the QR code of %q", k.ID, id.ShareCode)
		}
		img, err := png.Decode(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		bits := q.Bitmap()
		if b := img.Bounds(); b.Dx() != len(bits)*ShareQRModule || b.Dy() != b.Dx() {
			t.Fatalf("image %v for %d modules", b, len(bits))
		}
		for y := range bits {
			for x := range bits[y] {
				r, _, _, _ := img.At(x*ShareQRModule+ShareQRModule/2, y*ShareQRModule+ShareQRModule/2).RGBA()
				if dark := r < 0x8000; dark != bits[y][x] {
					t.Fatalf("module (%d, %d): dark %v, want %v", x, y, dark, bits[y][x])
				}
			}
		}
	}
	// The default account's when none is named; HEAD sends no body.
	var id Identity
	decode(t, e.do(t, req{path: "/api/v1/id"}), http.StatusOK, &id)
	q, _ := qrcode.New(id.ShareCode, ops.ShareQRLevel)
	want, _ := q.PNG(-ShareQRModule)
	if body, _ := io.ReadAll(e.do(t, req{path: "/api/v1/share-code.png"}).Body); !bytes.Equal(body, want) {
		t.Fatal("the default account's QR code differs")
	}
	if resp := e.do(t, req{method: http.MethodHead, path: "/api/v1/share-code.png"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD: %d", resp.StatusCode)
	} else if body, _ := io.ReadAll(resp.Body); len(body) != 0 {
		t.Fatalf("HEAD sent %d bytes", len(body))
	}
	wantError(t, e.do(t, req{path: "/api/v1/share-code.png?account=bogus"}), http.StatusBadRequest, "account")
	if _, err := repo.ImportCAR(ctx, otherProfile(t)); err != nil {
		t.Fatal(err)
	}
	contacts, err := ops.Contacts(ctx, repo)
	if err != nil || len(contacts.Accounts) != 1 {
		t.Fatal(contacts, err)
	}
	wantError(t, e.do(t, req{path: "/api/v1/share-code.png?account=" + string(contacts.Accounts[0].ID)}), http.StatusNotFound, "not a local account")
}

// oversized is profile followed by well-formed 1 MiB blocks, past
// ops.MaxContactFile: a file the server reads on until the limit.
func oversized(t *testing.T, profile []byte) []byte {
	t.Helper()
	out := bytes.Clone(profile)
	block := make([]byte, 1<<20)
	for i := 0; len(out) <= ops.MaxContactFile; i++ {
		block[0], block[1] = byte(i), byte(i>>8)
		c, err := cid.V1Builder{Codec: cid.Raw, MhType: multihash.SHA2_256}.Sum(block)
		if err != nil {
			t.Fatal(err)
		}
		out = binary.AppendUvarint(out, uint64(c.ByteLen()+len(block)))
		out = append(append(out, c.Bytes()...), block...)
	}
	return out
}

// otherProfile is the profile file of an account of another repo.
func otherProfile(t *testing.T) io.Reader {
	t.Helper()
	other := openRepo(t)
	k, err := other.CreateAccount(t.Context(), "Dr Who", protocol.RoleClinician, nil)
	if err != nil {
		t.Fatal(err)
	}
	var car bytes.Buffer
	if err := other.ExportProfile(t.Context(), &car, k.ID); err != nil {
		t.Fatal(err)
	}
	return &car
}
