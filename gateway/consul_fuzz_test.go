package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/meridian-sd/meridian/region"
)

// FuzzConsulRegistration: any body either fails to decode, is refused
// with a field error, or maps onto a registration Meridian's own decoder
// takes or refuses with a field error; nothing panics.
func FuzzConsulRegistration(f *testing.F) {
	for _, s := range []string{
		`{"ID":"web-1","Name":"web","Address":"10.0.0.1","Port":80,"Tags":["v1"],"Meta":{"a":"b"},"Weights":{"Passing":3,"Warning":1}}`,
		`{"Name":"web","Port":80,"Check":{"HTTP":"http://10.0.0.1/health","Interval":"10s","Timeout":"1s","DeregisterCriticalServiceAfter":"1m"}}`,
		`{"Name":"web","Port":80,"Check":{"TTL":"30s","Status":"passing"},"Checks":null}`,
		`{"Name":"web","Checks":[{"TCP":"10.0.0.1:80","Interval":"5s"}]}`,
		`{"Name":"web","Kind":"connect-proxy"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var c consulRegistration
		if json.Unmarshal(body, &c) != nil {
			return
		}
		k, reg, err := c.toMeridian("127.0.0.1")
		if err != nil {
			if _, ok := err.(*region.FieldError); !ok {
				t.Fatalf("toMeridian: %T %v, want a *region.FieldError", err, err)
			}
			return
		}
		if k.ID == "" || k.Service == "" {
			t.Fatalf("accepted without a service or id: %+v", k)
		}
		b, err := json.Marshal(reg)
		if err != nil {
			t.Fatal(err)
		}
		if region.ValidateService(k.Service) != nil || region.ValidateID(k.ID) != nil {
			return
		}
		if _, err := region.DecodeRegistration(b, k.Service, k.ID, time.Unix(0, 0)); err != nil {
			if _, ok := err.(*region.FieldError); !ok {
				t.Fatalf("DecodeRegistration of %s: %T %v, want a *region.FieldError", b, err, err)
			}
		}
	})
}

// dnsFuzzServer is a DNS handler over an in-memory region.
func dnsFuzzServer(f testing.TB) *DNSServer {
	log := slog.New(slog.DiscardHandler)
	store := region.NewMemStore(0)
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	for i, body := range []string{
		`{"address":"10.0.0.1","port":80,"tags":["v1"]}`,
		`{"address":"fd00::1","port":81,"tags":["v2"]}`,
		`{"address":"web.example.com","port":82}`,
		`{"address":"10.0.0.4","port":83,"status":"critical"}`,
	} {
		id := []string{"web-1", "web-2", "Odd.Id", "web-4"}[i]
		in, err := region.DecodeRegistration([]byte(body), "web", id, now)
		if err != nil {
			f.Fatal(err)
		}
		if _, err := store.Put(ctx, in, region.Cond{}); err != nil {
			f.Fatal(err)
		}
	}
	cache := region.NewCache(store, region.CacheOptions{Logger: log})
	cache.Sync(ctx)
	health := region.NewHealthRunner(store, cache, region.HealthRunnerOptions{Logger: log})
	s := New(Config{Region: "us-east", Store: store, Cache: cache, Health: health, Logger: log})
	return &DNSServer{s: s, domain: DefaultDNSDomain, ttl: 5, log: log, inflight: make(chan struct{}, 1)}
}

// FuzzDNSQuery: any query that unpacks gets an answer that packs, with the
// question echoed, and that truncation fits into 512 bytes.
func FuzzDNSQuery(f *testing.F) {
	d := dnsFuzzServer(f)
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"web.service.meridian.", dns.TypeA}, {"web.service.meridian.", dns.TypeSRV}, {"v2.web.service.meridian.", dns.TypeAAAA},
		{"_web._v1.service.us-east.meridian.", dns.TypeSRV}, {"web-1.web.instance.meridian.", dns.TypeANY},
		{"0a000001.addr.meridian.", dns.TypeA}, {"meridian.", dns.TypeNS}, {"example.com.", dns.TypeA},
	} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		req := new(dns.Msg)
		if req.Unpack(raw) != nil {
			return
		}
		m := d.answer(req)
		if m.Id != req.Id || !m.Response {
			t.Fatalf("reply id %d response %v, want id %d and a response", m.Id, m.Response, req.Id)
		}
		if len(m.Answer) > 2*maxDNSRecords || len(m.Extra) > 2*maxDNSRecords {
			t.Fatalf("%d answers, %d additional: over the bound", len(m.Answer), len(m.Extra))
		}
		m.Truncate(dns.MinMsgSize)
		b, err := m.Pack()
		if err != nil {
			t.Fatalf("packing the reply to %v: %v", req.Question, err)
		}
		if len(b) > dns.MinMsgSize {
			t.Fatalf("truncated reply is %d bytes, over 512", len(b))
		}
	})
}

// BenchmarkDNSAnswer: answering web.service.meridian A and SRV in process
// (routing decision from the route cache, records, truncation).
func BenchmarkDNSAnswer(b *testing.B) {
	d := dnsFuzzServer(b)
	for _, qt := range []uint16{dns.TypeA, dns.TypeSRV} {
		b.Run(dns.TypeToString[qt], func(b *testing.B) {
			req := new(dns.Msg)
			req.SetQuestion("web.service.meridian.", qt)
			b.ReportAllocs()
			for b.Loop() {
				m := d.answer(req)
				m.Truncate(dns.MinMsgSize)
				if len(m.Answer) == 0 {
					b.Fatal("no answer")
				}
			}
		})
	}
}
