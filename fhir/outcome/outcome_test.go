package outcome

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
)

func TestStatus(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{New(Invalid, "x"), 400},
		{New(Unprocessable, "x"), 422},
		{New(NotFound, "x"), 404},
		{New(Gone, "x"), 410},
		{New(Conflict, "x"), 409},
		{New(PreconditionFailed, "x"), 412},
		{New(MethodNotAllowed, "x"), 405},
		{New(NotAcceptable, "x"), 406},
		{New(UnsupportedMedia, "x"), 415},
		{New(TooLarge, "x"), 413},
		{New(Unavailable, "x"), 503},
		{fmt.Errorf("wrapped: %w", New(Gone, "x")), 410},
		{errors.New("plain"), 500},
	}
	for _, tc := range tests {
		if got := Status(tc.err); got != tc.want {
			t.Errorf("Status(%v) = %d; want %d", tc.err, got, tc.want)
		}
	}
}

// Internal causes never reach the client.
func TestResourceHidesCause(t *testing.T) {
	body := Resource(errors.New("pq: password authentication failed for user gateway"))
	var oo struct {
		ResourceType string
		Issue        []Issue
	}
	if err := json.Unmarshal(body, &oo); err != nil || oo.ResourceType != "OperationOutcome" {
		t.Fatalf("%s: %v", body, err)
	}
	if oo.Issue[0].Diagnostics != "internal error" || oo.Issue[0].Code != "exception" {
		t.Errorf("internal error leaked or mislabelled: %s", body)
	}
}
