package interop

// capabilityChannel is the extra channel ringwire advertises (../nodeinfo_accept_test.go
// defines it for the main module).
const capabilityChannel = 0xF0
