package proms

import "testing"

func TestCrosswalk3L(t *testing.T) {
	// Published crosswalk values for the UK (EuroQol crosswalk calculator,
	// as the eq5d R package's tests quote them).
	tests := []struct {
		state [5]int
		want  float64
	}{
		{[5]int{1, 1, 1, 1, 1}, 1},
		{[5]int{1, 1, 2, 2, 1}, 0.795},
		{[5]int{4, 4, 4, 4, 1}, 0.226},
		{[5]int{4, 4, 5, 2, 5}, 0.004},
		{[5]int{5, 5, 5, 5, 5}, -0.594},
	}
	for _, tc := range tests {
		got, err := Crosswalk3L(tc.state)
		if err != nil || got != tc.want {
			t.Errorf("%v: %v, %v; want %v", tc.state, got, err, tc.want)
		}
	}
	for _, bad := range [][5]int{{0, 1, 1, 1, 1}, {1, 1, 1, 1, 6}, {9, 1, 1, 1, 1}} {
		if _, err := Crosswalk3L(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// TestCrosswalkIsMonotone checks the whole table: a worse level on any
// dimension never raises the index, and every value lies within the UK
// 3L tariff's range (-0.594 to 1).
func TestCrosswalkIsMonotone(t *testing.T) {
	var s [5]int
	for i := range 3125 {
		n := i
		for d := 4; d >= 0; d-- {
			s[d] = n%5 + 1
			n /= 5
		}
		v, _ := Crosswalk3L(s)
		if v < -0.594 || v > 1 {
			t.Errorf("%v: %v outside -0.594..1", s, v)
		}
		for d := range s {
			if s[d] == 5 {
				continue
			}
			worse := s
			worse[d]++
			if w, _ := Crosswalk3L(worse); w > v {
				t.Errorf("%v = %v but the worse %v = %v", s, v, worse, w)
			}
		}
	}
}

func TestMustCrosswalkRefusesBrokenTables(t *testing.T) {
	for name, data := range map[string]string{
		"no header":     "11111,1\n",
		"short":         "state,UK\n11111,1\n",
		"bad level":     "state,UK\n11161,1\n",
		"not a number":  "state,UK\n11111,one\n",
		"state twice":   "state,UK\n11111,1\n11111,1\n",
		"short state":   "state,UK\n1111,1\n",
		"missing value": "state,UK\n11111\n",
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("accepted")
				}
			}()
			mustCrosswalk(data)
		})
	}
}
