package secrets

import "strconv"

// The sealing scheme: every sealed value in the database is bound to the place it is stored, so
// a ciphertext copied to another row, environment or field does not open. These are the only
// context strings in use; every caller builds them here.

// EnvKeyContext is the context of an environment's API key of the given kind
// (client_token, public_key, secret_key).
func EnvKeyContext(env, kind string) string { return "env/" + env + "/" + kind }

// WebhookSecretContext is the context of one webhook signing secret of env.
func WebhookSecretContext(env, id string) string { return "env/" + env + "/webhook_secret/" + id }

// BeaconKeyContext is the context of one beacon key of env (the key of the tokens that beacons
// carry).
func BeaconKeyContext(env, id string) string { return "env/" + env + "/beacon_key/" + id }

// TOTPSeedContext is the context of a user's TOTP seed (the second factor's shared secret), pending
// or enabled.
func TOTPSeedContext(userID int64) string {
	return "user/" + strconv.FormatInt(userID, 10) + "/totp_seed"
}

// AlertChannelContext is the context of an alert channel's sealed field: its url (a Slack URL
// embeds a token) or the secret that signs what it is sent.
func AlertChannelContext(id, field string) string { return "alert_channel/" + id + "/" + field }

// checkContext is the context of the master-key check value in the meta table.
const checkContext = "meta/master_key_check"
