package tensfer

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestStandardWebhooksTestVector(t *testing.T) {
	// The test vector published with the Standard Webhooks reference
	// libraries, so our signatures interoperate with other implementations.
	key, err := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1614265330, 0)
	body := []byte(`{"test": 2432232314}`)
	const want = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	if got := Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", ts, body); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestGenerateAndParseSecret(t *testing.T) {
	a, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateSecret()
	if a == b || !strings.HasPrefix(a, "whsec_") {
		t.Fatalf("GenerateSecret = %q, %q; want two different whsec_ secrets", a, b)
	}
	key, err := ParseSecret(a)
	if err != nil || len(key) != 32 || FormatSecret(key) != a {
		t.Fatalf("ParseSecret(%q) = %d bytes, %v; want 32 bytes that format back", a, len(key), err)
	}
}

func TestParseSecretErrors(t *testing.T) {
	b24 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 24))
	tests := []struct {
		in      string
		wantLen int
		wantErr string
	}{
		{"whsec_" + b24, 24, ""},
		{"  whsec_" + b24 + "\n", 24, ""},
		{"whsec_" + strings.TrimRight(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 25)), "="), 25, ""},
		{b24, 0, "webhook secret must start with whsec_"},
		{"sk_live_abc", 0, "webhook secret must start with whsec_"},
		{"whsec_not*base64!", 0, "not valid base64"},
		{"whsec_" + base64.StdEncoding.EncodeToString([]byte("short")), 0, "too short: 5 bytes, need at least 24"},
		{"whsec_", 0, "too short: 0 bytes"},
		{"whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 65)), 0, "too long"},
	}
	for _, tt := range tests {
		key, err := ParseSecret(tt.in)
		if tt.wantErr == "" {
			if err != nil || len(key) != tt.wantLen {
				t.Errorf("ParseSecret(%q) = %d bytes, %v; want %d bytes", tt.in, len(key), err, tt.wantLen)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ParseSecret(%q) error = %v, want containing %q", tt.in, err, tt.wantErr)
		}
	}
}

func TestParseSignatureHeader(t *testing.T) {
	mac := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	tests := []struct {
		in       string
		wantVers []string
		wantErr  string
	}{
		{"v1," + mac, []string{"v1"}, ""},
		{"  v1," + mac + "   v2,whatever v1a,ed25519sig ", []string{"v1", "v2", "v1a"}, ""},
		{"", nil, "empty"},
		{"v1" + mac, nil, "not <version>,<signature>"},
		{"v1,", nil, "not <version>,<signature>"},
		{",abc", nil, "not <version>,<signature>"},
		{"v1,@@@", nil, "not valid base64"},
		{"v1," + base64.StdEncoding.EncodeToString([]byte("short")), nil, "5 bytes, want 32"},
		{strings.Repeat("v2,x ", 17), nil, "at most 16"},
	}
	for _, tt := range tests {
		sigs, err := ParseSignatureHeader(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseSignatureHeader(%q) error = %v, want containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || len(sigs) != len(tt.wantVers) {
			t.Fatalf("ParseSignatureHeader(%q) = %v, %v", tt.in, sigs, err)
		}
		for i, s := range sigs {
			if s.Version != tt.wantVers[i] || (s.Version == "v1") != (s.MAC != nil) {
				t.Errorf("entry %d = %+v, want version %s with MAC only for v1", i, s, tt.wantVers[i])
			}
		}
	}
}

// signedHeader builds the three webhook headers, signing with keys.
func signedHeader(id string, ts time.Time, body []byte, keys ...[]byte) http.Header {
	req, _ := http.NewRequest("POST", "http://127.0.0.1/", nil)
	SignRequest(req, id, ts, body, keys...)
	return req.Header
}

func TestVerify(t *testing.T) {
	oldKey := bytes.Repeat([]byte{1}, 32)
	newKey := bytes.Repeat([]byte{2}, 32)
	other := bytes.Repeat([]byte{3}, 32)
	now := time.Unix(1_750_000_000, 0)
	body := []byte(`{"id":"evt_1","type":"payment.cancelled","data":{}}`)
	good := signedHeader("msg_1", now, body, newKey)
	with := func(h http.Header, k, v string) http.Header {
		c := h.Clone()
		if v == "" {
			c.Del(k)
		} else {
			c.Set(k, v)
		}
		return c
	}
	tests := []struct {
		name        string
		keys        [][]byte
		h           http.Header
		body        []byte
		tolerance   time.Duration
		wantMatched int
		wantReason  string
		wantDetail  string
		wantSkew    int64
	}{
		{name: "valid", keys: [][]byte{newKey}, h: good, body: body, wantMatched: 0},
		{name: "rotation: second key matches", keys: [][]byte{oldKey, newKey}, h: good, body: body, wantMatched: 1},
		{name: "rotation: sender signs with both", keys: [][]byte{oldKey}, h: signedHeader("msg_1", now, body, newKey, oldKey), body: body, wantMatched: 0},
		{name: "retired key no longer accepted", keys: [][]byte{newKey}, h: signedHeader("msg_1", now, body, oldKey), body: body, wantMatched: -1, wantReason: ReasonNoMatchingSignature},
		{name: "unknown version entries ignored", keys: [][]byte{newKey},
			h: with(good, HeaderWebhookSignature, "v2,abc v1a,zzz "+good.Get(HeaderWebhookSignature)), body: body, wantMatched: 0},
		{name: "only unknown versions", keys: [][]byte{newKey}, h: with(good, HeaderWebhookSignature, "v2,abc"), body: body,
			wantMatched: -1, wantReason: ReasonNoMatchingSignature, wantDetail: "no v1 signature"},
		{name: "empty key skipped", keys: [][]byte{nil, newKey}, h: good, body: body, wantMatched: 1},
		{name: "missing id", keys: [][]byte{newKey}, h: with(good, HeaderWebhookID, ""), body: body,
			wantMatched: -1, wantReason: ReasonMissingHeader, wantDetail: "webhook-id header is missing"},
		{name: "missing timestamp", keys: [][]byte{newKey}, h: with(good, HeaderWebhookTimestamp, ""), body: body,
			wantMatched: -1, wantReason: ReasonMissingHeader, wantDetail: "webhook-timestamp header is missing"},
		{name: "missing signature", keys: [][]byte{newKey}, h: with(good, HeaderWebhookSignature, ""), body: body,
			wantMatched: -1, wantReason: ReasonMissingHeader, wantDetail: "webhook-signature header is missing"},
		{name: "timestamp not a number", keys: [][]byte{newKey}, h: with(good, HeaderWebhookTimestamp, "yesterday"), body: body,
			wantMatched: -1, wantReason: ReasonInvalidTimestamp},
		{name: "timestamp in milliseconds", keys: [][]byte{newKey}, h: with(good, HeaderWebhookTimestamp, strconv.FormatInt(now.UnixMilli(), 10)), body: body,
			wantMatched: -1, wantReason: ReasonTimestampSkew, wantSkew: now.Unix() - now.UnixMilli()},
		{name: "timestamp signed", keys: [][]byte{newKey}, h: with(good, HeaderWebhookTimestamp, "+1750000000"), body: body,
			wantMatched: -1, wantReason: ReasonInvalidTimestamp},
		{name: "too old", keys: [][]byte{newKey}, h: signedHeader("msg_1", now.Add(-6*time.Minute), body, newKey), body: body,
			wantMatched: -1, wantReason: ReasonTimestampSkew, wantDetail: "old", wantSkew: 360},
		{name: "too far in future", keys: [][]byte{newKey}, h: signedHeader("msg_1", now.Add(7*time.Minute), body, newKey), body: body,
			wantMatched: -1, wantReason: ReasonTimestampSkew, wantDetail: "future", wantSkew: -420},
		{name: "just inside tolerance", keys: [][]byte{newKey}, h: signedHeader("msg_1", now.Add(-5*time.Minute), body, newKey), body: body, wantMatched: 0},
		{name: "custom tolerance", keys: [][]byte{newKey}, h: signedHeader("msg_1", now.Add(-90*time.Second), body, newKey), body: body,
			tolerance: time.Minute, wantMatched: -1, wantReason: ReasonTimestampSkew, wantSkew: 90},
		{name: "malformed signature", keys: [][]byte{newKey}, h: with(good, HeaderWebhookSignature, "garbage"), body: body,
			wantMatched: -1, wantReason: ReasonMalformedSignature},
		{name: "no active secret", keys: nil, h: good, body: body, wantMatched: -1, wantReason: ReasonNoActiveSecret},
		{name: "only empty secrets", keys: [][]byte{{}}, h: good, body: body, wantMatched: -1, wantReason: ReasonNoActiveSecret},
		{name: "wrong key", keys: [][]byte{other}, h: good, body: body, wantMatched: -1, wantReason: ReasonNoMatchingSignature},
		{name: "body changed", keys: [][]byte{newKey}, h: good, body: append(bytes.Clone(body), ' '), wantMatched: -1, wantReason: ReasonNoMatchingSignature},
		{name: "id changed", keys: [][]byte{newKey}, h: with(good, HeaderWebhookID, "msg_2"), body: body, wantMatched: -1, wantReason: ReasonNoMatchingSignature},
		{name: "timestamp changed", keys: [][]byte{newKey}, h: with(good, HeaderWebhookTimestamp, strconv.FormatInt(now.Unix()+1, 10)), body: body,
			wantMatched: -1, wantReason: ReasonNoMatchingSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			matched, err := Verify(tt.keys, tt.h, tt.body, now, tt.tolerance)
			if matched != tt.wantMatched {
				t.Errorf("matched = %d, want %d (err %v)", matched, tt.wantMatched, err)
			}
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			ve, ok := errors.AsType[*VerifyError](err)
			if !ok {
				t.Fatalf("err = %v (%T), want *VerifyError", err, err)
			}
			if ve.Reason != tt.wantReason || !strings.Contains(ve.Detail, tt.wantDetail) || ve.SkewSeconds != tt.wantSkew {
				t.Errorf("got %q %q skew %d; want %q containing %q skew %d", ve.Reason, ve.Detail, ve.SkewSeconds, tt.wantReason, tt.wantDetail, tt.wantSkew)
			}
			if !strings.HasPrefix(err.Error(), "webhook signature: "+tt.wantReason) {
				t.Errorf("Error() = %q", err.Error())
			}
		})
	}
}

func FuzzParseSignatureHeader(f *testing.F) {
	mac := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
	for _, s := range []string{"", "v1," + mac, "v1," + mac + " v2,x", "v1,", ",", "v1,====", "   ", "v1,a,b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		sigs, err := ParseSignatureHeader(h)
		if err != nil {
			return
		}
		if len(sigs) == 0 || len(sigs) > maxSignatureEntries {
			t.Fatalf("parsed %d entries without error", len(sigs))
		}
		// Re-joining the entries must parse to the same entries.
		parts := make([]string, len(sigs))
		for i, s := range sigs {
			if s.Version == "v1" && len(s.MAC) != 32 {
				t.Fatalf("v1 entry with %d-byte MAC", len(s.MAC))
			}
			if strings.ContainsAny(s.Version+s.Value, " \t\n") {
				t.Fatalf("entry %q contains whitespace", s.Version+","+s.Value)
			}
			parts[i] = s.Version + "," + s.Value
		}
		again, err := ParseSignatureHeader(strings.Join(parts, " "))
		if err != nil || len(again) != len(sigs) {
			t.Fatalf("re-parse of %q: %v, %d entries want %d", strings.Join(parts, " "), err, len(again), len(sigs))
		}
	})
}

func FuzzVerify(f *testing.F) {
	f.Add(bytes.Repeat([]byte{1}, 32), "msg_1", int64(1_750_000_000), []byte(`{"type":"payment.cancelled"}`), uint(0))
	f.Add([]byte("k"), "a.b", int64(0), []byte{}, uint(3))
	f.Add(bytes.Repeat([]byte{0xff}, 64), "msg", int64(1<<40), []byte("x"), uint(7))
	f.Fuzz(func(t *testing.T, key []byte, id string, ts int64, body []byte, flip uint) {
		if ts < 0 || ts > 1<<50 {
			return
		}
		now := time.Unix(ts, 0)
		h := http.Header{}
		h.Set(HeaderWebhookID, id)
		h.Set(HeaderWebhookTimestamp, strconv.FormatInt(ts, 10))
		h.Set(HeaderWebhookSignature, Sign(key, id, now, body))
		matched, err := Verify([][]byte{key}, h, body, now, 0)
		switch {
		case strings.TrimSpace(id) == "" || len(key) == 0:
			if err == nil {
				t.Fatalf("verified with empty id %q or empty key", id)
			}
			return
		case err != nil || matched != 0:
			t.Fatalf("correctly signed message rejected: %d, %v", matched, err)
		}
		if len(body) == 0 {
			return
		}
		tampered := bytes.Clone(body)
		tampered[int(flip%uint(len(body)))] ^= 1 << (flip % 8)
		if _, err := Verify([][]byte{key}, h, tampered, now, 0); err == nil {
			t.Fatal("message with a flipped body bit verified")
		}
	})
}
