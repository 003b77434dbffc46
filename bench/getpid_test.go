package bench

import "os"

func os_getpid() int { return os.Getpid() }
