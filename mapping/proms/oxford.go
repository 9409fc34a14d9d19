// Package proms scores the patient-reported outcome measures the platform
// collects: the Oxford Hip, Knee and Shoulder Scores and EQ-5D (3L and 5L,
// with EQ-VAS). Every rule cites its published source. Scoring is pure: it
// reads answers and returns scores, or says why there is none.
package proms

import (
	"fmt"
	"math"
)

// Oxford is an Oxford Hip, Knee or Shoulder Score questionnaire.
type Oxford string

// The three Oxford instruments. Each has 12 items scored 0 (worst) to 4
// (best), summed to 0–48, 48 best:
//
//   - Oxford Hip Score: Dawson J, Fitzpatrick R, Carr A, Murray D.
//     Questionnaire on the perceptions of patients about total hip
//     replacement. J Bone Joint Surg Br 1996;78-B:185–90; 0–48 scoring as
//     revised in Murray DW, Fitzpatrick R, Rogers K, et al. The use of the
//     Oxford hip and knee scores. J Bone Joint Surg Br 2007;89-B:1010–4.
//   - Oxford Knee Score: Dawson J, Fitzpatrick R, Murray D, Carr A.
//     Questionnaire on the perceptions of patients about total knee
//     replacement. J Bone Joint Surg Br 1998;80-B:63–9; scoring as Murray
//     et al. 2007.
//   - Oxford Shoulder Score: Dawson J, Fitzpatrick R, Carr A. Questionnaire
//     on the perceptions of patients about shoulder surgery. J Bone Joint
//     Surg Br 1996;78-B:593–600; 0–48 scoring as revised in Dawson J,
//     Rogers K, Fitzpatrick R, Carr A. The Oxford shoulder score revisited.
//     Arch Orthop Trauma Surg 2009;129:119–23.
const (
	OxfordHip      Oxford = "oxford-hip"
	OxfordKnee     Oxford = "oxford-knee"
	OxfordShoulder Oxford = "oxford-shoulder"
)

// OxfordItems is the number of items of every Oxford score.
const OxfordItems = 12

// MaxImputed is how many missing items an Oxford score may have: Murray et
// al. 2007 (p. 1012): "if one or two questions are left unanswered, the
// mean score of the remaining items can be substituted"; with more missing
// the questionnaire is not scored.
const MaxImputed = 2

// Score is a computed total, or the reason there is none.
type Score struct {
	// Value is the total; meaningful only when Valid.
	Value float64
	Valid bool
	// Imputed counts the missing items given the mean of the answered ones.
	Imputed int
	// Reason says why the score is absent or how it was computed, in words
	// a clinician can read (it becomes the Observation's note or
	// dataAbsentReason text).
	Reason string
}

// ScoreOxford totals an Oxford questionnaire. answers has one entry per
// item, in order; each entry lists the options the patient ticked (0–4):
// none when the item was left blank, several when more than one box was
// ticked, in which case the worst (lowest) answer counts: the published
// scorings do not settle it, and this is the product's rule (issue 5), the
// cautious reading for outcome reporting. Missing items follow MaxImputed;
// an imputed total is rounded to the nearest whole point.
func ScoreOxford(answers [][]int) (Score, error) {
	if len(answers) != OxfordItems {
		return Score{}, fmt.Errorf("an Oxford score has %d items, not %d", OxfordItems, len(answers))
	}
	sum, answered := 0, 0
	for i, ticked := range answers {
		if len(ticked) == 0 {
			continue
		}
		worst := 4
		for _, v := range ticked {
			if v < 0 || v > 4 {
				return Score{}, fmt.Errorf("item %d: answer %d is not 0–4", i+1, v)
			}
			worst = min(worst, v)
		}
		sum += worst
		answered++
	}
	missing := OxfordItems - answered
	switch {
	case missing == 0:
		return Score{Value: float64(sum), Valid: true}, nil
	case missing > MaxImputed:
		return Score{Reason: fmt.Sprintf("%d of %d items unanswered; at most %d may be imputed (Murray et al. 2007)", missing, OxfordItems, MaxImputed)}, nil
	}
	mean := float64(sum) / float64(answered)
	total := math.Round(float64(sum) + float64(missing)*mean)
	return Score{Value: total, Valid: true, Imputed: missing,
		Reason: fmt.Sprintf("%d unanswered item(s) given the mean of the other %d (%.2f), as Murray et al. 2007 allow", missing, answered, mean)}, nil
}
