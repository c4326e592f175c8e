package gateway

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// BenchmarkLookupSize measures GET /v1/services/web and /v1/lookup/web
// through the whole handler for a service of 3 and of 1,000 instances
// (both gateways at catalog version 1,000). ns/op and allocs/op must not
// grow with the service beyond writing its bytes: the recorder's body is
// grown beforehand, as a socket would take the bytes without growing.
func BenchmarkLookupSize(b *testing.B) {
	for _, n := range []int{3, 1000} {
		g := newLookupGateway(b, n)
		for _, target := range []string{"/v1/services/web", "/v1/services/web?passing=true", "/v1/lookup/web", "/v1/pick/web"} {
			b.Run(strconv.Itoa(n)+"/"+target, func(b *testing.B) {
				b.ReportAllocs()
				req := httptest.NewRequest(http.MethodGet, target, nil)
				buf := make([]byte, 0, 1<<20)
				g.h.ServeHTTP(httptest.NewRecorder(), req) // the first answer builds the cached list
				for b.Loop() {
					rec := httptest.NewRecorder()
					rec.Body = bytes.NewBuffer(buf[:0])
					g.h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("GET %s: HTTP %d", target, rec.Code)
					}
				}
			})
		}
	}
}
