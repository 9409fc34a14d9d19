package proms

import (
	"fmt"
	"math"
	"strconv"
)

// EQ5D is a version of the EQ-5D descriptive system: five dimensions
// (mobility, self-care, usual activities, pain/discomfort,
// anxiety/depression) with 3 or 5 levels, 1 best.
type EQ5D int

// The EQ-5D versions.
const (
	EQ5D3L EQ5D = 3
	EQ5D5L EQ5D = 5
)

// decrements3L is the UK EQ-5D-3L time trade-off tariff: Dolan P. Modeling
// valuations for EuroQol health states. Med Care 1997;35(11):1095–108
// (the "N3" model). Per dimension, the decrement of levels 2 and 3.
var decrements3L = [5][2]float64{
	{0.069, 0.314}, // mobility
	{0.104, 0.214}, // self-care
	{0.036, 0.094}, // usual activities
	{0.123, 0.386}, // pain/discomfort
	{0.071, 0.236}, // anxiety/depression
}

// The 3L model's constant (any dimension above level 1) and N3 (any
// dimension at level 3), from Dolan 1997.
const (
	constant3L = 0.081
	n3         = 0.269
)

// decrements5L is the EQ-5D-5L value set for England: Devlin NJ, Shah KK,
// Feng Y, Mulhern B, van Hout B. Valuing health-related quality of life:
// an EQ-5D-5L value set for England. Health Econ 2018;27(1):7–22 (Table 4,
// the hybrid model). Per dimension, the decrement of levels 2 to 5; there
// is no constant.
var decrements5L = [5][4]float64{
	{0.058, 0.076, 0.207, 0.274}, // mobility
	{0.050, 0.080, 0.164, 0.203}, // self-care
	{0.050, 0.063, 0.162, 0.184}, // usual activities
	{0.063, 0.084, 0.276, 0.335}, // pain/discomfort
	{0.078, 0.104, 0.285, 0.289}, // anxiety/depression
}

// EQ5DResult is a scored EQ-5D questionnaire.
type EQ5DResult struct {
	// Profile is the five-digit health state ("11223"), with 9 for a
	// dimension left blank or ambiguous, as the EuroQol user guides code it.
	Profile string
	// Index is the utility from the value set (1 full health; below 0
	// states worse than dead), rounded to 3 decimals as the value sets are
	// published.
	Index Score
	// VAS is EQ-VAS, 0–100; Valid false when not marked.
	VAS Score
	// Mapped3L is, for EQ-5D-5L only, the UK EQ-5D-3L index of the state
	// through the van Hout crosswalk (Crosswalk3L), as NICE's position
	// statement recommends for comparing 5L data with 3L-based evidence.
	Mapped3L Score
}

// ScoreEQ5D scores an EQ-5D questionnaire: dims lists, per dimension in
// order, the levels ticked; vas is the EQ-VAS mark, nil when none. A
// dimension left blank or with two different levels ticked is missing
// (coded 9), as the EuroQol EQ-5D-3L and EQ-5D-5L user guides (EuroQol
// Research Foundation, 2018 and 2019) direct, and then there is no index.
// 3L uses the UK tariff (Dolan 1997), 5L the England value set (Devlin et
// al. 2018).
func ScoreEQ5D(version EQ5D, dims [5][]int, vas *int) (EQ5DResult, error) {
	if version != EQ5D3L && version != EQ5D5L {
		return EQ5DResult{}, fmt.Errorf("EQ-5D has 3 or 5 levels, not %d", version)
	}
	var r EQ5DResult
	var levels [5]int
	complete := true
	for d, ticked := range dims {
		for _, l := range ticked {
			if l < 1 || l > int(version) {
				return r, fmt.Errorf("dimension %d: level %d is not 1–%d", d+1, l, version)
			}
			if levels[d] != 0 && levels[d] != l {
				levels[d] = 9 // two different levels: ambiguous
				break
			}
			levels[d] = l
		}
		if levels[d] == 0 {
			levels[d] = 9
		}
		complete = complete && levels[d] != 9
		r.Profile += strconv.Itoa(levels[d])
	}
	if complete {
		index := indexFor(version, levels)
		r.Index = Score{Value: math.Round(index*1000) / 1000, Valid: true}
	} else {
		r.Index.Reason = "a dimension is missing or ambiguous (9); EQ-5D has no index without all five"
	}
	if version == EQ5D5L {
		if complete {
			mapped, err := Crosswalk3L(levels)
			if err != nil {
				return r, err
			}
			r.Mapped3L = Score{Value: mapped, Valid: true}
		} else {
			r.Mapped3L.Reason = "a dimension is missing or ambiguous (9); the crosswalk maps complete states only"
		}
	}
	if vas != nil {
		if *vas < 0 || *vas > 100 {
			return r, fmt.Errorf("EQ-VAS %d is not 0–100", *vas)
		}
		r.VAS = Score{Value: float64(*vas), Valid: true}
	} else {
		r.VAS.Reason = "EQ-VAS not marked"
	}
	return r, nil
}

func indexFor(version EQ5D, levels [5]int) float64 {
	index := 1.0
	if version == EQ5D5L {
		for d, l := range levels {
			if l > 1 {
				index -= decrements5L[d][l-2]
			}
		}
		return index
	}
	anyProblem, anySevere := false, false
	for d, l := range levels {
		if l > 1 {
			index -= decrements3L[d][l-2]
			anyProblem = true
		}
		anySevere = anySevere || l == 3
	}
	if anyProblem {
		index -= constant3L
	}
	if anySevere {
		index -= n3
	}
	return index
}

// Change is a post-operative score minus the pre-operative one, when both
// exist (positive: better, for Oxford scores and EQ-5D indices alike).
func Change(pre, post Score) Score {
	if !pre.Valid || !post.Valid {
		return Score{Reason: "no change score: the pre- or post-operative score is missing"}
	}
	return Score{Value: math.Round((post.Value-pre.Value)*1000) / 1000, Valid: true}
}
