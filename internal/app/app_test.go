package app

import (
	"context"
	"errors"
	"net/url"
	"testing"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/cluster"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/dbtest"
	"github.com/tensfer-golive/dashboard/internal/metrics"
	"github.com/tensfer-golive/dashboard/internal/secrets"
)

// The package's tests run on SQLite, then again on PostgreSQL.
func TestMain(m *testing.M) { dbtest.Main(m) }

func config(bus cluster.Bus) Config {
	pub, _ := url.Parse("http://127.0.0.1:8080")
	return Config{PublicURL: pub, Version: "test", PasswordParams: auth.TestParams, Metrics: metrics.New(metrics.BuildInfo{}),
		Bus: bus, Leader: cluster.Solo{}}
}

// TestBuildWiresTheServices: the services are built over one store and Bus and wired into each
// other: a webhook secret added through the environments service is told on the Bus (through the
// hook Build wires), and the access hook set after the build is the one accounts calls. A build
// stopped before it began returns the cancellation and no services, and the store stays usable
// for the next build.
func TestBuildWiresTheServices(t *testing.T) {
	ctx := context.Background()
	d := dbtest.Open(t)
	key, _ := secrets.GenerateKey()
	box, _ := secrets.NewBox(key)
	bus := cluster.NewLocalBus()
	t.Cleanup(bus.Close)

	stopped, cancel := context.WithCancel(ctx)
	cancel()
	if svc, err := Build(stopped, config(bus), d, box, nil); !errors.Is(err, context.Canceled) || svc != nil {
		t.Fatalf("a build stopped before it began: %v, %v; want context.Canceled and no services", svc, err)
	}

	svc, err := Build(ctx, config(bus), d, box, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	for name, s := range map[string]any{"accounts": svc.Accounts, "two-factor": svc.TwoFactor, "events": svc.Events,
		"environments": svc.Envs, "rollout": svc.Rollout, "alerts": svc.Alerts} {
		if s == nil {
			t.Errorf("no %s service", name)
		}
	}
	forgot := 0
	svc.OnAccessChanged(func() { forgot++ })
	svc.accessChanged()
	if forgot != 1 {
		t.Errorf("the access hook ran %d times, want once", forgot)
	}
	heard := make(chan struct{}, 4)
	stop := bus.Subscribe(cluster.TopicSecrets, func(cluster.Message) { heard <- struct{}{} })
	defer stop()
	if _, _, err := svc.Envs.AddWebhookSecret(ctx, "production", "", 0, db.Audit{Actor: "test", Action: "environment.webhook_secret_add"}); err != nil {
		t.Fatal(err)
	}
	<-heard // a secrets change is told on the Bus
}
