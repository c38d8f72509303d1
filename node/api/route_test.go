package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRoutePatterns(t *testing.T) {
	s := &Server{routes: map[string]map[string]http.HandlerFunc{
		"/api/v1/records":               {http.MethodGet: nil},
		"/api/v1/records/{cid}":         {http.MethodGet: nil},
		"/api/v1/records/{cid}/content": {http.MethodGet: nil},
	}}
	for path, want := range map[string]string{
		"/api/v1/records":               "",
		"/api/v1/records/bafy1":         "bafy1",
		"/api/v1/records/bafy2/content": "bafy2",
	} {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		if _, ok := s.route(r); !ok || r.PathValue("cid") != want {
			t.Errorf("%s: ok=%v cid=%q, want %q", path, ok, r.PathValue("cid"), want)
		}
	}
	for _, path := range []string{"/api/v1/records/", "/api/v1/records/a/b", "/api/v1/records//content", "/api/v1/recordsx/a"} {
		if _, ok := s.route(httptest.NewRequest(http.MethodGet, path, nil)); ok {
			t.Errorf("%s matched", path)
		}
	}
}
