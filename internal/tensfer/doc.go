// Package tensfer talks to the Tensfer payments API and speaks its side
// protocols: a client per environment with typed errors, cursor pagination,
// per-call timeouts and safe retries; Standard Webhooks signing and
// verification; and parsers for webhook events and front-end callback
// beacons. Its subpackage tensfersim simulates the API, its webhooks and
// callbacks for tests and the demo.
//
// The package imports no other internal package. docs/tensfer.md describes
// the behaviour and every assumption made where Tensfer's documentation is
// silent.
package tensfer
