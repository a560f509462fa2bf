// Command screenshots renders the README's pictures of the dashboard: the main pages at desktop
// (1440x900) and phone (390x844) size, light and dark, as WebP files in docs/screenshots.
//
// Run the demo, add a user, then point this at it (Chromium must be on the PATH):
//
//	dashboard --demo --data /tmp/shots-demo --addr 127.0.0.1:8080 &
//	printf 'correct-horse-battery\n' | dashboard user add --data /tmp/shots-demo --email ana@example.com --role admin
//	SCREENSHOTS_PASSWORD=correct-horse-battery go run ./scripts/screenshots -url http://127.0.0.1:8080 -email ana@example.com
//
// Let the demo run a few minutes first, so its feed, trends and rollout have something to show.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// pages are the pictures: a file name and the path to open. A path may name a request_id with
// {rid}: that of the newest webhook in the demo's feed (an API call, callbacks and the webhook).
var pages = []struct{ name, path string }{
	{"overview", "/"},
	{"events", "/events"},
	{"lookup", "/lookup?q={rid}"},
	{"environments", "/environments"},
	{"go-live", "/go-live"},
	{"rollout", "/rollout"},
	{"audit", "/audit"},
}

func main() {
	base := flag.String("url", "http://127.0.0.1:8080", "the running dashboard")
	email := flag.String("email", "ana@example.com", "an admin to sign in as (password in $SCREENSHOTS_PASSWORD)")
	out := flag.String("out", "docs/screenshots", "where the .webp files go")
	flag.Parse()
	if err := run(*base, *email, os.Getenv("SCREENSHOTS_PASSWORD"), *out); err != nil {
		fmt.Fprintln(os.Stderr, "screenshots:", err)
		os.Exit(1)
	}
}

func run(base, email, password, out string) error {
	if password == "" {
		return errors.New("set SCREENSHOTS_PASSWORD to the user's password")
	}
	browser, err := exec.LookPath("chromium")
	if err != nil {
		return errors.New("no chromium on the PATH (apt-get install chromium)")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()

	err = chromedp.Do(ctx,
		chromedp.EmulateViewport(1440, 900),
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`#email`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), email),
		chromedp.SendKeys(chromedp.CSS(`#password`), password),
		chromedp.Click(chromedp.CSS(`[data-testid="login-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#content`)),
		chromedp.Navigate(base+"/events?source=webhook"),
		chromedp.WaitVisible(chromedp.CSS(`#content`)),
	)
	if err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	rid, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector('[data-testid="event-request-id"]') || {}).textContent || ''`))
	if err != nil || rid == "" {
		return errors.New("the demo has no webhook with a request_id yet; let it run a minute")
	}

	sizes := []struct {
		name string
		w, h int64
	}{{"desktop", 1440, 900}, {"phone", 390, 844}}
	for _, scheme := range []string{"light", "dark"} {
		for _, sz := range sizes {
			for _, p := range pages {
				path := strings.ReplaceAll(p.path, "{rid}", url.QueryEscape(rid))
				err := chromedp.Do(ctx,
					chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
						_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
							Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
						return err
					}),
					chromedp.EmulateViewport(sz.w, sz.h),
					chromedp.Navigate(base+path),
					chromedp.WaitVisible(chromedp.CSS(`#content`)),
				)
				var shot []byte
				if err == nil {
					shot, err = chromedp.Run(ctx, captureWebP())
				}
				if err != nil {
					return fmt.Errorf("%s at %s %s: %w", path, sz.name, scheme, err)
				}
				name := filepath.Join(out, fmt.Sprintf("%s-%s-%s.webp", p.name, sz.name, scheme))
				if err := os.WriteFile(name, shot, 0o644); err != nil {
					return err
				}
				fmt.Println(name)
			}
		}
	}
	return nil
}

// captureWebP takes the viewport as WebP, a fraction of a PNG's size with the text still sharp.
func captureWebP() chromedp.Action[[]byte] {
	return func(ctx context.Context, _ *chromedp.Target) ([]byte, error) {
		quality := int64(90)
		res, err := chromedp.Call(ctx, page.CaptureScreenshot, page.CaptureScreenshotParams{Format: page.CaptureScreenshotFormatWebp, Quality: &quality})
		if err != nil {
			return nil, err
		}
		return res.Data, nil
	}
}
