package gateway

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/meridian-sd/meridian/acl"
)

// newBenchServerACL is newBenchServer with ACLs on (default deny) and a
// token that may read every service and write web; it returns the handler
// and that token's secret.
func newBenchServerACL(b *testing.B) (http.Handler, string) {
	b.Helper()
	log := slog.New(slog.DiscardHandler)
	acls, err := NewACLs(ACLConfig{DefaultPolicy: "deny", InitialToken: rootSecret}, "us-east", nil, log)
	if err != nil {
		b.Fatal(err)
	}
	const secret = "0b5e3d8c-6a7f-4e21-9c3d-2f1a0e9b8c7d"
	all := ""
	tab, err := acl.NewTable(1, []acl.Token{{ID: "bench", SecretHash: acl.HashSecret(secret).String(),
		Rules: []acl.Rule{{ServicePrefix: &all, Access: acl.AccessRead}, {Service: "web", Access: acl.AccessWrite}}}})
	if err != nil {
		b.Fatal(err)
	}
	acls.install(tab)
	return newBenchServerConfig(b, Config{ACL: acls}, secret), secret
}

// BenchmarkLookupACL measures GET /v1/services/web with ACLs off (no ACL
// state, as before) and on (default deny, the token resolved and checked
// on every request: one SHA-256 and one map lookup). The instances carry
// registered_by when ACLs are on, so the "on" answer is a few bytes longer.
func BenchmarkLookupACL(b *testing.B) {
	const target = "/v1/services/web"
	b.Run("off", func(b *testing.B) {
		h := newBenchServer(b)
		benchGet(b, h, target, len(get(b, h, target)))
	})
	b.Run("on", func(b *testing.B) {
		h, secret := newBenchServerACL(b)
		req := httptest.NewRequest(http.MethodGet, target, nil)
		req.Header.Set(TokenHeader, secret)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("GET with the token: HTTP %d %s", rec.Code, rec.Body)
		}
		want := rec.Body.Len()
		b.Run("serial", func(b *testing.B) {
			b.ReportAllocs()
			req := httptest.NewRequest(http.MethodGet, target, nil)
			req.Header.Set(TokenHeader, secret)
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK || rec.Body.Len() != want {
					b.Fatalf("got HTTP %d with %d bytes, want 200 with %d", rec.Code, rec.Body.Len(), want)
				}
			}
		})
		b.Run("parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest(http.MethodGet, target, nil)
				req.Header.Set(TokenHeader, secret)
				for pb.Next() {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK || rec.Body.Len() != want {
						b.Errorf("got HTTP %d with %d bytes, want 200 with %d", rec.Code, rec.Body.Len(), want)
						return
					}
				}
			})
		})
	})
}
