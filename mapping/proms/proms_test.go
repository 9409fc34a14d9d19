package proms

import (
	"strings"
	"testing"
)

func items(vals ...int) [][]int {
	out := make([][]int, len(vals))
	for i, v := range vals {
		if v >= 0 {
			out[i] = []int{v}
		}
	}
	return out
}

// Hand-checked totals, each with its arithmetic.
func TestScoreOxford(t *testing.T) {
	tests := []struct {
		name    string
		answers [][]int
		want    float64
		valid   bool
		imputed int
		reason  string
	}{
		{"best", items(4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4), 48, true, 0, ""},
		{"worst", items(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), 0, true, 0, ""},
		{"mixed: 4+3+2+1+0+4+3+2+1+0+4+3 = 27", items(4, 3, 2, 1, 0, 4, 3, 2, 1, 0, 4, 3), 27, true, 0, ""},
		// 11 answered, all 3: 33 + 1 x 3 = 36.
		{"one missing", items(3, 3, 3, -1, 3, 3, 3, 3, 3, 3, 3, 3), 36, true, 1, "mean"},
		// 10 answered, nine 4s and a 0: 36, mean 3.6; 36 + 2 x 3.6 = 43.2 -> 43.
		{"two missing, rounded", items(4, 4, 4, 4, 4, 4, 4, 4, 4, 0, -1, -1), 43, true, 2, "mean"},
		// 10 answered summing 25, mean 2.5; 25 + 2 x 2.5 = 30 exactly.
		{"two missing, exact", items(2, 3, 2, 3, 2, 3, 2, 3, 2, 3, -1, -1), 30, true, 2, "mean"},
		{"three missing: no score", items(4, 4, 4, 4, 4, 4, 4, 4, 4, -1, -1, -1), 0, false, 0, "3 of 12 items unanswered"},
		{"nothing answered", items(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1), 0, false, 0, "12 of 12"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ScoreOxford(tc.answers)
			if err != nil {
				t.Fatal(err)
			}
			if got.Valid != tc.valid || got.Value != tc.want || got.Imputed != tc.imputed || !strings.Contains(got.Reason, tc.reason) {
				t.Errorf("got %+v; want %v valid=%v imputed=%d reason~%q", got, tc.want, tc.valid, tc.imputed, tc.reason)
			}
		})
	}
	// Two boxes ticked on one item: the worse (lower) counts: 11 x 4 + 1 = 45.
	a := items(4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4)
	a[5] = []int{3, 1}
	if got, _ := ScoreOxford(a); got.Value != 45 {
		t.Errorf("double tick: %+v; want 45", got)
	}
	for _, bad := range [][][]int{items(4, 4), append(items(4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4), []int{5})} {
		if _, err := ScoreOxford(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func dims(levels ...int) [5][]int {
	var d [5][]int
	for i, l := range levels {
		if l > 0 {
			d[i] = []int{l}
		}
	}
	return d
}

// Index values computed by hand from the published coefficients.
func TestScoreEQ5D(t *testing.T) {
	vas := 70
	tests := []struct {
		name    string
		version EQ5D
		dims    [5][]int
		profile string
		index   float64
		valid   bool
	}{
		{"3L full health", EQ5D3L, dims(1, 1, 1, 1, 1), "11111", 1, true},
		// 1 - 0.081 - 0.069 - 0.036 - 0.386 - 0.071 - 0.269 (N3) = 0.088
		{"3L 21232", EQ5D3L, dims(2, 1, 2, 3, 2), "21232", 0.088, true},
		// 1 - 0.081 - 0.104 = 0.815
		{"3L 12111", EQ5D3L, dims(1, 2, 1, 1, 1), "12111", 0.815, true},
		// 1 - 0.081 - (0.314+0.214+0.094+0.386+0.236) - 0.269 = -0.594
		{"3L worst", EQ5D3L, dims(3, 3, 3, 3, 3), "33333", -0.594, true},
		{"5L full health", EQ5D5L, dims(1, 1, 1, 1, 1), "11111", 1, true},
		// 1 - 0.050 (SC2) - 0.063 (UA3) - 0.276 (PD4) - 0.289 (AD5) = 0.322
		{"5L 12345", EQ5D5L, dims(1, 2, 3, 4, 5), "12345", 0.322, true},
		// 1 - 0.274 - 0.203 - 0.184 - 0.335 - 0.289 = -0.285
		{"5L worst", EQ5D5L, dims(5, 5, 5, 5, 5), "55555", -0.285, true},
		{"5L unanswered dimension", EQ5D5L, dims(1, 2, 0, 4, 5), "12945", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ScoreEQ5D(tc.version, tc.dims, &vas)
			if err != nil {
				t.Fatal(err)
			}
			if got.Profile != tc.profile || got.Index.Valid != tc.valid || got.Index.Value != tc.index {
				t.Errorf("got %+v; want %s %v valid=%v", got, tc.profile, tc.index, tc.valid)
			}
			// 5L states also carry the crosswalk's 3L index, 3L ones none.
			wantMapped := tc.version == EQ5D5L && tc.valid
			if got.Mapped3L.Valid != wantMapped {
				t.Errorf("mapped 3L %+v; want valid=%v", got.Mapped3L, wantMapped)
			}
			if wantMapped {
				if m, _ := Crosswalk3L(levelsOf(tc.profile)); got.Mapped3L.Value != m {
					t.Errorf("mapped 3L %v; the crosswalk has %v", got.Mapped3L.Value, m)
				}
			}
			if tc.version == EQ5D5L && !tc.valid && got.Mapped3L.Reason == "" {
				t.Error("no mapped 3L and no reason")
			}
			if !got.VAS.Valid || got.VAS.Value != 70 {
				t.Errorf("VAS %+v", got.VAS)
			}
		})
	}
	// Two different levels ticked on a dimension: missing (9), no index;
	// the same level ticked twice is that level.
	d := dims(1, 1, 1, 1, 1)
	d[3] = []int{2, 4}
	if got, _ := ScoreEQ5D(EQ5D5L, d, nil); got.Profile != "11191" || got.Index.Valid || got.VAS.Valid {
		t.Errorf("double tick: %+v", got)
	}
	d[3] = []int{4, 4}
	if got, _ := ScoreEQ5D(EQ5D5L, d, nil); got.Profile != "11141" || !got.Index.Valid {
		t.Errorf("same level twice: %+v", got)
	}
	bad := 101
	for _, tc := range []struct {
		v    EQ5D
		d    [5][]int
		vas  *int
		name string
	}{
		{EQ5D3L, dims(1, 1, 4, 1, 1), nil, "level 4 on 3L"},
		{EQ5D5L, dims(0, 1, 1, 1, 1), &bad, "VAS 101"},
		{4, dims(1, 1, 1, 1, 1), nil, "4 levels"},
	} {
		if _, err := ScoreEQ5D(tc.v, tc.d, tc.vas); err == nil {
			t.Errorf("%s accepted", tc.name)
		}
	}
}

func levelsOf(profile string) [5]int {
	var l [5]int
	for i, c := range profile {
		l[i] = int(c - '0')
	}
	return l
}

func TestChange(t *testing.T) {
	pre, post := Score{Value: 18, Valid: true}, Score{Value: 41, Valid: true}
	if c := Change(pre, post); !c.Valid || c.Value != 23 {
		t.Errorf("change %+v", c)
	}
	if c := Change(Score{}, post); c.Valid || c.Reason == "" {
		t.Errorf("change without a pre-op score: %+v", c)
	}
	// EQ-5D index change keeps three decimals: 0.796 - 0.088 = 0.708.
	if c := Change(Score{Value: 0.088, Valid: true}, Score{Value: 0.796, Valid: true}); c.Value != 0.708 {
		t.Errorf("index change %v", c.Value)
	}
}
