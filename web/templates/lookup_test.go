package templates

import (
	"testing"
	"time"
)

func TestFormatDuration(t *testing.T) {
	const ms, s, min, h = time.Millisecond, time.Second, time.Minute, time.Hour
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{0, "0 ms"},
		{400 * time.Microsecond, "0 ms"},
		{1 * ms, "1 ms"},
		{850 * ms, "850 ms"},
		{999 * ms, "999 ms"},
		{999*ms + 600*time.Microsecond, "1 s"}, // rounds up into seconds
		{s, "1 s"},
		{1200 * ms, "1.2 s"},
		{1250 * ms, "1.3 s"},
		{9940 * ms, "9.9 s"},
		{9960 * ms, "10 s"},
		{12*s + 400*ms, "12 s"},
		{59*s + 600*ms, "1 min"}, // rounds up into minutes
		{61 * s, "1 min 1 s"},
		{3*min + 20*s, "3 min 20 s"},
		{9*min + 59*s + 600*ms, "10 min"},
		{42*min + 10*s, "42 min"},
		{59*min + 40*s, "1 h"},
		{2*h + 5*min, "2 h 5 min"},
		{23*h + 59*min + 40*s, "1 d"},
		{3*24*h + 4*h + 10*min, "3 d 4 h"},
		{-1200 * ms, "-1.2 s"},
	} {
		if got := FormatDuration(tc.in); got != tc.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
