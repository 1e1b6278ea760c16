// okserver answers every request at once with 200 "ok" and chaosrec's routing headers:
// the "server that answers at once" of bench/bench_load.py. Go's net/http on one core
// serves several times what one load generator sends, so the generator is measured,
// not the server. Usage: okserver -addr 127.0.0.1:PORT
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()
	body := []byte("ok")
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		h := w.Header()
		h["X-Chaosrec-Region"] = []string{"r1"}
		h["X-Chaosrec-Replica"] = []string{"r1.0"}
		h["X-Chaosrec-Degraded"] = []string{"0"}
		h["Content-Type"] = []string{"text/plain"}
		_, _ = w.Write(body)
	})
	log.Fatal(http.ListenAndServe(*addr, handler))
}
