package proms

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"
)

// crosswalkUK is the EQ-5D-5L to EQ-5D-3L crosswalk for the UK: for each
// of the 3,125 5L health states, the UK 3L index (Dolan 1997 tariff) that
// the crosswalk assigns. Source: van Hout B, Janssen MF, Feng YS, et al.
// Interim scoring for the EQ-5D-5L: mapping the EQ-5D-5L to EQ-5D-3L value
// sets. Value Health 2012;15(5):708–715, doi:10.1016/j.jval.2012.02.008,
// as tabulated in the EuroQol "EQ-5D-5L Crosswalk Index Value Calculator".
// NICE's position statement on the EQ-5D-5L (2019) recommends this
// crosswalk for 5L data. The file is the state and UK columns of
// data-raw/CW.csv of the R package eq5d (github.com/fragla/eq5d, commit
// 42867cb8fce82b1cde76759ea9b61ab71f1fbfbf), values unchanged.
//
//go:embed data/eq5d5l-crosswalk-uk.csv
var crosswalkUKCSV string

// crosswalkUK holds the table by state index (see stateIndex).
var crosswalkUK = mustCrosswalk(crosswalkUKCSV)

// stateIndex numbers a 5L state 0–3124 (levels 1–5 as base-5 digits).
func stateIndex(levels [5]int) int {
	n := 0
	for _, l := range levels {
		n = n*5 + l - 1
	}
	return n
}

// mustCrosswalk parses the embedded table and checks that it holds every
// state once; a broken table is a build defect, so it panics at start.
func mustCrosswalk(data string) [3125]float64 {
	var table [3125]float64
	seen := 0
	lines := strings.Split(strings.TrimSpace(data), "\n")
	if len(lines) == 0 || strings.TrimSpace(lines[0]) != "state,UK" {
		panic("crosswalk: header is not state,UK")
	}
	var done [3125]bool
	for i, line := range lines[1:] {
		state, value, ok := strings.Cut(strings.TrimSpace(line), ",")
		v, err := strconv.ParseFloat(value, 64)
		if !ok || err != nil || len(state) != 5 {
			panic(fmt.Sprintf("crosswalk: line %d: %q", i+2, line))
		}
		var levels [5]int
		for d, c := range state {
			if c < '1' || c > '5' {
				panic(fmt.Sprintf("crosswalk: line %d: state %q", i+2, state))
			}
			levels[d] = int(c - '0')
		}
		at := stateIndex(levels)
		if done[at] {
			panic(fmt.Sprintf("crosswalk: state %s twice", state))
		}
		table[at], done[at] = v, true
		seen++
	}
	if seen != len(table) {
		panic(fmt.Sprintf("crosswalk: %d states; want %d", seen, len(table)))
	}
	return table
}

// Crosswalk3L is the UK EQ-5D-3L index the van Hout crosswalk gives a
// complete 5L state (levels 1–5 per dimension).
func Crosswalk3L(levels [5]int) (float64, error) {
	for d, l := range levels {
		if l < 1 || l > 5 {
			return 0, fmt.Errorf("dimension %d: level %d is not 1–5", d+1, l)
		}
	}
	return crosswalkUK[stateIndex(levels)], nil
}
