package api

import (
	"errors"
	"mime"
	"net/http"

	"github.com/blockmrs/blockmrs/node/ops"
	"github.com/blockmrs/blockmrs/protocol"
	"github.com/blockmrs/blockmrs/store"
)

// The contact endpoints beyond the share code: a contact's profile file
// uploaded, and the acting account's share code as a QR code image.

// Paths of the contact endpoints.
const (
	contactImportPath = "/api/v1/contacts/import"
	shareCodePNGPath  = "/api/v1/share-code.png"
)

// ShareQRModule is the size in pixels of one module (square) of the
// share-code QR code image.
const ShareQRModule = 6

// importContact takes a profile file (a CAR) as the request body, at most
// ops.MaxContactFile bytes, and imports it as 'blockmrs contact add FILE'
// does.
func (s *Server) importContact(w http.ResponseWriter, r *http.Request) {
	if s.opts.Repo == nil {
		writeError(w, http.StatusNotImplemented, "this server has no repo")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/vnd.ipld.car" && mt != "application/octet-stream" {
			writeError(w, http.StatusUnsupportedMediaType, "Content-Type %q: send the profile file itself, as application/vnd.ipld.car or application/octet-stream", ct)
			return
		}
	}
	if r.ContentLength > ops.MaxContactFile {
		writeError(w, http.StatusRequestEntityTooLarge, "a profile file is at most %d bytes, this one is %d (a full export goes to 'blockmrs import')", ops.MaxContactFile, r.ContentLength)
		return
	}
	body := http.MaxBytesReader(w, r.Body, ops.MaxContactFile)
	out, err := ops.ImportContact(r.Context(), s.opts.Repo, body, ops.MaxContactFile)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) || errors.Is(err, store.ErrImportLimit) {
		writeError(w, http.StatusRequestEntityTooLarge, "a profile file is at most %d bytes (a full export goes to 'blockmrs import')", ops.MaxContactFile)
		return
	}
	s.reply(w, http.StatusOK, out, err)
}

// shareCodePNG answers the acting account's share code (the "account"
// query parameter, an account ID; else the default account) as a PNG QR
// code, the same code 'blockmrs id --share --qr' prints.
func (s *Server) shareCodePNG(w http.ResponseWriter, r *http.Request) {
	args := ops.IDArgs{Account: protocol.AccountID(r.URL.Query().Get("account"))}
	q, err := ops.ShareCodeQR(r.Context(), s.opts.Accounts, s.opts.Host, args)
	if err != nil {
		s.opError(w, err)
		return
	}
	png, err := q.Code.PNG(-ShareQRModule)
	if err != nil {
		s.opError(w, err)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(png)
	}
}
