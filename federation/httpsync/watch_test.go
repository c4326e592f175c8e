package httpsync

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/federation"
)

// TestWatchWithBlocksAndChecksThePeer: WatchWith sends since and wait,
// and the peer check refuses an answer from a gateway that may not serve
// the region.
func TestWatchWithBlocksAndChecksThePeer(t *testing.T) {
	var query string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		query = r.URL.RawQuery
		if !strings.Contains(query, "since=4") {
			w.Header().Set(federation.WatchHeader, "1m30s")
		}
		w.Write([]byte(`{"region":"eu-west","version":3,"full":false,"changes":[]}`))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	res, err := WatchWith(context.Background(), srv.Client(), FetchOptions{}, addr, "eu-west", 3, 90*time.Second)
	if err != nil || res.Version != 3 || res.Full {
		t.Fatalf("WatchWith: %+v, %v", res, err)
	}
	if query != "since=3&wait=1m30s" {
		t.Fatalf("query %q, want since=3&wait=1m30s", query)
	}
	// A gateway that answers without the watch header does not know
	// watches: the watch fails (the watcher backs off).
	if _, err := WatchWith(context.Background(), srv.Client(), FetchOptions{}, addr, "eu-west", 4, time.Second); err == nil ||
		!strings.Contains(err.Error(), federation.WatchHeader) {
		t.Fatalf("a watch answered by a gateway without watches: %v, want an error naming %s", err, federation.WatchHeader)
	}
	refuse := FetchOptions{CheckPeer: func(string, string, *tls.ConnectionState) error { return errors.New("not yours") }}
	if _, err := WatchWith(context.Background(), srv.Client(), refuse, addr, "eu-west", 3, time.Second); err == nil {
		t.Fatal("an answer the peer check refuses was accepted")
	}
}
