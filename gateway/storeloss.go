package gateway

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/meridian-sd/meridian/region"
)

// storeLossHealth adds what /v1/health says about data lost by the store
// (see region.DetectLoss): while the catalog is not restored, checks.store
// fails with "store data loss: ..." (the cache's freshness already makes the
// status degraded and answers stale); once a loss was seen, checks.store_loss
// says what happened to the last one:
//
//	{"status":"fail"|"pass"|"warn", "reason", "detected_at",
//	 "seen_version", "store_version", "policy":"restore"|"accept",
//	 "restored", "restored_by_self", "restored_version", "error"}
//
// "warn" is a loss accepted with --on-store-loss accept.
func storeLossHealth(cache *region.Cache, checks map[string]any) {
	l, ok := cache.StoreLoss()
	if !ok {
		return
	}
	c := map[string]any{"reason": l.Reason, "detected_at": l.At.UTC().Format(time.RFC3339Nano),
		"seen_version": l.Seen.Version, "store_version": l.Found.Version, "policy": string(l.Policy),
		"restored": l.Restored}
	switch {
	case l.Accepted:
		c["status"] = "warn"
		c["error"] = "store data loss accepted (--on-store-loss accept): " + l.Reason
	case l.Restored:
		c["status"] = "pass"
		c["restored_by_self"] = l.RestoredBySelf
		c["restored_version"] = l.RestoredVersion
		c["restored_at"] = l.RestoredAt.UTC().Format(time.RFC3339Nano)
	default:
		msg := "store data loss: " + l.Reason + "; serving the cached catalog until it is restored"
		if l.Err != "" {
			msg += " (restore failed: " + l.Err + ")"
		}
		c["status"] = "fail"
		c["error"] = msg
		checks["store"] = map[string]any{"status": "fail", "error": msg}
	}
	checks["store_loss"] = c
}

// registerStoreLossMetrics adds
//
//	meridian_store_data_loss_total     data losses found in the store
//	meridian_store_data_loss_pending   1 while a loss is not restored
func registerStoreLossMetrics(m metric.Meter, cache *region.Cache, regionAttr attribute.KeyValue) {
	total, _ := m.Int64ObservableCounter("meridian.store.data_loss", metric.WithUnit("{loss}"),
		metric.WithDescription("Times this gateway found its store had lost data (epoch changed or version went back)."))
	pending, _ := m.Int64ObservableGauge("meridian.store.data_loss.pending",
		metric.WithDescription("1 while a data loss of the store is not restored (reads served from the cache)."))
	attrs := metric.WithAttributeSet(attribute.NewSet(regionAttr))
	m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(total, cache.StoreLosses(), attrs)
		o.ObserveInt64(pending, boolInt(cache.Freshness().LossPending), attrs)
		return nil
	}, total, pending)
}
