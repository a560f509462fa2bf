package db

import (
	"context"
	"database/sql"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// The store's statements are written once, in SQLite's dialect; a dialect rewrites them for the
// database that is open. On SQLite the rewrite is the identity. On PostgreSQL it numbers the
// parameters ($1, $2, ..), turns INSERT OR IGNORE into ON CONFLICT DO NOTHING, drops SQLite's
// planner pins (INDEXED BY, the unary + that keeps a column off an index) and maps the two
// functions we use that PostgreSQL spells otherwise (json_extract, instr). Each distinct statement
// is rewritten once and cached. Anything the rules cannot express is written per dialect at its
// call site with d.postgres(), never in a domain package.
type dialect struct {
	postgres bool
	cache    sync.Map // statement as written -> statement as sent
}

var (
	sqliteDialect = &dialect{}

	reIndexedBy   = regexp.MustCompile(`\s+(?:NOT INDEXED\b|INDEXED BY\s+\w+)`)
	reJSONExtract = regexp.MustCompile(`json_extract\((\w+), '\$\.(\w+)'\)`)
	reUnaryPlus   = regexp.MustCompile(`([\s(,])\+([a-z_]+)`)
	reInstr       = regexp.MustCompile(`\binstr\(`)
)

// sql is query as the open database must receive it.
func (dl *dialect) sql(query string) string {
	if !dl.postgres {
		return query
	}
	if v, ok := dl.cache.Load(query); ok {
		return v.(string)
	}
	v := toPostgres(query)
	dl.cache.Store(query, v)
	return v
}

// args adapts arguments for the open database. PostgreSQL refuses text that is not UTF-8 or
// that holds a NUL byte, which SQLite stores as given: such text (a hostile header, user agent
// or reason) is stored with U+FFFD in place of what cannot be kept, never refused, because
// refusing would lose a delivery. Booleans become 0 or 1, as SQLite's driver stores them.
func (dl *dialect) args(args []any) []any {
	if !dl.postgres {
		return args
	}
	var out []any
	for i, a := range args {
		var v any
		switch x := a.(type) {
		case string:
			if utf8.ValidString(x) && strings.IndexByte(x, 0) < 0 {
				continue
			}
			v = strings.ReplaceAll(strings.ToValidUTF8(x, "\uFFFD"), "\x00", "\uFFFD")
		case bool:
			v = int64(0)
			if x {
				v = int64(1)
			}
		default:
			continue
		}
		if out == nil {
			out = append([]any(nil), args...)
		}
		out[i] = v
	}
	if out == nil {
		return args
	}
	return out
}

// toPostgres rewrites one statement from SQLite's dialect to PostgreSQL's.
func toPostgres(q string) string {
	q = reIndexedBy.ReplaceAllString(q, "")
	q = reJSONExtract.ReplaceAllString(q, "($1::jsonb ->> '$2')")
	q = reUnaryPlus.ReplaceAllString(q, "$1$2")
	q = reInstr.ReplaceAllString(q, "strpos(")
	if rest, ok := strings.CutPrefix(strings.TrimLeft(q, " \t\n"), "INSERT OR IGNORE INTO"); ok {
		body, returning, found := strings.Cut(rest, " RETURNING ")
		q = "INSERT INTO" + body + " ON CONFLICT DO NOTHING"
		if found {
			q += " RETURNING " + returning
		}
	}
	return numberParams(q)
}

// numberParams turns ? into $1, $2, .. and ?N into $N, outside quoted strings.
func numberParams(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	quote := byte(0)
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
			b.WriteByte(c)
		case c == '\'' || c == '"':
			quote = c
			b.WriteByte(c)
		case c == '?':
			j := i + 1
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			b.WriteByte('$')
			if j > i+1 {
				b.WriteString(q[i+1 : j])
				i = j - 1
			} else {
				n++
				b.WriteString(strconv.Itoa(n))
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Pool is one database/sql pool whose statements are written in SQLite's dialect and rewritten
// for the database behind it. It has the methods of *sql.DB that the store uses.
type Pool struct {
	*sql.DB
	dia *dialect
}

func (p *Pool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return p.DB.ExecContext(ctx, p.dia.sql(query), p.dia.args(args)...)
}

func (p *Pool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return p.DB.QueryContext(ctx, p.dia.sql(query), p.dia.args(args)...)
}

func (p *Pool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return p.DB.QueryRowContext(ctx, p.dia.sql(query), p.dia.args(args)...)
}

// BeginTx starts a transaction whose statements are rewritten like the pool's.
func (p *Pool) BeginTx(ctx context.Context, opts *sql.TxOptions) (*Tx, error) {
	t, err := p.DB.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &Tx{Tx: t, dia: p.dia}, nil
}

// Tx is a transaction whose statements are rewritten for the open database.
type Tx struct {
	*sql.Tx
	dia *dialect
}

func (t *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.Tx.ExecContext(ctx, t.dia.sql(query), t.dia.args(args)...)
}

func (t *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.Tx.QueryContext(ctx, t.dia.sql(query), t.dia.args(args)...)
}

func (t *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.Tx.QueryRowContext(ctx, t.dia.sql(query), t.dia.args(args)...)
}

func (t *Tx) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return t.Tx.PrepareContext(ctx, t.dia.sql(query))
}

// PrepareContext prepares a statement rewritten for the database behind the pool.
func (p *Pool) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return p.DB.PrepareContext(ctx, p.dia.sql(query))
}

// insertID runs an INSERT of one row and returns the id the database gave it (RETURNING id:
// PostgreSQL's driver has no LastInsertId, and SQLite supports RETURNING too).
func (t *Tx) insertID(ctx context.Context, query string, args ...any) (id int64, err error) {
	err = t.QueryRowContext(ctx, query+" RETURNING id", args...).Scan(&id)
	return id, err
}

// insertID is Tx.insertID outside a transaction.
func (p *Pool) insertID(ctx context.Context, query string, args ...any) (id int64, err error) {
	err = p.QueryRowContext(ctx, query+" RETURNING id", args...).Scan(&id)
	return id, err
}

// Exec, Query and QueryRow are the context-free forms (tests use them), rewritten likewise.
func (p *Pool) Exec(query string, args ...any) (sql.Result, error) {
	return p.ExecContext(context.Background(), query, args...)
}

func (p *Pool) Query(query string, args ...any) (*sql.Rows, error) {
	return p.QueryContext(context.Background(), query, args...)
}

func (p *Pool) QueryRow(query string, args ...any) *sql.Row {
	return p.QueryRowContext(context.Background(), query, args...)
}
