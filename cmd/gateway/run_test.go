package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// A request in flight when shutdown starts still completes.
func TestServeShutsDownGracefully(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var logs bytes.Buffer
	go func() {
		done <- serve(ctx, env(map[string]string{
			"GATEWAY_ADDR":     "127.0.0.1:0",
			"GATEWAY_DB":       filepath.Join(dir, "gw.db"),
			"GATEWAY_KEYSTORE": filepath.Join(dir, "keys.json"),
		}), &logs, ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start")
	}

	body, w := io.Pipe()
	respc := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest("POST", "http://"+addr+"/fhir/Patient", body)
		req.Header.Set("Content-Type", "application/fhir+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			respc <- nil
			return
		}
		respc <- resp
	}()
	w.Write([]byte(`{"resourceType":"Patient",`))
	time.Sleep(100 * time.Millisecond) // the request is now in flight
	cancel()
	time.Sleep(100 * time.Millisecond)
	w.Write([]byte(`"active":true}`))
	w.Close()
	resp := <-respc
	if resp == nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("in-flight request: %+v", resp)
	}
	if err := <-done; err != nil {
		t.Fatalf("serve returned %v", err)
	}
	for _, want := range []string{"DEVELOPMENT KEYSTORE", "gateway listening", "shutting down", "stopped"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q", want)
		}
	}
}

func TestProductionRefusesDevelopmentKeystore(t *testing.T) {
	err := serve(context.Background(), env(map[string]string{"GATEWAY_ENV": "production", "GATEWAY_DB": filepath.Join(t.TempDir(), "x.db")}), io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "production") {
		t.Fatalf("err = %v; want a refusal", err)
	}
}

func TestSettings(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		ok   bool
	}{
		{"defaults", nil, true},
		{"limits", map[string]string{"GATEWAY_MAX_BODY_BYTES": "1024", "GATEWAY_MAX_DEPTH": "10"}, true},
		{"bad limit", map[string]string{"GATEWAY_MAX_BODY_BYTES": "lots"}, false},
		{"negative", map[string]string{"GATEWAY_MAX_DEPTH": "-1"}, false},
		{"bad bool", map[string]string{"GATEWAY_UPDATE_CREATE": "perhaps"}, false},
		{"bad log level", map[string]string{"GATEWAY_LOG_LEVEL": "loud"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := readSettings(env(tc.vars))
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v; want ok=%v", err, tc.ok)
			}
			if tc.ok && tc.vars == nil && (s.addr != ":8080" || s.db != "data/gateway.db" || s.keystore != "data/dev-keystore.json") {
				t.Errorf("defaults: %+v", s)
			}
		})
	}
}

func TestRunCommands(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, env(nil), &out, io.Discard); err != nil || out.Len() == 0 {
		t.Errorf("version: %v %q", err, out.String())
	}
	if err := run(context.Background(), []string{"frobnicate"}, env(nil), io.Discard, io.Discard); err == nil {
		t.Error("unknown command accepted")
	}
}

func TestReindexCommand(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{"GATEWAY_DB": filepath.Join(dir, "gw.db"), "GATEWAY_KEYSTORE": filepath.Join(dir, "keys.json")}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"reindex"}, env(vars), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "reindex finished") {
		t.Errorf("output: %q", out.String())
	}
}

func TestParseMemoryLimit(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"536870912\n", 536870912, true},
		{"max\n", 0, false},
		{"9223372036854771712\n", 0, false}, // cgroup v1: no limit
		{"0", 0, false},
		{"", 0, false},
		{"-1", 0, false},
	}
	for _, tc := range tests {
		if got, ok := parseMemoryLimit(tc.in); got != tc.want || ok != tc.ok {
			t.Errorf("parseMemoryLimit(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
