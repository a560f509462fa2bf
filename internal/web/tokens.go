package web

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tensfer-golive/dashboard/internal/accounts"
	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/rollout"
	"github.com/tensfer-golive/dashboard/internal/validation"
	"github.com/tensfer-golive/dashboard/web/templates"
)

func (s *Server) tokensVM(w http.ResponseWriter, r *http.Request, checked []string) (templates.TokensVM, error) {
	me, _ := userFrom(r.Context())
	tokens, err := s.db.ListTokens(r.Context())
	if err != nil {
		return templates.TokensVM{}, err
	}
	vm := templates.TokensVM{Layout: s.page(w, r, "settings", "API tokens"), Tabs: settingsTabs(me.Role), Errors: templates.FieldErrors{},
		RecheckScopes: auth.RecheckScopes}
	now := s.now()
	for _, t := range tokens {
		vm.Tokens = append(vm.Tokens, templates.TokenRow{ID: t.ID, Name: t.Name, Prefix: t.Prefix, Scopes: t.Scopes, CreatedBy: t.CreatedBy,
			Service: accounts.IsServiceToken(t.CreatedBy), CreatedAt: t.CreatedAt, LastUsed: t.LastUsedAt, Revoked: t.Revoked(), RevokedAt: t.RevokedAt, ExpiresAt: t.ExpiresAt, Expired: t.Expired(now)})
	}
	for _, sc := range auth.AllScopes {
		vm.Scopes = append(vm.Scopes, templates.ScopeOption{Name: sc, Help: auth.ScopeHelp[sc], Checked: slices.Contains(checked, sc)})
	}
	return vm, nil
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) error {
	vm, err := s.tokensVM(w, r, nil)
	if err != nil {
		return err
	}
	return render(w, r, http.StatusOK, templates.TokensPage(vm))
}

// createToken creates a token and shows it in the answer to this POST, the only time it is ever
// shown (it is stored hashed); the answer is not cached.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return errBadRequest("cannot read the form: %v", err)
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	vm, err := s.tokensVM(w, r, r.PostForm["scopes"])
	if err != nil {
		return err
	}
	vm.Name, vm.ExpiresIn = name, r.PostFormValue("expires_in")
	var expires time.Duration
	if vm.ExpiresIn != "" {
		if expires, err = rollout.ParseDuration(vm.ExpiresIn); err != nil || expires <= 0 {
			vm.Errors["expires_in"] = "choose when the token expires"
			formFailed(&vm.Layout, "Token not created", vm.Errors)
			return render(w, r, http.StatusUnprocessableEntity, templates.TokensPage(vm))
		}
	}
	// A token that reaches production secrets or admin is as good as a reveal: it asks for the
	// same re-check (the password, and a code with two-factor on), so a session alone cannot mint it.
	if scopes, err := auth.ParseScopes(strings.Join(r.PostForm["scopes"], ",")); err == nil && auth.NeedsRecheck(scopes) {
		if msg := s.reauth(r, "token.create"); msg != "" {
			vm.Errors["password"] = msg
			formFailed(&vm.Layout, "Token not created", vm.Errors)
			return render(w, r, http.StatusUnprocessableEntity, templates.TokensPage(vm))
		}
	}
	me, _ := userFrom(r.Context())
	secret, _, err := s.accounts.CreateToken(r.Context(), name, r.PostForm["scopes"], expires, me.Email, s.auditFor(r, "token.create"))
	var errs validation.Errors
	if errors.As(err, &errs) {
		vm.Errors = templates.FieldErrors(errs)
		formFailed(&vm.Layout, "Token not created", vm.Errors)
		return render(w, r, http.StatusUnprocessableEntity, templates.TokensPage(vm))
	}
	if err != nil {
		return err
	}
	vm, err = s.tokensVM(w, r, nil)
	if err != nil {
		return err
	}
	vm.NewSecret, vm.NewName = secret, name
	w.Header().Set("Cache-Control", "no-store")
	return render(w, r, http.StatusCreated, templates.TokensPage(vm))
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	t, err := s.accounts.RevokeToken(r.Context(), id, s.auditFor(r, "token.revoke")) // every instance forgets it at once
	if errors.Is(err, db.ErrNotFound) {
		setFlash(w, r, "err", "That token does not exist or is already revoked.")
		return redirect(w, r, "/settings/tokens")
	}
	if err != nil {
		return err
	}
	setFlash(w, r, "ok", fmt.Sprintf("Revoked %s. Requests with it now get 401.", t.Name))
	return redirect(w, r, "/settings/tokens")
}
