package diskguard

import (
	"errors"
	"testing"
	"time"
)

func TestParseThreshold(t *testing.T) {
	cases := []struct {
		in      string
		want    Threshold
		wantErr bool
	}{
		{"512MiB", Threshold{Bytes: 512 << 20}, false},
		{"5%", Threshold{Percent: 5}, false},
		{"512MiB,5%", Threshold{Bytes: 512 << 20, Percent: 5}, false},
		{" 1 GB , 2.5 % ", Threshold{Bytes: 1e9, Percent: 2.5}, false},
		{"0", Threshold{}, false},
		{"1048576", Threshold{Bytes: 1 << 20}, false},
		{"100%", Threshold{}, true},
		{"-1MiB", Threshold{}, true},
		{"5%,6%", Threshold{}, true},
		{"1MiB,2MiB", Threshold{}, true},
		{"lots", Threshold{}, true},
		{"99999999999TiB", Threshold{}, true},
	}
	for _, c := range cases {
		got, err := ParseThreshold(c.in)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("ParseThreshold(%q) = %+v, %v; want %+v, error %v", c.in, got, err, c.want, c.wantErr)
		}
		if err == nil {
			if back, err := ParseThreshold(got.String()); err != nil || back != got {
				t.Errorf("%q: String %q does not read back: %+v %v", c.in, got.String(), back, err)
			}
		}
	}
}

func TestThresholdResolve(t *testing.T) {
	cases := []struct {
		th    Threshold
		total uint64
		want  uint64
	}{
		{DefaultSoft, 100 << 30, 512 << 20},    // 5 % of 100 GiB is more than 512 MiB
		{DefaultSoft, 1 << 30, (1 << 30) / 20}, // 5 % of 1 GiB is less
		{DefaultHard, 100 << 30, 64 << 20},     // 1 % of 100 GiB is more than 64 MiB
		{Threshold{Percent: 10}, 1000, 100},    // a share alone
		{Threshold{Percent: 10}, 0, 0},         // of an unknown size: off
		{Threshold{Bytes: 7}, 0, 7},            // an amount alone
		{Threshold{}, 1 << 40, 0},              // off
	}
	for _, c := range cases {
		if got := c.th.Resolve(c.total); got != c.want {
			t.Errorf("%+v.Resolve(%d) = %d, want %d", c.th, c.total, got, c.want)
		}
	}
}

// fakeDisk is an injectable filesystem reading and clock.
type fakeDisk struct {
	now   time.Time
	space Space
	err   error
	reads int
}

func (f *fakeDisk) guard(cfg Config) *Guard {
	cfg.Now = func() time.Time { return f.now }
	cfg.Space = func(string) (Space, error) { f.reads++; return f.space, f.err }
	return New(cfg)
}

func TestGuardLevels(t *testing.T) {
	const MiB = 1 << 20
	cases := []struct {
		name string
		cfg  Config
		free uint64
		want Level
	}{
		{"plenty of room", Config{Soft: Threshold{Bytes: 100 * MiB}, Hard: Threshold{Bytes: 10 * MiB}}, 500 * MiB, OK},
		{"below soft", Config{Soft: Threshold{Bytes: 100 * MiB}, Hard: Threshold{Bytes: 10 * MiB}}, 50 * MiB, Low},
		{"below hard", Config{Soft: Threshold{Bytes: 100 * MiB}, Hard: Threshold{Bytes: 10 * MiB}}, 5 * MiB, Critical},
		{"defaults on a small disk: 5 % of 1000 MiB", Config{}, 49 * MiB, Low},
		{"defaults on a small disk: 1 % of 1000 MiB", Config{}, 9 * MiB, Critical},
		{"off", Config{Off: true}, 0, OK},
		{"hard off, soft on", Config{Soft: Threshold{Bytes: 100 * MiB}}, 0, Low},
		{"a hard watermark above the soft one raises the soft one", Config{Soft: Threshold{Bytes: 1 * MiB}, Hard: Threshold{Bytes: 10 * MiB}}, 5 * MiB, Critical},
	}
	for _, c := range cases {
		f := &fakeDisk{now: time.Unix(1_700_000_000, 0), space: Space{Free: c.free, Total: 1000 * MiB}}
		if got := f.guard(c.cfg).Level(); got != c.want {
			t.Errorf("%s: level %v, want %v", c.name, got, c.want)
		}
	}
}

func TestGuardReadsAtMostOncePerInterval(t *testing.T) {
	f := &fakeDisk{now: time.Unix(1_700_000_000, 0), space: Space{Free: 1 << 30, Total: 1 << 40}}
	g := f.guard(Config{Soft: Threshold{Bytes: 100 << 20}, Hard: Threshold{Bytes: 10 << 20}, Every: 5 * time.Second})
	for range 100 {
		g.Level()
	}
	if f.reads != 1 {
		t.Fatalf("%d readings within one interval, want 1", f.reads)
	}
	f.space.Free = 50 << 20
	if g.Level() != OK {
		t.Fatal("the level changed before the interval passed")
	}
	f.now = f.now.Add(5 * time.Second)
	if g.Level() != Low || f.reads != 2 {
		t.Fatalf("after the interval: level %v after %d readings", g.Level(), f.reads)
	}
	f.err = errors.New("statfs: permission denied")
	f.now = f.now.Add(5 * time.Second)
	if st := g.Status(); st.Level != OK || st.ReadError == "" {
		t.Fatalf("an unreadable filesystem: %+v", st)
	}
}

func TestGuardWriteFailures(t *testing.T) {
	f := &fakeDisk{now: time.Unix(1_700_000_000, 0), space: Space{Free: 1 << 30, Total: 1 << 40}}
	g := f.guard(Config{FailureWindow: time.Minute})
	if g.Failing() {
		t.Fatal("failing before any write")
	}
	g.WriteSucceeded()
	g.WriteFailed(errors.New("database or disk is full"))
	if st := g.Status(); !g.Failing() || st.WriteFailure != "database or disk is full" || !st.WriteFailedAt.Equal(f.now) {
		t.Fatalf("after a failure: %+v", st)
	}
	g.WriteSucceeded()
	if g.Failing() {
		t.Fatal("a successful write did not end the failure")
	}
	g.WriteFailed(errors.New("disk I/O error"))
	f.now = f.now.Add(time.Minute)
	if g.Failing() {
		t.Fatal("a failure outlived its window with nothing written since")
	}
}

func TestStatSpaceReadsARealFilesystem(t *testing.T) {
	sp, err := statSpace(t.TempDir())
	if err != nil {
		t.Skipf("free space is not readable here: %v", err)
	}
	if sp.Total == 0 || sp.Free > sp.Total {
		t.Fatalf("implausible reading %+v", sp)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0B", 1023: "1023B", 1 << 20: "1MiB", 1536: "1.5KiB", 512 << 20: "512MiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestThresholdStringIsExact(t *testing.T) {
	for _, c := range []struct {
		th   Threshold
		want string
	}{
		{Threshold{Bytes: 512 << 20, Percent: 5}, "512MiB,5%"}, {Threshold{Bytes: 1e9}, "1GB"},
		{Threshold{Bytes: 1 << 30}, "1GiB"}, {Threshold{Bytes: 1001}, "1001"}, {Threshold{}, "0"},
	} {
		if got := c.th.String(); got != c.want {
			t.Errorf("%+v.String() = %q, want %q", c.th, got, c.want)
		}
	}
}
