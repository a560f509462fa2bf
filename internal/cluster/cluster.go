// Package cluster holds the two seams between the dashboard's instances: a Bus that tells every
// part of every instance what changed, and a Leader that says whether this instance runs the
// schedulers. LocalBus and Solo are for one process on SQLite; PGBus (LISTEN/NOTIFY) and
// PGLeader (an advisory lock) are for several instances on one PostgreSQL database. The packages
// that use the seams do not know which they have.
//
// The rule both seams serve: the instance that makes a change applies it to its own caches at
// once (its caller reads its own write), then publishes it on the Bus; every subscriber, this
// instance's too, brings its copy up to date, and must therefore take a message it has already
// applied as a no-op.
package cluster

// Topics carried by the Bus. A message's ID says what changed, as the topic documents; a
// subscriber that cannot use it may simply reload everything of its topic.
const (
	// TopicEvents: events were committed; ID is the newest committed event id (decimal).
	TopicEvents = "events.committed"
	// TopicRollout: the rollout or a cohort changed; ID is the rollout's new version (decimal).
	TopicRollout = "rollout.changed"
	// TopicSecrets: a webhook secret or a beacon key of an environment changed; ID is the
	// environment.
	TopicSecrets = "secrets.changed"
	// TopicAccess: a token was revoked, or a user's sessions, role or access changed; ID is the
	// user id (decimal), "" when no one user is concerned (a CLI token, say). Token caches are
	// dropped and live streams check their session at once.
	TopicAccess = "access.changed"
)

// Message is one notification: small, so that it fits a PostgreSQL NOTIFY payload. It carries
// what changed, never the changed data: a subscriber reads that from the database.
type Message struct {
	Topic string
	ID    string
	// Reload is set by the Bus, never by a publisher: messages of Topic were lost to this
	// subscriber (it fell behind, or a connection dropped), so it must reload all it keeps of
	// the topic rather than trust the messages it got.
	Reload bool
}

// Bus delivers messages to every subscriber of their topic, on every instance.
type Bus interface {
	// Publish hands m to the subscribers of m.Topic. It never blocks on a subscriber and never
	// fails the change it announces (which is committed already): a subscriber the message
	// cannot reach gets a Reload instead.
	Publish(m Message)
	// Subscribe calls handle with each message of topic, one at a time and in publish order,
	// on a goroutine of the Bus. stop ends the subscription and waits for a running handle to
	// return; handle is not called after it returns (so stop must not be called from handle).
	Subscribe(topic string, handle func(Message)) (stop func())
}

// Leader says whether this instance runs the schedulers: retention and session purges,
// guardrail evaluation and auto-advance, alert detection and delivery, publishing the audit
// head. Each scheduler asks before every round, so exactly one instance does the work.
type Leader interface {
	Leading() bool
}

// Solo is the Leader of a dashboard that is the only one on its database (SQLite): it always
// leads.
type Solo struct{}

// Leading reports true: no other instance can run the schedulers.
func (Solo) Leading() bool { return true }
