package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The client reads what net/http's server writes: a body with
// Content-Length, a chunked body, no body, and a closed connection; and it
// sends a request body the server reads whole.
func TestConnReadsResponses(t *testing.T) {
	big := strings.Repeat("x", 100_000) // past net/http's buffer: chunked
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/small":
			w.Write([]byte("hello"))
		case "/big":
			w.Write([]byte(big))
		case "/none":
			w.WriteHeader(http.StatusNoContent)
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.RawQuery, b)
		case "/close":
			w.Header().Set("Connection", "close")
			w.Write([]byte("bye"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	var k conn
	defer k.close()
	tests := []struct {
		method, path string
		body         string
		status       int
		want         string
	}{
		{"GET", "/small", "", 200, "hello"},
		{"GET", "/big", "", 200, big},
		{"GET", "/none", "", 204, ""},
		{"POST", "/echo?a=b%7Cc", `{"resourceType":"Patient"}`, 201, `POST a=b%7Cc {"resourceType":"Patient"}`},
		{"GET", "/missing", "", 404, "404 page not found\n"},
		{"GET", "/close", "", 200, "bye"},
		{"GET", "/small", "", 200, "hello"}, // after the server closed: a new connection
	}
	for _, tc := range tests {
		var body []byte
		if tc.body != "" {
			body = []byte(tc.body)
		}
		status, got, err := k.do(tc.method, srv.URL+tc.path, body)
		if err != nil || status != tc.status || string(got) != tc.want {
			t.Errorf("%s %s: %d %.40q %v; want %d %.40q", tc.method, tc.path, status, got, err, tc.status, tc.want)
		}
	}
}

// A response the client cannot read is an error, not a status.
func TestConnRefusesMalformedResponses(t *testing.T) {
	for _, raw := range []string{
		"garbage\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			c.Read(buf)
			c.Write([]byte(raw))
			c.Close()
		}()
		var k conn
		if status, _, err := k.do("GET", "http://"+ln.Addr().String()+"/", nil); err == nil {
			t.Errorf("%q: status %d and no error", raw, status)
		}
		k.close()
		ln.Close()
	}
}

func TestSplitURL(t *testing.T) {
	for _, tc := range []struct{ in, host, uri string }{
		{"http://127.0.0.1:8080/fhir/Patient/x", "127.0.0.1:8080", "/fhir/Patient/x"},
		{"http://h:1/fhir/Observation?patient=Patient/bp1&code=http://loinc.org|8302-2", "h:1", "/fhir/Observation?patient=Patient/bp1&code=http://loinc.org|8302-2"},
		{"http://h:1", "h:1", "/"},
		{"http://h:1?a=b", "h:1", "/?a=b"},
		{"https://h:1/", "", ""},
		{"http:///x", "", ""},
	} {
		host, uri, err := splitURL(tc.in)
		if tc.host == "" {
			if err == nil {
				t.Errorf("splitURL(%q) = %q, %q; want an error", tc.in, host, uri)
			}
			continue
		}
		if err != nil || host != tc.host || uri != tc.uri {
			t.Errorf("splitURL(%q) = %q, %q, %v; want %q, %q", tc.in, host, uri, err, tc.host, tc.uri)
		}
	}
}

func TestAtoi(t *testing.T) {
	for in, want := range map[string]int{"0": 0, "166": 166, "1234567": 1234567, "": -1, "-1": -1, "1a": -1, " 1": -1, "9999999999999999999": -1} {
		if got := atoi([]byte(in)); got != want {
			t.Errorf("atoi(%q) = %d; want %d", in, got, want)
		}
	}
}
