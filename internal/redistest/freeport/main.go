// Command freeport prints a TCP port on 127.0.0.1 that was free a moment
// ago, for scripts that start servers (scripts/test.sh). Someone else may
// take the port before the caller binds it; callers should check that their
// server came up.
//
//	go run ./internal/redistest/freeport
package main

import (
	"fmt"
	"net"
	"os"
)

func main() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(os.Stderr, "freeport: listen on 127.0.0.1:0: %v\n", err)
		os.Exit(1)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	fmt.Println(port)
}
