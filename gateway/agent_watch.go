package gateway

import (
	"context"
	"net/http"

	"github.com/meridian-sd/meridian/federation"
	"github.com/meridian-sd/meridian/federation/httpsync"
	"github.com/meridian-sd/meridian/rt"
)

// startWatcher starts the push path: a long-lived watch on one gateway of
// every other region (federation.Watcher), over the fetches' client and
// options (mTLS, the peer check, the replication token) but without the
// fetch timeout. It stops when ctx ends.
func (a *Agent) startWatcher(ctx context.Context) {
	var cfg federation.CoreConfig
	a.Fed.Read(func(c *federation.Core) { cfg = c.Config() })
	if cfg.WatchWait <= 0 {
		return
	}
	base, opts := a.fetchClient(cfg.FetchTimeout)
	client := &http.Client{}
	if base != nil {
		*client = *base
	}
	client.Timeout = 0 // each watch has its own deadline
	tr := &httpsync.HTTPWatchTransport{Ctx: ctx, Client: withToken(client, a.ACL.replToken, 0), Options: opts,
		Slack: cfg.FetchTimeout}
	w, err := federation.NewWatcher(federation.WatcherConfig{Runtime: rt.Real(), Core: a.Fed, Transport: tr,
		Logger: a.cfg.Logger.With("region", a.cfg.Region, "component", "federation.watch")})
	if err != nil {
		a.cfg.Logger.Error("catalog watches are off", "err", err)
		return
	}
	a.Fed.OnMembership(w.Kick)
	w.Start()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		<-ctx.Done()
		w.Stop()
		tr.Wait()
	}()
}
