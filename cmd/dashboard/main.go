// Command dashboard is the Tensfer go-live dashboard: one binary that serves the web UI and JSON
// API, and offers a few administrative subcommands.
//
//	dashboard [serve] [flags]             serve the dashboard (default)
//	dashboard user add --email E --role R  add a user (password on stdin)
//	dashboard token create --name N --scopes a,b [--owner EMAIL]
//	dashboard backup --out FILE
//	dashboard restore --from FILE [--master-key-file F]
//	dashboard rotate-master-key [--new-key-file F]
//	dashboard migrate-to-postgres --data DIR --database-url URL
//	dashboard healthcheck [--url URL]
//	dashboard version
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "dashboard:", err)
		os.Exit(exitCode(err))
	}
}

// usageError is a mistake in the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	if _, ok := err.(usageError); ok {
		return 2
	}
	return 1
}

const usage = `usage:
  dashboard [serve] [flags]                        serve the dashboard (default)
  dashboard user add --email E --role admin|operator|viewer [--name N]
                                                   add a user; the password is read from stdin
  dashboard user reset-2fa --email E               remove a user's two-factor (a lost phone) and
                                                   end their sessions
  dashboard token create --name N --scopes a,b [--owner EMAIL]   create an API token (a service token unless --owner names an admin); prints it once
  dashboard backup --out FILE                      write a consistent copy of the database
  dashboard restore --from FILE [--master-key-file F]
                                                   replace the database with a checked backup
                                                   (run with the dashboard stopped)
  dashboard audit verify                           check that no audit row was changed or removed
  dashboard rotate-master-key [--new-key-file F]   re-encrypt every secret under a new master key
                                                   (run with the dashboard stopped)
  dashboard migrate-to-postgres --database-url URL copy this SQLite dashboard into an empty
                                                   PostgreSQL database (run with the dashboard stopped)
  dashboard healthcheck [--url URL]                exit 0 if the running dashboard answers /healthz
                                                   with 200, else 1 (for a container HEALTHCHECK)
  dashboard version                                print the version, commit and Go version
Every command but healthcheck and version takes --data DIR (env DASHBOARD_DATA, default ./data),
and --database-url URL (env DASHBOARD_DATABASE_URL or DASHBOARD_DATABASE_URL_FILE) to use
PostgreSQL instead of the SQLite file there; backup and restore then point to pg_dump and
pg_restore.
Run "dashboard serve -h" for the server's flags.`

// run is main without the process: arguments, standard streams and the environment are passed in
// so tests can drive every subcommand.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, stdout, stderr, getenv)
	case "user":
		if len(args) > 0 && args[0] == "reset-2fa" {
			return userResetTwoFactor(ctx, args[1:], stdout, stderr, getenv)
		}
		if len(args) == 0 || args[0] != "add" {
			return usageError{"usage: dashboard user add --email E --role admin|operator|viewer (password on stdin)"}
		}
		return userAdd(ctx, args[1:], stdin, stdout, stderr, getenv)
	case "token":
		if len(args) == 0 || args[0] != "create" {
			return usageError{"usage: dashboard token create --name N --scopes a,b"}
		}
		return tokenCreate(ctx, args[1:], stdout, stderr, getenv)
	case "rotate-master-key":
		return rotateMasterKey(ctx, args, stdout, stderr, getenv)
	case "backup":
		return backup(ctx, args, stdout, stderr, getenv)
	case "restore":
		return restore(ctx, args, stdout, stderr, getenv)
	case "migrate-to-postgres":
		return migrateToPostgres(ctx, args, stdout, stderr, getenv)
	case "audit":
		if len(args) == 0 || args[0] != "verify" {
			return usageError{"usage: dashboard audit verify [--data DIR]"}
		}
		return auditVerify(ctx, args[1:], stdout, stderr, getenv)
	case "healthcheck":
		return healthcheck(ctx, args, stdout, stderr, getenv)
	case "version":
		if len(args) > 0 {
			return usageError{"usage: dashboard version"}
		}
		readBuild().print(stdout)
		return nil
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return usageError{fmt.Sprintf("unknown command %q\n%s", cmd, usage)}
}
