module github.com/ringwire/ringwire/bindings-go

go 1.24
