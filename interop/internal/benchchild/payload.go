package benchchild

// Payload is a message body of n bytes with a fixed, non-zero pattern.
func Payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + 7)
	}
	return b
}
