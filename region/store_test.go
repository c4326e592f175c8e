package region

import (
	"time"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func testInstance(svc, id string, port int) Instance {
	return Instance{
		ID: id, Service: svc, Address: "10.0.0.5", Port: port, Weight: 100,
		Status: StatusPassing, RegisteredAt: t0, UpdatedAt: t0,
		Tags: []string{"v2"}, Meta: map[string]string{"k": "v"},
	}
}
