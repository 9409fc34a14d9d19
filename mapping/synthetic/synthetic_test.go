package synthetic

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/promsgateway/gateway/mapping"
	"github.com/promsgateway/gateway/mapping/proms"
	"github.com/promsgateway/gateway/mapping/ukcore"
)

// Valid records pass the gateway's checks and map; invalid ones are each
// refused; scores look like real PROMs data; a seed repeats its records.
func TestGenerate(t *testing.T) {
	g := New(Options{Seed: 7, Invalid: 0.1})
	var pre, post []float64
	invalid := 0
	joints := map[string]int{}
	for i := 0; i < 1000; i++ {
		r := g.Next()
		err := mapping.Check(r, g.opt.Now)
		if err != nil {
			invalid++
			continue
		}
		joints[r.Episodes[0].Joint]++
		if i%50 == 0 {
			if _, err := ukcore.Map(r); err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
		}
		for _, resp := range r.Episodes[0].Responses {
			in, _ := proms.Lookup(resp.Instrument, resp.Version)
			res, err := proms.ScoreResponse(in, resp.Answers)
			if err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
			if res.Oxford != nil && res.Oxford.Valid {
				if resp.Timepoint == "pre-op" {
					pre = append(pre, res.Oxford.Value)
				} else {
					post = append(post, res.Oxford.Value)
				}
			}
		}
	}
	t.Logf("%d invalid; joints %v; mean Oxford score pre-op %.1f, post-op %.1f", invalid, joints, mean(pre), mean(post))
	if invalid < 60 || invalid > 140 {
		t.Errorf("%d of 1000 records invalid; asked for 10%%", invalid)
	}
	if joints["hip"] < 300 || joints["knee"] < 300 || joints["shoulder"] == 0 {
		t.Errorf("joints %v", joints)
	}
	mp, mq := mean(pre), mean(post)
	if mp < 14 || mp > 23 || mq-mp < 10 {
		t.Errorf("mean Oxford score %.1f before and %.1f after surgery; want high teens improving by well over 10", mp, mq)
	}
	a, _ := json.Marshal(New(Options{Seed: 3}).Next())
	b, _ := json.Marshal(New(Options{Seed: 3}).Next())
	if string(a) != string(b) {
		t.Error("the same seed made different records")
	}
}

// Every kind of mistake is refused by the checks, at the field it spoils.
func TestMistakesAreRefused(t *testing.T) {
	field := map[string]string{
		"nhs-check-digit": "patient.nhsNumber",
		"impossible-date": "episodes[0].procedures[0].date",
		"unknown-answer":  "episodes[0].responses[0].answers",
		"unknown-version": "episodes[0].responses[0].instrument",
		"wrong-side":      "episodes[0].procedures[0].side",
	}
	if len(field) != len(Mistakes) {
		t.Fatalf("the test knows %d mistakes; the generator makes %d", len(field), len(Mistakes))
	}
	g := New(Options{Seed: 11, Invalid: 1})
	for i := 0; i < 2*len(Mistakes); i++ {
		r := g.Next()
		kind := Mistakes[g.n%len(Mistakes)]
		var ps mapping.Problems
		if err := mapping.Check(r, g.opt.Now); !errors.As(err, &ps) {
			t.Fatalf("a record with mistake %s passed the checks", kind)
		}
		hit := false
		for _, p := range ps {
			hit = hit || p.Field == field[kind]
		}
		if !hit {
			t.Errorf("mistake %s: problems %v do not name %s", kind, ps, field[kind])
		}
	}
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}
