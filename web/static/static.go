// Package static embeds the CSS, JS and images and serves them under content-hashed URLs, so
// browsers may cache them forever and a new release is picked up at once.
package static

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed css js favicon.svg
var files embed.FS

// Prefix is where the assets are mounted.
const Prefix = "/static/"

type asset struct {
	name string // path inside the FS
	data []byte
	etag string
}

// manifest maps logical names to hashed URLs and back. It is built once from the embedded files
// and never changes afterwards.
var manifest = build()

type table struct {
	urls   map[string]string // "css/app.css" -> "/static/css/app.1a2b3c4d.css"
	byPath map[string]asset  // "css/app.1a2b3c4d.css" -> asset
}

func build() table {
	t := table{urls: map[string]string{}, byPath: map[string]asset{}}
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		h := hex.EncodeToString(sum[:])[:10]
		ext := path.Ext(p)
		hashed := strings.TrimSuffix(p, ext) + "." + h + ext
		t.urls[p] = Prefix + hashed
		t.byPath[hashed] = asset{name: p, data: b, etag: `"` + h + `"`}
		return nil
	})
	if err != nil {
		panic("static: walk embedded files: " + err.Error())
	}
	return t
}

// URL returns the content-hashed URL of an embedded file ("css/app.css"). It panics on an unknown
// name, which a test over every page catches before release.
func URL(name string) string {
	u, ok := manifest.urls[name]
	if !ok {
		panic("static: no embedded file " + name)
	}
	return u
}

// Handler serves the hashed URLs with immutable caching. Unknown or unhashed paths are 404, so an
// old page can never get a new file under an old name.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimPrefix(r.URL.Path, Prefix)
		a, ok := manifest.byPath[p]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		w.Header().Set("ETag", a.etag)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.data))
	})
}
