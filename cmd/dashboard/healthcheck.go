package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// healthcheck asks a running dashboard's GET /healthz and succeeds only on 200, for a container's
// HEALTHCHECK (the image has no shell and no curl) or any supervisor. Like Docker expects, it
// exits 0 (healthy) or 1 (anything else, a mistaken flag included: 2 is reserved there).
func healthcheck(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var addr, target string
	var timeout time.Duration
	f := newFlags("healthcheck", stderr, getenv)
	f.string(&addr, "addr", "DASHBOARD_ADDR", "127.0.0.1:8080", "address the dashboard listens on; its port is asked on loopback")
	f.fs.StringVar(&target, "url", "", "URL to ask instead (default http://127.0.0.1:PORT/healthz, PORT from --addr; https when DASHBOARD_TLS_CERT or DASHBOARD_DOMAIN is set)")
	f.fs.DurationVar(&timeout, "timeout", 5*time.Second, "give up after this long")
	if err := f.parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errors.New(err.Error())
	}
	// A dashboard serving TLS itself (its settings in the same environment, as in a container) is
	// asked over https, on :443 with --domain unless an address is given, as serve does.
	tlsOn := getenv("DASHBOARD_TLS_CERT") != "" || getenv("DASHBOARD_DOMAIN") != ""
	if getenv("DASHBOARD_DOMAIN") != "" && !f.given("addr") {
		addr = ":443"
	}
	loopback := target == ""
	if target == "" {
		if err := checkListenAddr(f, "addr", ":8080"); err != nil {
			return err
		}
		host, port, _ := net.SplitHostPort(addr)
		switch host {
		case "", "0.0.0.0":
			host = "127.0.0.1"
		case "::":
			host = "::1"
		}
		scheme := "http"
		if tlsOn {
			scheme = "https"
		}
		target = scheme + "://" + net.JoinHostPort(host, port) + "/healthz"
	}
	if u, err := url.Parse(target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url %q must be an http or https URL, e.g. http://127.0.0.1:8080/healthz", target)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if loopback && tlsOn {
		// NB: the default URL is this machine's loopback address, which the certificate does not
		// name: the check asks whether the dashboard answers, not who it is, so it does not verify
		// the certificate there. A --url is verified as usual.
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("unhealthy: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("unhealthy: %s answered %s", target, res.Status)
	}
	fmt.Fprintf(stdout, "healthy: %s answered %s\n", target, res.Status)
	return nil
}
