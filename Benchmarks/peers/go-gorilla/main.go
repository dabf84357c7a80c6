// Echo server on Go gorilla/websocket (Debian's golang-github-gorilla-websocket-dev), as its echo
// example does it: net/http with an Upgrader, one goroutine per connection reading a message and
// writing it back. Usage: gorilla-echo <port> [--deflate] (permessage-deflate, no context takeover as
// gorilla supports it).
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"

	"github.com/gorilla/websocket"
)

func main() {
	port, deflate := -1, false
	for _, arg := range os.Args[1:] {
		if arg == "--deflate" {
			deflate = true
		} else if n, err := strconv.Atoi(arg); err == nil {
			port = n
		}
	}
	if port < 0 {
		fmt.Fprintln(os.Stderr, "usage: gorilla-echo <port> [--deflate]")
		os.Exit(2)
	}
	upgrader := websocket.Upgrader{
		ReadBufferSize:    4096,
		WriteBufferSize:   4096,
		EnableCompression: deflate,
		CheckOrigin:       func(*http.Request) bool { return true },
	}
	handler := func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetReadLimit(1 << 24)
		for {
			kind, message, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if err := conn.WriteMessage(kind, message); err != nil {
				return
			}
		}
	}
	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("PORT %d\n", listener.Addr().(*net.TCPAddr).Port)
	if err := http.Serve(listener, http.HandlerFunc(handler)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
