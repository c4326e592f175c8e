package gateway

import (
	"net"
	"strings"
	"testing"
)

// TestBindErrorNamesTheFlag: a taken HTTP or Serf port fails the start
// with an error naming the flag to change.
func TestBindErrorNamesTheFlag(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().String()
	_, err = StartAgent(AgentConfig{Region: "us-east", HTTPAddr: taken, Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), "choose another with --http") {
		t.Fatalf("HTTP port taken: %v", err)
	}
	_, err = StartAgent(AgentConfig{Region: "us-east", HTTPAddr: "127.0.0.1:0", SerfBind: taken, GossipProfile: "local", Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), "choose another with --serf-bind") {
		t.Fatalf("Serf port taken: %v", err)
	}
}
