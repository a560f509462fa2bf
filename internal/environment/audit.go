package environment

import (
	"context"

	"github.com/tensfer-golive/dashboard/internal/db"
)

// AuditSecretRead records that st's active secret key was handed out in its app config (the
// API's config with the secrets:read scope): which key, by its last four characters and
// fingerprint, never the value. a says who and names the action.
func (s *Service) AuditSecretRead(ctx context.Context, st State, a db.Audit) error {
	k, _ := st.Active(db.KeySecret)
	a.Target = "environment:" + st.Env.Name
	a.After = map[string]any{"secret_key": map[string]string{"last4": k.Last4, "fingerprint": k.Fingerprint}}
	return s.cfg.DB.InsertAudit(ctx, a)
}
