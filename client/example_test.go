package client_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	"github.com/meridian-sd/meridian/client"
	"github.com/meridian-sd/meridian/gateway"
)

// A service registers itself with its region's gateway, another finds it
// and calls it through the client's load balancer.
func Example() {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()

	// A region gateway with an embedded store, and a backend to register.
	gw, err := gateway.StartAgent(gateway.AgentConfig{Region: "us-east", HTTPAddr: "127.0.0.1:0", Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer gw.Shutdown(ctx)
	for !gw.Cache.Freshness().Loaded { // the gateway loads its store in the background
		time.Sleep(10 * time.Millisecond)
	}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from web-1, path %s", r.URL.Path)
	}))
	defer backend.Close()
	host, portStr, _ := net.SplitHostPort(backend.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)

	c, err := client.New(client.Config{
		Gateways: []string{gw.Addr()}, Zone: "a", Logger: quiet,
		Rand: rand.New(rand.NewPCG(1, 2)),
	})
	if err != nil {
		log.Fatal(err)
	}

	// Self-registration: a TTL check kept passing by heartbeats.
	reg, err := c.Register(ctx, client.Registration{
		Service: "web", ID: "web-1", Address: host, Port: port, Zone: "a", TTL: 10 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("registered", reg.Service+"/"+reg.ID, reg.Instance().Status)

	// Discovery: the gateway's routing answer, then kept current.
	res, err := c.Lookup(ctx, "web")
	if err != nil {
		log.Fatal(err)
	}
	for _, ep := range res.Endpoints {
		fmt.Println("endpoint", ep.Ref(), "zone", ep.Zone, "priority", ep.Priority, "failover", res.Failover)
	}

	// A call through the picker, the endpoint's breaker and retries.
	req, _ := http.NewRequest(http.MethodGet, "/hello", nil)
	resp, err := c.Do(ctx, "web", req)
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body))

	// Close deregisters.
	if err := c.Close(); err != nil {
		log.Fatal(err)
	}
	resp, err = http.Get(gw.URL() + "/v1/services/web/instances/web-1")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("after Close:", resp.StatusCode)

	// Output:
	// registered web/web-1 passing
	// endpoint us-east/web/web-1 zone a priority 0 failover false
	// 200 hello from web-1, path /hello
	// after Close: 404
}
