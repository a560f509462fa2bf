package environment

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/safehttp"
	"github.com/tensfer-golive/dashboard/internal/secrets"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// Input is a requested change to an environment, from the form or the JSON API. Nil means
// "leave alone"; an empty string clears a URL.
type Input struct {
	BaseURL        *string
	CallbackURL    *string
	AppURL         *string
	ReplayURL      *string
	AllowedOrigins *[]string
	Keys           map[string]string // kind -> new value
	KeepPrevious   time.Duration     // overlap during which a replaced key is still served
}

const (
	maxURLLen    = 2048
	minKeyLen    = 8
	maxKeyLen    = 512
	maxOrigins   = 20
	maxKeepAlive = 30 * 24 * time.Hour
)

// IsLoopbackURL reports whether raw is a URL on this machine (localhost or a loopback address).
func IsLoopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && isLoopbackHost(u.Hostname())
}

func isLoopbackHost(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkURL validates one configured URL and returns it normalised, or a message saying what to
// fix. Production URLs must be https; sandbox may use http only for localhost. When
// allowLoopback is set (demo mode, tests) loopback http is accepted in production too, because
// the simulator runs there.
func checkURL(env, field, raw string, allowLoopback bool) (string, string) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", ""
	}
	label := strings.ReplaceAll(field, "_", " ")
	if len(raw) > maxURLLen {
		return "", fmt.Sprintf("%s must be at most %d characters", label, maxURLLen)
	}
	if !utf8.ValidString(raw) || strings.ContainsFunc(raw, unsafeInURL) {
		return "", fmt.Sprintf("%s must not contain spaces, quotes, <, >, backslashes or control characters (percent-encode them)", label)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return "", fmt.Sprintf("%s must be an absolute URL such as https://api.example.com", label)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Sprintf("%s must use https (not %s)", label, u.Scheme)
	case u.User != nil && env == "":
		return "", fmt.Sprintf("%s must not contain a user name or password", label)
	case u.User != nil:
		return "", fmt.Sprintf("%s must not contain a user name or password; keys go in the key fields", label)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "", fmt.Sprintf("%s must not contain a #fragment", label)
	case field == "base_url" && u.RawQuery != "":
		return "", fmt.Sprintf("%s must not contain a query string", label)
	}
	loop := isLoopbackHost(u.Hostname())
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil && !loop {
		// The outbound client refuses such addresses (safehttp, the same list); say so when the
		// URL is saved. Loopback is left to the scheme rules below (localhost in sandbox).
		var blocked *safehttp.BlockedAddressError
		if err := safehttp.CheckAddr(ip, false); errors.As(err, &blocked) {
			return "", fmt.Sprintf("%s points at an internal address (%s), a %s; use the public host name of the service", label, ip, blocked.Reason)
		} else if err != nil {
			return "", fmt.Sprintf("%s points at an address that cannot be used", label)
		}
	}
	if u.Scheme == "http" {
		switch {
		case env == "production" && !(loop && allowLoopback):
			return "", fmt.Sprintf("%s must use https in production", label)
		case env == "" && !(loop && allowLoopback):
			return "", fmt.Sprintf("%s must use https", label)
		case env == "sandbox" && !loop:
			return "", fmt.Sprintf("%s must use https (http is allowed only for localhost in sandbox)", label)
		}
	}
	normalizeHost(u)
	if field == "base_url" {
		u.Path = strings.TrimRight(u.Path, "/")
	}
	return u.String(), ""
}

// unsafeInURL reports the characters a URL must carry percent-encoded: url.Parse would encode
// them quietly (and store something other than what was typed) or refuse them without saying
// which.
func unsafeInURL(r rune) bool {
	return r <= ' ' || r == 0x7f || strings.ContainsRune("\"<>\\^`{|}", r)
}

// CheckURL validates a URL the dashboard sends to that belongs to no environment (an alert
// channel's) by the rules of a production URL: absolute, https (http only for a loopback address
// when allowLoopback is set: the demo and tests), no user name or password, no #fragment. It
// returns the URL normalised, or a message naming label that says what to fix (never the URL).
func CheckURL(label, raw string, allowLoopback bool) (string, string) {
	return checkURL("", label, raw, allowLoopback)
}

// normalizeHost lowercases scheme and host and drops a default port, so that two spellings of
// one URL compare equal (and an origin matches what browsers send).
func normalizeHost(u *url.URL) {
	u.Scheme = strings.ToLower(u.Scheme)
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" || u.Scheme == "https" && port == "443" || u.Scheme == "http" && port == "80" {
		u.Host = host
		if strings.Contains(host, ":") {
			u.Host = "[" + host + "]"
		}
		return
	}
	u.Host = net.JoinHostPort(host, port)
}

// checkOrigin validates one allowed callback origin (scheme://host[:port]).
func checkOrigin(env, raw string, allowLoopback bool) (string, string) {
	raw = strings.TrimSpace(raw)
	if raw == "*" {
		return "", "allowed origins must be listed one by one; * would let any site post callbacks"
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Sprintf("%q is not an origin; write scheme://host[:port], e.g. https://app.example.com", raw)
	}
	if _, msg := checkURL(env, "allowed_origins", raw, allowLoopback); msg != "" {
		return "", fmt.Sprintf("origin %s: %s", raw, strings.TrimPrefix(msg, "allowed origins "))
	}
	normalizeHost(u)
	return u.Scheme + "://" + u.Host, ""
}

// checkKeyValue validates a key value as typed or pasted.
func checkKeyValue(kind, v string) (string, string) {
	v = strings.TrimSpace(v)
	label := keyLabels[kind]
	switch {
	case v == "":
		return "", ""
	case len(v) < minKeyLen:
		return "", fmt.Sprintf("%s looks too short (%d characters); paste the whole key from Tensfer's dashboard", label, len(v))
	case len(v) > maxKeyLen:
		return "", fmt.Sprintf("%s must be at most %d characters", label, maxKeyLen)
	}
	for _, r := range v {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return "", fmt.Sprintf("%s contains a space or a character that is not printable ASCII; paste the key alone", label)
		}
	}
	return v, ""
}

// Validate checks in against the rules and against the other environment, and turns it into a
// database change with new keys sealed. Field errors name what to fix; when there are any the
// change must not be applied. It stores nothing.
func (s *Service) Validate(ctx context.Context, env string, in Input) (db.EnvChange, validation.Errors, error) {
	errs := validation.Errors{}
	var c db.EnvChange
	if !Valid(env) {
		return c, nil, db.ErrNotFound
	}
	allow := s.cfg.AllowLoopbackURLs
	for _, f := range []struct {
		name string
		in   *string
		out  **string
	}{{"base_url", in.BaseURL, &c.BaseURL}, {"callback_url", in.CallbackURL, &c.CallbackURL}, {"app_url", in.AppURL, &c.AppURL}, {"replay_url", in.ReplayURL, &c.ReplayURL}} {
		if f.in == nil {
			continue
		}
		v, msg := checkURL(env, f.name, *f.in, allow)
		if msg != "" {
			errs[f.name] = msg
			continue
		}
		*f.out = &v
	}
	if in.AllowedOrigins != nil {
		var origins []string
		for _, o := range *in.AllowedOrigins {
			if strings.TrimSpace(o) == "" {
				continue
			}
			v, msg := checkOrigin(env, o, allow)
			if msg != "" {
				errs["allowed_origins"] = msg
				break
			}
			if !slices.Contains(origins, v) {
				origins = append(origins, v)
			}
		}
		if len(origins) > maxOrigins {
			errs["allowed_origins"] = fmt.Sprintf("at most %d allowed origins", maxOrigins)
		}
		if origins == nil {
			origins = []string{}
		}
		c.AllowedOrigins = &origins
	}
	if in.KeepPrevious < 0 || in.KeepPrevious > maxKeepAlive {
		errs["keep_previous"] = "the overlap for the previous key must be between 0 and 30 days"
	}

	// Compare with what is stored, for the classic go-live mistakes.
	others, err := s.cfg.DB.ListEnvironments(ctx)
	if err != nil {
		return c, nil, err
	}
	keys, err := s.cfg.DB.ListEnvKeys(ctx, "")
	if err != nil {
		return c, nil, err
	}
	other := Other(env)
	var otherEnv db.Environment
	for _, e := range others {
		if e.Name == other {
			otherEnv = e
		}
	}
	sandboxURL := func(mine *string, theirs, field, msg string) {
		if env == "production" && mine != nil && *mine != "" && *mine == theirs {
			errs[field] = msg
		}
	}
	sandboxURL(c.BaseURL, otherEnv.BaseURL, "base_url", "production base URL equals the sandbox base URL; point it at Tensfer's production API")
	sandboxURL(c.CallbackURL, otherEnv.CallbackURL, "callback_url", "production callback URL is still the sandbox one; switch it to your production callback URL")
	// The same mistakes made from the other side: sandbox set to what production uses.
	if env == "sandbox" && c.BaseURL != nil && *c.BaseURL != "" && *c.BaseURL == otherEnv.BaseURL {
		errs["base_url"] = "sandbox base URL equals the production base URL; sandbox must point at Tensfer's sandbox API"
	}
	if env == "sandbox" && c.CallbackURL != nil && *c.CallbackURL != "" && *c.CallbackURL == otherEnv.CallbackURL {
		errs["callback_url"] = "sandbox callback URL equals the production one; each environment needs its own callback URL"
	}

	seen := map[string]string{} // fingerprint -> kind, within this change
	for _, kind := range db.KeyKinds {
		raw, ok := in.Keys[kind]
		if !ok {
			continue
		}
		v, msg := checkKeyValue(kind, raw)
		if msg != "" {
			errs[kind] = msg
			continue
		}
		if v == "" {
			continue
		}
		fp := s.cfg.Box.Fingerprint([]byte(v))
		if k, dup := seen[fp]; dup {
			errs[kind] = fmt.Sprintf("the %s is the same value as the %s; each key is different", keyLabels[kind], keyLabels[k])
			continue
		}
		seen[fp] = kind
		for _, k := range keys {
			if k.Fingerprint != fp || !k.Active() {
				continue
			}
			switch {
			case k.Env != env:
				errs[kind] = fmt.Sprintf("this is the %s %s; %s needs its own key from Tensfer's %s dashboard", k.Env, keyLabels[k.Kind], env, env)
			case k.Kind != kind:
				errs[kind] = fmt.Sprintf("this is already the %s of %s; each key is different", keyLabels[k.Kind], env)
			default:
				errs[kind] = fmt.Sprintf("this %s is already the active one (…%s)", keyLabels[kind], k.Last4)
			}
		}
		if errs.Has(kind) {
			continue
		}
		sealed, err := s.cfg.Box.Seal([]byte(v), secrets.EnvKeyContext(env, kind))
		if err != nil {
			return c, nil, err
		}
		nk := db.NewEnvKey{Kind: kind, Sealed: sealed, Last4: secrets.Last4(v), Fingerprint: fp}
		if in.KeepPrevious > 0 {
			nk.KeepPreviousUntil = s.cfg.Now().Add(in.KeepPrevious)
		}
		c.Keys = append(c.Keys, nk)
	}
	return c, errs, nil
}
