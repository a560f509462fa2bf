-- API tokens may carry an expiry; past it they answer 401 like a revoked one.
ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
