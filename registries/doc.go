// Package registries will own submissions to NHS Digital (over MESH), the
// National Joint Registry and PHIN: selection by consent and eligibility,
// payload builders, the durable outbox, transports, receipts, and a simulator
// of each registry for tests. It reaches the store only through interfaces.
package registries
