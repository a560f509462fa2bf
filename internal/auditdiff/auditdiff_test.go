package auditdiff

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	tests := []struct {
		name          string
		before, after string
		want          []Change
	}{
		{name: "nothing on either side", want: []Change{}},
		{name: "null on both sides", before: "null", after: "null", want: []Change{}},
		{name: "a role change", before: `{"role":"viewer"}`, after: `{"role":"admin"}`,
			want: []Change{{Field: "role", Kind: Changed, Before: "viewer", After: "admin"}}},
		{name: "an unchanged field is left out", before: `{"webhook_secret":"ws_1","active":true}`, after: `{"webhook_secret":"ws_1","active":false}`,
			want: []Change{{Field: "active", Kind: Changed, Before: "true", After: "false"}}},
		{name: "a field only after is added", before: `{"role":"admin"}`, after: `{"role":"viewer","tokens_revoked":2}`,
			want: []Change{{Field: "role", Kind: Changed, Before: "admin", After: "viewer"}, {Field: "tokens_revoked", Kind: Added, After: "2"}}},
		{name: "a creation lists its fields", after: `{"email":"bo@example.com","name":"Bo","role":"operator"}`,
			want: []Change{{Field: "email", Kind: Added, After: "bo@example.com"}, {Field: "name", Kind: Added, After: "Bo"}, {Field: "role", Kind: Added, After: "operator"}}},
		{name: "a deletion lists what was removed", before: `{"name":"beta","members":12}`,
			want: []Change{{Field: "members", Kind: Removed, Before: "12"}, {Field: "name", Kind: Removed, Before: "beta"}}},
		{name: "null counts as not set", before: `{"base_url":null}`, after: `{"base_url":"https://api.example.com"}`,
			want: []Change{{Field: "base_url", Kind: Added, After: "https://api.example.com"}}},
		{name: "nested objects flatten to dotted paths", before: `{"attributes":{"country":"SE","plan":{"tier":"pro"}}}`, after: `{"attributes":{"country":"NO","plan":{"tier":"pro"}}}`,
			want: []Change{{Field: "attributes.country", Kind: Changed, Before: "SE", After: "NO"}}},
		{name: "arrays are one value, joined", before: `{"allowed_origins":["https://a.example"]}`, after: `{"allowed_origins":["https://a.example","https://b.example"]}`,
			want: []Change{{Field: "allowed_origins", Kind: Changed, Before: "https://a.example", After: "https://a.example, https://b.example"}}},
		{name: "an emptied array", before: `{"order":[3,1]}`, after: `{"order":[]}`,
			want: []Change{{Field: "order", Kind: Changed, Before: "3, 1", After: "none"}}},
		{name: "rollout stages and rules in their short forms", before: `{"stages":[{"percent":1,"min_soak":"24h"}]}`,
			after: `{"stages":[{"percent":1,"min_soak":"24h"},{"percent":5,"min_soak":"48h"}],"rules":[{"attribute":"country","op":"in","values":["SE","NO"]}]}`,
			want:  []Change{{Field: "rules", Kind: Added, After: "country in SE,NO"}, {Field: "stages", Kind: Changed, Before: "1%/24h", After: "1%/24h, 5%/48h"}}},
		{name: "other objects in arrays as pairs", after: `{"items":[{"b":2,"a":"x"}]}`,
			want: []Change{{Field: "items", Kind: Added, After: "a=x b=2"}}},
		{name: "a key set for the first time shows its fingerprint", before: `{"secret_key":null}`, after: `{"secret_key":{"last4":"a1b2","fingerprint":"9f3ac1d2e4b5"}}`,
			want: []Change{{Field: "secret_key", Kind: Added, After: "…a1b2 · fp 9f3ac1d2e4b5", Secret: true}}},
		{name: "a key replaced shows both fingerprints", before: `{"client_token":{"last4":"a1b2","fingerprint":"111111111111"}}`, after: `{"client_token":{"last4":"c3d4","fingerprint":"222222222222"}}`,
			want: []Change{{Field: "client_token", Kind: Changed, Before: "…a1b2 · fp 111111111111", After: "…c3d4 · fp 222222222222", Secret: true}}},
		{name: "a password is only changed", before: `{"password":"[redacted]"}`, after: `{"password":"[changed]"}`,
			want: []Change{{Field: "password", Kind: Changed, After: "changed", Secret: true}}},
		{name: "secret strings never show, added or removed", before: `{"signing_secret":"whsec_old"}`, after: `{"api_token":"tsk_live_abc","totp_seed":"JBSWY3DP"}`,
			want: []Change{{Field: "api_token", Kind: Added, After: "set", Secret: true}, {Field: "signing_secret", Kind: Removed, Before: "set", Secret: true}, {Field: "totp_seed", Kind: Added, After: "set", Secret: true}}},
		{name: "a secret nested under a secret name", after: `{"credentials":{"user":"bo","pass":"hunter2"}}`,
			want: []Change{{Field: "credentials.pass", Kind: Added, After: "set", Secret: true}, {Field: "credentials.user", Kind: Added, After: "set", Secret: true}}},
		{name: "secret arrays never show", after: `{"recovery_codes":["aaaa-bbbb","cccc-dddd"]}`,
			want: []Change{{Field: "recovery_codes", Kind: Added, After: "set", Secret: true}}},
		{name: "counts and flags under secret names show", before: `{"secret_rotated":false}`, after: `{"secret_rotated":true,"recovery_codes":10}`,
			want: []Change{{Field: "recovery_codes", Kind: Added, After: "10"}, {Field: "secret_rotated", Kind: Changed, Before: "false", After: "true"}}},
		{name: "a secret inside an array of objects", after: `{"channels":[{"name":"ops","secret":"whsec_x"}]}`,
			want: []Change{{Field: "channels", Kind: Added, After: "name=ops secret=set"}}},
		{name: "ids and fingerprints of secrets show", after: `{"webhook_secret":"ws_7","fingerprint":"9f3ac1d2e4b5","url_fingerprint":"abcdef012345"}`,
			want: []Change{{Field: "fingerprint", Kind: Added, After: "9f3ac1d2e4b5"}, {Field: "url_fingerprint", Kind: Added, After: "abcdef012345"}, {Field: "webhook_secret", Kind: Added, After: "ws_7"}}},
		{name: "a side that is not an object is one value", before: `"old"`, after: `["a","b"]`,
			want: []Change{{Field: "value", Kind: Changed, Before: "old", After: "a, b"}}},
		{name: "a side that does not parse is kept as text", after: `{"broken`,
			want: []Change{{Field: "value", Kind: Added, After: `{"broken`}}},
		{name: "large numbers keep their digits", before: `{"members":12345678901234567890}`, after: `{"members":0.5}`,
			want: []Change{{Field: "members", Kind: Changed, Before: "12345678901234567890", After: "0.5"}}},
		{name: "an empty string is shown as such", before: `{"app_url":"https://app.example"}`, after: `{"app_url":""}`,
			want: []Change{{Field: "app_url", Kind: Changed, Before: "https://app.example", After: "empty"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Diff(json.RawMessage(tt.before), json.RawMessage(tt.after))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Diff(%s, %s)\n got %+v\nwant %+v", tt.before, tt.after, got, tt.want)
			}
		})
	}
}

// TestDiffNeverShowsSecretStrings feeds secret-looking values under every secret-ish name the
// dashboard uses, in every position, and checks that no side of any change holds them.
func TestDiffNeverShowsSecretStrings(t *testing.T) {
	const canary = "canary-7f3e9a"
	names := []string{"password", "new_password", "secret", "webhook_signing_secret", "token", "client_token", "secret_key",
		"public_key", "api_key", "totp", "totp_seed", "seed", "recovery_codes", "credentials", "private_key", "otp_code", "Secret_Key"}
	for _, n := range names {
		for _, side := range []struct{ before, after string }{
			{"", `{"` + n + `":"` + canary + `"}`},
			{`{"` + n + `":"` + canary + `"}`, ""},
			{`{"` + n + `":"x"}`, `{"` + n + `":"` + canary + `"}`},
			{"", `{"a":{"` + n + `":"` + canary + `"}}`},
			{"", `{"` + n + `":{"value":"` + canary + `"}}`},
			{"", `{"` + n + `":["` + canary + `"]}`},
			{"", `{"list":[{"` + n + `":"` + canary + `"}]}`},
		} {
			for _, c := range Diff(json.RawMessage(side.before), json.RawMessage(side.after)) {
				if strings.Contains(c.Before+c.After, canary) {
					t.Errorf("%s: before %s after %s shows the secret: %+v", n, side.before, side.after, c)
				}
			}
		}
	}
}
