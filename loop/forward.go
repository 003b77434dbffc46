package loop

type forwarder struct{}
