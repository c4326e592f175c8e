package scenarios

import (
	"strings"
	"testing"
)

func TestParseOverloadAndDeregisterVia(t *testing.T) {
	head := base[:strings.Index(base, "expect:")]
	tail := base[strings.Index(base, "expect:"):]
	ok := head + "  - {at: 2m, kind: instances_overload, region: us-east, service: web, fraction: 1, for: 1m}\n" +
		"  - {at: 3m, kind: deregister, region: us-east, service: web, count: 2, gateway: us-east-2}\n" + tail
	sc, err := Parse("x.yaml", []byte(ok))
	if err != nil {
		t.Fatalf("valid scenario refused: %v", err)
	}
	if got := sc.Timeline[1].Kind; got != FaultInstancesOverload {
		t.Errorf("timeline[1].kind = %q, want %q", got, FaultInstancesOverload)
	}
	if got := sc.Timeline[2].Gateway; got != "us-east-2" {
		t.Errorf("timeline[2].gateway = %q, want us-east-2", got)
	}

	tests := []struct{ name, fault, want string }{
		{"overload needs count", "{at: 2m, kind: instances_overload, region: us-east, service: web}", `timeline[1].count: required`},
		{"overload service not in region", "{at: 2m, kind: instances_overload, region: us-east, service: api, count: 1}", `service api does not run in region us-east`},
		{"overload takes no latency", "{at: 2m, kind: instances_overload, region: us-east, service: web, count: 1, latency: 1s}", `timeline[1].latency: does not apply to kind instances_overload`},
		{"deregister via another region's gateway", "{at: 2m, kind: deregister, region: us-east, service: web, count: 1, gateway: eu-west-1}", `timeline[1].gateway: "eu-west-1": want a gateway of region us-east`},
		{"deregister via a gateway out of range", "{at: 2m, kind: deregister, region: us-east, service: web, count: 1, gateway: us-east-3}", `timeline[1].gateway: "us-east-3": region us-east has 2 gateway(s)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(head+"  - "+tt.fault+"\n"+tail))
			if err == nil {
				t.Fatalf("no error; want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n  got  %s\n  want %s", err, tt.want)
			}
		})
	}
}
