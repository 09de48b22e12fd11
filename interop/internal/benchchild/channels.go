package benchchild

// Channel ids and priorities of the paired scenarios, the same on every
// transport. Bulk uses one channel, as a block-part or mempool stream would;
// latency uses a high-priority channel (like consensus votes) beside a
// low-priority one (like mempool transactions).
const (
	// BulkChannel carries the bulk scenario's messages.
	BulkChannel = byte(0x30)
	// BulkPriority is the priority of BulkChannel.
	BulkPriority = 5
	// HiChannel carries the latency scenario's requests and their echoes.
	HiChannel = byte(0x20)
	// HiPriority is the priority of HiChannel.
	HiPriority = 10
	// LoChannel carries the latency scenario's load.
	LoChannel = byte(0x21)
	// LoPriority is the priority of LoChannel.
	LoPriority = 1
)
