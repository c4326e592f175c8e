package gateway

import (
	"errors"
	"strings"
	"syscall"
)

// bindHint names the flag to change when a listener cannot bind its
// address ("" for other errors): another gateway, or meridian dev (HTTP
// 8701-8703, Serf 7801-7803), may hold the port.
func bindHint(err error, flag string) string {
	if errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use") {
		return " (the port is taken, perhaps by another gateway or meridian dev: choose another with " + flag + ")"
	}
	if errors.Is(err, syscall.EADDRNOTAVAIL) || strings.Contains(err.Error(), "cannot assign requested address") {
		return " (no interface of this host has that address: change " + flag + ")"
	}
	return ""
}
