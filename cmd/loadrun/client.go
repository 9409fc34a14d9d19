package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// conn is one load worker's HTTP/1.1 keep-alive connection: it writes each
// request whole and reads the response (Content-Length or chunked) into a
// reused buffer. It does what wrk does and no more, so that the load
// generator, which shares the machine's cores with the server it
// measures, takes as little of them as it can: Go's net/http client spends
// three to five times the CPU per request (header maps, a goroutine per
// connection, per-request allocations).
type conn struct {
	host string
	c    net.Conn
	r    *bufio.Reader
	req  []byte
	body []byte
	// deadline is when the connection's deadline was last moved on.
	deadline time.Time
}

// deadlineSlack is how long a connection's 30-second deadline goes before
// it is moved on: once a second, not once a request (resetting a timer on
// every request was CPU taken from the server under test).
const deadlineSlack = time.Second

// errProtocol is a response this client cannot read.
var errProtocol = errors.New("loadrun: malformed HTTP response")

// do sends one request to rawURL (http only) and returns the status and
// body; the body is valid until the next call.
func (k *conn) do(method, rawURL string, body []byte) (int, []byte, error) {
	host, uri, err := splitURL(rawURL)
	if err != nil {
		return 0, nil, err
	}
	if k.c == nil || k.host != host {
		k.close()
		c, err := net.DialTimeout("tcp", host, 5*time.Second)
		if err != nil {
			return 0, nil, err
		}
		k.c, k.host, k.r = c, host, bufio.NewReaderSize(c, 64<<10)
		k.deadline = time.Time{}
	}
	k.req = append(k.req[:0], method...)
	k.req = append(k.req, ' ')
	k.req = append(k.req, uri...)
	k.req = append(k.req, " HTTP/1.1\r\nHost: "...)
	k.req = append(k.req, host...)
	k.req = append(k.req, "\r\nAccept: application/fhir+json\r\n"...)
	if body != nil {
		k.req = append(k.req, "Content-Type: application/fhir+json\r\nContent-Length: "...)
		k.req = strconv.AppendInt(k.req, int64(len(body)), 10)
		k.req = append(k.req, "\r\n"...)
	}
	k.req = append(k.req, "\r\n"...)
	k.req = append(k.req, body...)
	if now := time.Now(); now.Sub(k.deadline) > deadlineSlack {
		k.c.SetDeadline(now.Add(30 * time.Second))
		k.deadline = now
	}
	if _, err := k.c.Write(k.req); err != nil {
		k.close()
		return 0, nil, err
	}
	status, keep, err := k.read()
	if err != nil || !keep {
		k.close()
	}
	return status, k.body, err
}

// read reads one response into k.body; keep says the connection stays open.
func (k *conn) read() (status int, keep bool, err error) {
	line, err := k.line()
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, errProtocol
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, errProtocol
	}
	length, chunked, keep := -1, false, line[7] == '1'
	for {
		h, err := k.line()
		if err != nil {
			return 0, false, err
		}
		if len(h) == 0 {
			break
		}
		// Compared as bytes: no string or lower-cased copy a header.
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, false, errProtocol
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("content-length")):
			if length = atoi(value); length < 0 {
				return 0, false, errProtocol
			}
		case bytes.EqualFold(name, []byte("transfer-encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("connection")):
			keep = !bytes.EqualFold(value, []byte("close"))
		}
	}
	k.body = k.body[:0]
	switch {
	case chunked:
		for {
			size, err := k.line()
			if err != nil {
				return 0, false, err
			}
			size, _, _ = bytes.Cut(size, []byte(";"))
			n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 32)
			if err != nil || n < 0 {
				return 0, false, errProtocol
			}
			if n == 0 {
				for { // trailers, up to the blank line
					t, err := k.line()
					if err != nil {
						return 0, false, err
					}
					if len(t) == 0 {
						return status, keep, nil
					}
				}
			}
			if err := k.readN(int(n)); err != nil {
				return 0, false, err
			}
			if crlf, err := k.line(); err != nil || len(crlf) != 0 {
				return 0, false, errProtocol
			}
		}
	case length >= 0:
		return status, keep, k.readN(length)
	case status == 204 || status == 304:
		return status, keep, nil
	default: // the body runs to the end of the connection
		b, err := io.ReadAll(k.r)
		k.body = append(k.body, b...)
		return status, false, err
	}
}

// splitURL splits an http URL into its host and request URI.
func splitURL(rawURL string) (host, uri string, err error) {
	rest, ok := strings.CutPrefix(rawURL, "http://")
	if !ok {
		return "", "", fmt.Errorf("loadrun: %q is not an http URL", rawURL)
	}
	i := strings.IndexAny(rest, "/?")
	if i < 0 {
		return rest, "/", nil
	}
	host, uri = rest[:i], rest[i:]
	if uri[0] == '?' {
		uri = "/" + uri
	}
	if host == "" {
		return "", "", fmt.Errorf("loadrun: %q has no host", rawURL)
	}
	return host, uri, nil
}

// atoi parses a non-negative decimal (a Content-Length), or returns -1.
func atoi(b []byte) int {
	if len(b) == 0 || len(b) > 18 {
		return -1
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// readN appends the next n bytes to k.body.
func (k *conn) readN(n int) error {
	start := len(k.body)
	k.body = slices.Grow(k.body, n)[:start+n]
	_, err := io.ReadFull(k.r, k.body[start:])
	return err
}

// line reads a line without its CRLF; it is valid until the next read.
func (k *conn) line() ([]byte, error) {
	l, err := k.r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(bytes.TrimSuffix(l, []byte("\n")), []byte("\r")), nil
}

func (k *conn) close() {
	if k.c != nil {
		k.c.Close()
	}
	k.c, k.r = nil, nil
}
