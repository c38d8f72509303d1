// Package api is the node's local HTTP API: JSON over HTTP on a loopback
// address, for the command line and the web app (node/web), which the
// same server serves at /. openapi.yaml in this folder describes every
// endpoint; the server also serves it at GET /api/v1/openapi.yaml.
//
// Every response carries web.Headers (a strict Content-Security-Policy,
// nosniff, no-referrer, Cache-Control: no-store). Every request passes
// these checks, in this order, as Syncthing's and IPFS's local APIs do:
//
//  1. Host: the Host header must name this server by a loopback name and
//     its own port (127.0.0.1:PORT, localhost:PORT, [::1]:PORT), which
//     defeats DNS rebinding (a web page whose name resolves to 127.0.0.1);
//     else 403. This holds for the web app's pages too.
//  2. Origin: a request carrying an Origin header other than this
//     server's own origin (http://HOST:PORT, HOST one of the above), or a
//     Sec-Fetch-Site header saying cross-site or same-site, is refused
//     with 403 (cross-site request forgery). The web app runs in the
//     server's own origin, so its requests pass.
//  3. The web app's pages and assets (/, /app.js, /app.css) and its
//     login path (GET /login?code=CODE, see web.Logins) are served here,
//     without a token: they hold no data.
//  4. Credentials: either "Authorization: Bearer TOKEN", TOKEN being the
//     repo's api.token, compared in constant time; or the web app's
//     session cookie (HttpOnly, SameSite=Strict, made by /login from a
//     one-time code). A request with the cookie alone must, unless it is
//     GET or HEAD, carry the header "X-BlockMRS-CSRF: 1" (web.CSRFHeader),
//     else 403: a page on another origin cannot add a custom header
//     without a CORS preflight, which this server never grants. The
//     cookie does not open the token-only endpoints (POST /api/v1/exec,
//     which runs any command, and POST /api/v1/login-links): 403. With
//     neither credential: 401.
//  5. Size: a body over MaxBody bytes is refused with 413 (except on
//     POST /api/v1/exec, whose body streams a command's stdin after a
//     header line of at most MaxExecHeader bytes, POST /api/v1/records,
//     whose body is the record's content, and POST
//     /api/v1/contacts/import, whose profile file may be up to
//     ops.MaxContactFile bytes, and POST /api/v1/fhir/import, whose
//     input may be up to ops.MaxFHIRImport bytes).
//
// GET /api/v1/proof is the one endpoint that needs no token: with it a
// client checks that the server holds the token before sending it (see
// Client).
//
// Then the path and method are routed (exact paths, or patterns whose
// "{name}" segments match one path segment each, read with
// r.PathValue); an unknown path is 404 and a known
// path with another method is 405 (with Allow). Every error is a JSON
// object {"error": "one line"} with a 4xx or 5xx status.
package api

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/addrbook"
	"github.com/blockmrs/blockmrs/node/config"
	"github.com/blockmrs/blockmrs/node/ops"
	"github.com/blockmrs/blockmrs/node/pair"
	"github.com/blockmrs/blockmrs/node/web"
)

// Limits and timeouts of the server.
const (
	// MaxBody is the largest request body accepted (JSON requests).
	MaxBody = 1 << 20
	// MaxHeaderBytes bounds the request line and headers.
	MaxHeaderBytes = 64 << 10

	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 60 * time.Second
	IdleTimeout       = 120 * time.Second
)

// OpenAPI is the API's description, served at GET /api/v1/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

// Accounts lists the accounts a repo knows; *keyshare.Repo implements it.
type Accounts interface {
	Accounts(ctx context.Context) ([]keyshare.AccountInfo, error)
}

// Options configure Listen.
type Options struct {
	// Addr is the loopback host:port to listen on (port 0: any free port).
	Addr string
	// Token is the bearer token every request must carry (see
	// LoadOrCreateToken).
	Token string
	// Host is the node's libp2p host.
	Host host.Host
	// Accounts lists the repo's accounts; nil means Repo.
	Accounts Accounts
	// Repo is the daemon's open repo, for the endpoints that change it
	// (POST /api/v1/accounts); nil answers 501 there.
	Repo *keyshare.Repo
	// Profiles fetches contacts' profiles from other nodes (the node's
	// chain sync, for POST /api/v1/contacts); nil answers 501 there.
	Profiles ops.Profiles
	// Sessions holds the unlocked sessions (the /api/v1/sessions
	// endpoints); nil answers 501.
	Sessions *keyshare.Sessions
	// Pair pairs devices (the /api/v1/devices/pair and join
	// endpoints); nil answers 501 there.
	Pair *pair.Service
	// Book is the node's address book (POST /api/v1/peers/forget clears
	// the peerstore with it); nil forgets from the repo alone.
	Book *addrbook.Book
	// RequestsKick, when set, asks the node to deliver queued access
	// requests and answers now (the daemon's requests.Service.Kick).
	RequestsKick func()
	// Emergency opens emergency packs over the network (the daemon's
	// emergency.Service, for POST /api/v1/emergency/open); nil answers
	// 501 there.
	Emergency ops.EmergencyOpener
	// Attest fetches role proofs and directory answers from other nodes
	// (the node's attest service); nil answers 501 where it is needed.
	Attest AttestService
	// Exec runs commands for POST /api/v1/exec; nil answers 501.
	Exec ExecFunc
	// Logger receives server errors; nil discards them.
	Logger *slog.Logger
}

// Server is a running API server. Serve it, then Shutdown.
type Server struct {
	opts    Options
	ln      net.Listener
	srv     *http.Server
	log     *slog.Logger
	token   tokenDigest
	hosts   map[string]bool // allowed Host header values, lower case
	origins map[string]bool // allowed Origin header values, lower case
	routes  map[string]map[string]http.HandlerFunc
	started time.Time

	createMu sync.Mutex   // one account creation at a time
	logins   *web.Logins  // the web app's login codes and cookie sessions
	app      http.Handler // the web app's pages and assets

	// stopping ends when Shutdown starts: commands running through exec
	// are cancelled, so that Shutdown does not wait on them.
	stopping context.Context
	stop     context.CancelFunc
	jobs     sync.WaitGroup // re-key jobs running (rekey.go); Shutdown waits

	events         hub    // the streams of GET /api/v1/events
	unhookChain    func() // stops the repo's chain-change calls
	unhookRequests func() // stops the repo's request-change calls
	unhookAudit    func() // stops the audit log's calls (watchAudit)
}

// Listen checks opts and binds the API's address; it refuses an address
// that is not loopback. The server answers nothing until Serve.
func Listen(ctx context.Context, opts Options) (*Server, error) {
	if err := config.CheckAPIAddr(opts.Addr); err != nil {
		return nil, fmt.Errorf("api: refusing to listen: %w", err)
	}
	tok, err := parseToken(opts.Token)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	if opts.Accounts == nil && opts.Repo != nil {
		opts.Accounts = opts.Repo
	}
	if opts.Host == nil || opts.Accounts == nil {
		return nil, errors.New("api: no host or accounts")
	}
	lc := net.ListenConfig{}
	ln, err := lc.Listen(ctx, "tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("api: listen: %w", err)
	}
	tcp, ok := ln.Addr().(*net.TCPAddr)
	if !ok || !tcp.IP.IsLoopback() {
		// "localhost" resolved to something else.
		ln.Close()
		return nil, fmt.Errorf("api: refusing to listen on %s: not a loopback address", ln.Addr())
	}
	s := &Server{
		opts:    opts,
		ln:      ln,
		log:     opts.Logger,
		token:   tok,
		started: time.Now(),
	}
	s.stopping, s.stop = context.WithCancel(context.Background())
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	port := strconv.Itoa(tcp.Port)
	s.hosts = map[string]bool{}
	s.origins = map[string]bool{}
	for _, h := range []string{"127.0.0.1", "localhost", "::1", tcp.IP.String()} {
		hp := strings.ToLower(net.JoinHostPort(h, port))
		s.hosts[hp] = true
		s.origins["http://"+hp] = true
	}
	s.routes = map[string]map[string]http.HandlerFunc{
		"/api/v1/health":          {http.MethodGet: s.health},
		"/api/v1/id":              {http.MethodGet: s.id},
		"/api/v1/accounts":        {http.MethodGet: s.listAccounts, http.MethodPost: s.createAccount},
		"/api/v1/contacts":        {http.MethodGet: s.listContacts, http.MethodPost: s.addContact},
		contactImportPath:         {http.MethodPost: s.importContact},
		shareCodePNGPath:          {http.MethodGet: s.shareCodePNG},
		"/api/v1/peers":           {http.MethodGet: s.peers},
		"/api/v1/peers/forget":    {http.MethodPost: s.forgetPeer},
		"/api/v1/openapi.yaml":    {http.MethodGet: s.openapi},
		execPath:                  {http.MethodPost: s.exec},
		"/api/v1/sessions":        {http.MethodGet: s.listSessions},
		"/api/v1/sessions/unlock": {http.MethodPost: s.unlock},
		"/api/v1/sessions/lock":   {http.MethodPost: s.lock},
		proofPath:                 {http.MethodGet: s.proof},
		loginLinksPath:            {http.MethodPost: s.newLoginLink},

		recordsPath:                         {http.MethodGet: s.listRecords, http.MethodPost: s.addRecord},
		"/api/v1/records/{cid}":             {http.MethodGet: s.getRecord},
		"/api/v1/records/{cid}/content":     {http.MethodGet: s.recordContent},
		"/api/v1/records/{cid}/verify":      {http.MethodGet: s.verifyRecord},
		"/api/v1/records/{cid}/hide":        {http.MethodPost: s.hideRecord},
		"/api/v1/records/{cid}/unhide":      {http.MethodPost: s.unhideRecord},
		"/api/v1/records/{cid}/readers":     {http.MethodGet: s.readers},
		"/api/v1/grants":                    {http.MethodGet: s.listGrants, http.MethodPost: s.grant},
		"/api/v1/revocations":               {http.MethodPost: s.revoke},
		"/api/v1/jobs":                      {http.MethodGet: s.listJobs},
		"/api/v1/jobs/{id}":                 {http.MethodGet: s.getJob},
		"/api/v1/scopes":                    {http.MethodPost: s.grantScope},
		"/api/v1/scopes/end":                {http.MethodPost: s.endScope},
		"/api/v1/requests":                  {http.MethodGet: s.listRequests, http.MethodPost: s.sendRequest},
		"/api/v1/requests/{id}/approve":     {http.MethodPost: s.approveRequest},
		"/api/v1/requests/{id}/deny":        {http.MethodPost: s.denyRequest},
		"/api/v1/events":                    {http.MethodGet: s.eventStream},
		"/api/v1/devices":                   {http.MethodGet: s.listDevices, http.MethodPost: s.declareDevice},
		"/api/v1/devices/remove":            {http.MethodPost: s.withdrawDevice},
		"/api/v1/log":                       {http.MethodGet: s.chainLog},
		"/api/v1/accounts/default":          {http.MethodPost: s.setDefault},
		labsPath:                            {http.MethodGet: s.listLabs, http.MethodPost: s.addLabs},
		labsPath + "/panel":                 {http.MethodGet: s.labFields},
		fhirImportPath:                      {http.MethodPost: s.importFHIR},
		"/api/v1/fhir/export":               {http.MethodGet: s.exportFHIR},
		"/api/v1/fhir/summary":              {http.MethodGet: s.summaryFHIR},
		"/api/v1/emergency":                 {http.MethodGet: s.emergencyShow, http.MethodPost: s.emergencySetup},
		"/api/v1/emergency/open":            {http.MethodPost: s.emergencyOpen},
		"/api/v1/emergency/end":             {http.MethodPost: s.emergencyEnd},
		attestationsPath:                    {http.MethodGet: s.listAttestations, http.MethodPost: s.attest},
		attestationsPath + "/withdraw":      {http.MethodPost: s.unattest},
		rolesPath:                           {http.MethodGet: s.checkRole},
		trustPath:                           {http.MethodGet: s.listTrust, http.MethodPost: s.trust},
		trustPath + "/remove":               {http.MethodPost: s.distrust},
		directoryPath:                       {http.MethodGet: s.directory},
		directoryPath + "/contact":          {http.MethodPost: s.directoryContact},
		"/api/v1/audit":                     {http.MethodGet: s.auditTrail},
		"/api/v1/audit/fhir":                {http.MethodGet: s.auditFHIR},
		"/api/v1/audit/verify":              {http.MethodGet: s.auditVerify},
		"/api/v1/guardians":                 {http.MethodGet: s.listGuardians, http.MethodPost: s.appointGuardian},
		"/api/v1/guardians/remove":          {http.MethodPost: s.removeGuardian},
		"/api/v1/guardians/grant":           {http.MethodPost: s.grantForWard},
		"/api/v1/guardians/revoke":          {http.MethodPost: s.revokeForWard},
		"/api/v1/guardians/minor":           {http.MethodPost: s.createMinor},
		"/api/v1/guardians/accept":          {http.MethodPost: s.acceptWard},
		"/api/v1/guardians/decline":         {http.MethodPost: s.declineWard},
		"/api/v1/guardians/handover":        {http.MethodPost: s.handover},
		"/api/v1/devices/pair":              {http.MethodGet: s.pairStatus, http.MethodPost: s.pairStart},
		"/api/v1/devices/pair/cancel":       {http.MethodPost: s.pairCancel},
		"/api/v1/devices/pair/qr":           {http.MethodGet: s.pairQR},
		"/api/v1/devices/join":              {http.MethodPost: s.pairJoin},
		"/api/v1/devices/takeover":          {http.MethodPost: s.takeover},
		"/api/v1/devices/remove-and-rotate": {http.MethodPost: s.removeDevice},
	}
	maps.Copy(s.routes, s.recoveryRoutes())
	if opts.Repo != nil {
		s.unhookChain = opts.Repo.OnChainChange(s.chainChanged)
		s.unhookRequests = opts.Repo.OnRequestChange(s.requestChanged)
		s.unhookAudit = s.watchAudit()
	}
	s.logins = web.NewLogins(tcp.Port)
	s.app = web.Handler(s.logins)
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// Addr returns the address the server listens on, as host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL returns the server's base URL, http://host:port.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Serve answers requests until Shutdown; it then returns nil. Any other
// return is a failure of the listener.
func (s *Server) Serve() error {
	err := s.srv.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("api: serve: %w", err)
}

// Shutdown stops accepting requests, cancels the commands running through
// exec and waits, until ctx ends, for the requests in flight; then it
// closes the remaining connections.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stop()
	if s.unhookChain != nil {
		s.unhookChain()
		s.unhookRequests()
		s.unhookAudit()
	}
	err := s.srv.Shutdown(ctx)
	// Re-key jobs were cancelled with stopping: each saves itself as
	// interrupted after the record it is on.
	jobsDone := make(chan struct{})
	go func() { s.jobs.Wait(); close(jobsDone) }()
	select {
	case <-jobsDone:
	case <-ctx.Done():
	}
	if err != nil {
		s.srv.Close()
		return fmt.Errorf("api: shutdown: %w", err)
	}
	return nil
}

// ServeHTTP applies the checks described in the package comment, then
// routes the request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	web.Headers(h)

	if !s.hosts[strings.ToLower(r.Host)] {
		writeError(w, http.StatusForbidden, "Host header %q does not name this API (use %s)", r.Host, s.URL())
		return
	}
	if o := r.Header.Get("Origin"); o != "" && !s.origins[strings.ToLower(o)] {
		writeError(w, http.StatusForbidden, "cross-origin request from %q refused", o)
		return
	}
	if sfs := r.Header.Get("Sec-Fetch-Site"); sfs == "cross-site" || sfs == "same-site" {
		writeError(w, http.StatusForbidden, "cross-site request refused")
		return
	}
	if web.IsApp(r.URL.Path) {
		s.app.ServeHTTP(w, r)
		return
	}
	if r.URL.Path == proofPath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		s.proof(w, r)
		return
	}
	if !s.token.matches(bearer(r)) {
		if !s.logins.Check(s.logins.FromRequest(r)) {
			h.Set("WWW-Authenticate", `Bearer realm="blockmrs"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong API token (Authorization: Bearer <the repo's api.token>)")
			return
		}
		if tokenOnly[r.URL.Path] {
			writeError(w, http.StatusForbidden, "%s needs the API token; the web app's session does not open it", r.URL.Path)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Header.Get(web.CSRFHeader) != "1" {
			writeError(w, http.StatusForbidden, "a %s with the session cookie must carry the header %s: 1", r.Method, web.CSRFHeader)
			return
		}
	}
	// exec streams stdin (it bounds its header line itself); a record
	// upload's body is the record, which the store checks; a contact's
	// profile file has its own limit (ops.MaxContactFile), a FHIR
	// import's input too (ops.MaxFHIRImport).
	if r.URL.Path != execPath && !(r.URL.Path == recordsPath && r.Method == http.MethodPost) && r.URL.Path != contactImportPath && r.URL.Path != fhirImportPath {
		if r.ContentLength > MaxBody {
			writeError(w, http.StatusRequestEntityTooLarge, "request body of %d bytes is over the %d-byte limit", r.ContentLength, MaxBody)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	}

	methods, ok := s.route(r)
	if !ok {
		writeError(w, http.StatusNotFound, "no such endpoint: %s", r.URL.Path)
		return
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	fn, ok := methods[method]
	if !ok {
		h.Set("Allow", allow(methods))
		writeError(w, http.StatusMethodNotAllowed, "method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow(methods))
		return
	}
	fn(w, r)
}

func allow(methods map[string]http.HandlerFunc) string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete} {
		if _, ok := methods[m]; ok || (m == http.MethodHead && methods[http.MethodGet] != nil) {
			out = append(out, m)
		}
	}
	return strings.Join(out, ", ")
}

func bearer(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// route finds the handlers for r's path: an exact route, else a pattern
// whose segments in braces ("/api/v1/records/{cid}") each match one
// non-empty path segment, which handlers read with r.PathValue.
func (s *Server) route(r *http.Request) (map[string]http.HandlerFunc, bool) {
	if methods, ok := s.routes[r.URL.Path]; ok {
		return methods, true
	}
	got := strings.Split(r.URL.Path, "/")
	for pattern, methods := range s.routes {
		if !strings.Contains(pattern, "{") {
			continue
		}
		want := strings.Split(pattern, "/")
		if len(want) != len(got) {
			continue
		}
		params := map[string]string{}
		for i, seg := range want {
			if name, ok := strings.CutPrefix(seg, "{"); ok && strings.HasSuffix(name, "}") {
				if got[i] == "" {
					params = nil
					break
				}
				params[strings.TrimSuffix(name, "}")] = got[i]
			} else if seg != got[i] {
				params = nil
				break
			}
		}
		if params != nil {
			for k, v := range params {
				r.SetPathValue(k, v)
			}
			return methods, true
		}
	}
	return nil, false
}
